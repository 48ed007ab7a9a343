r"""slimhub-fetch-checkpoint: download an official TF-Slim checkpoint.

  slimhub-fetch-checkpoint --net=pnasnet_large --cache_dir=ckpts
  slimhub-fetch-checkpoint --net=inception_v3 --cache_dir=ckpts \
      --base_url=https://mirror.example/slim --sha256=<hex>
  slimhub-fetch-checkpoint --net=inception_v3 --cache_dir=fresh \
      --print_sha256   # last line: the catalogue pin of the tarball

Downloads the tarball the catalogue names over HTTPS, checks its SHA-256
(--sha256, or the catalogue's pin), refuses unsafe members (absolute paths,
'..', links leaving the directory) and tarballs larger than --max_bytes
(default: from the net's variable shapes), and extracts the checkpoint's
files into <cache_dir>/<tarball folder>/, the layout slimhub-regenerate
reads (--extract_all: every member). Prints the checkpoint prefix. A present
checkpoint is not downloaded again.
"""

from absl import app
from absl import flags

from slimhub import catalog
from slimhub.regenerate import fetch
from slimhub.exporters import common

_NET = flags.DEFINE_string("net", None, "Catalogue net (see slimhub-catalog).")
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", None, "Checkpoint directory to extract into.")
_BASE_URL = flags.DEFINE_string(
    "base_url", None, "Mirror to download from instead of the tarball's "
    "home: <base_url>/<tarball name as the catalogue lists it>.")
_SHA256 = flags.DEFINE_string(
    "sha256", None, "Expected SHA-256 of the tarball (default: the "
    "catalogue's pin, if any).")
_TIMEOUT = flags.DEFINE_float(
    "timeout", 60, "Seconds to wait for the server before giving up.")
_MAX_BYTES = flags.DEFINE_integer(
    "max_bytes", None, "Most bytes the tarball may download or expand to "
    "(default: 8 times the net's float32 weights plus 64 MiB).", lower_bound=1)
_EXTRACT_ALL = flags.DEFINE_bool(
    "extract_all", False, "Also extract the members the checkpoint does not "
    "need (frozen graphs, TFLite files, text files).")
_PRINT_SHA256 = flags.DEFINE_bool(
    "print_sha256", False, "Finally print the tarball's SHA-256 as a "
    "catalog.TARBALL_SHA256 line (the checkpoint must not be present yet).")

flags.mark_flags_as_required(["net", "cache_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_tensorflow()  # The default bound builds the net's graph.
  try:
    entry = catalog.find(_NET.value)
    fetched = fetch.fetch_checkpoint(
        entry, _CACHE_DIR.value, base_url=_BASE_URL.value,
        sha256=_SHA256.value, max_bytes=_MAX_BYTES.value,
        extract_all=_EXTRACT_ALL.value, timeout=_TIMEOUT.value,
        log=lambda message: print(message, flush=True))
  except (KeyError, fetch.FetchError) as error:
    common.fail("slimhub-fetch-checkpoint", str(error).strip('"'))
  print(fetched.prefix)
  if _PRINT_SHA256.value:
    if not fetched.sha256:
      common.fail("slimhub-fetch-checkpoint", f"--print_sha256: "
                  f"{fetched.prefix} was already present, so no tarball was "
                  "downloaded to hash; use an empty --cache_dir")
    print(catalog.tarball_pin(entry, fetched.sha256))


def run():
  common.run(main)


if __name__ == "__main__":
  run()
