r"""slimhub-fetch-checkpoint: download an official TF-Slim checkpoint.

  slimhub-fetch-checkpoint --net=pnasnet_large --cache_dir=ckpts
  slimhub-fetch-checkpoint --net=inception_v3 --cache_dir=ckpts \
      --base_url=https://mirror.example/slim --sha256=<hex>

Downloads the tarball the catalogue names over HTTPS, checks its SHA-256
(--sha256, or the catalogue's pin), refuses unsafe members (absolute paths,
'..', links leaving the directory) and extracts it into
<cache_dir>/<tarball folder>/, the layout slimhub-regenerate reads. Prints
the checkpoint prefix. A present checkpoint is not downloaded again.
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

flags.mark_flags_as_required(["net", "cache_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    prefix = fetch.fetch_checkpoint(
        catalog.find(_NET.value), _CACHE_DIR.value, base_url=_BASE_URL.value,
        sha256=_SHA256.value, timeout=_TIMEOUT.value,
        log=lambda message: print(message, flush=True))
  except (KeyError, fetch.FetchError) as error:
    common.fail("slimhub-fetch-checkpoint", str(error).strip('"'))
  print(prefix)


def run():
  common.run(main)


if __name__ == "__main__":
  run()
