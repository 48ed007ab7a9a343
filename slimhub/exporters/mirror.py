r"""slimhub-mirror: serve a regenerated collection where hub code looks for it.

  slimhub-mirror --regenerated=out --hub_cache_dir=/srv/tfhub_cache
  slimhub-mirror --regenerated=out --http_root=/srv/www \
      --mirror_url=https://models.example.org

The slimhub-regenerate output --regenerated is first checked against its
manifest.json; if any file differs, it is named and nothing is laid out.

--hub_cache_dir puts every module where tensorflow_hub caches its tfhub.dev
handle (<dir>/<sha1 of https://tfhub.dev/<key>>), so that code naming those
handles runs offline, unchanged, with TFHUB_CACHE_DIR=<dir>. --handle_base
adds other handle prefixes.

--http_root writes a static tree: <root>/<key> is the module's tarball (what
hub.load("http(s)://host/<key>") downloads), with its model card, TFLite
model, manifest record and catalogue pages (index.html) beside it. Serve it
with any static web server.

Files already right are left alone; every other file is renamed into place
complete.
"""

from absl import app
from absl import flags

from slimhub.exporters import common
from slimhub.mirror import layout

_REGENERATED = flags.DEFINE_string(
    "regenerated", None, "A slimhub-regenerate --output_dir (with its "
    "manifest.json).")
_HUB_CACHE_DIR = flags.DEFINE_string(
    "hub_cache_dir", None, "Lay the modules out as this TFHUB_CACHE_DIR.")
_HANDLE_BASE = flags.DEFINE_list(
    "handle_base", [], "With --hub_cache_dir: further http(s) URL prefixes "
    "to cache each module under, besides https://tfhub.dev.")
_HTTP_ROOT = flags.DEFINE_string(
    "http_root", None, "Write the static HTTP mirror tree and its catalogue "
    "pages here.")
_MIRROR_URL = flags.DEFINE_string(
    "mirror_url", None, "With --http_root: the URL it is served at, for the "
    "pages' hub.load lines (default: the URL the page was opened from).")

flags.mark_flag_as_required("regenerated")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not _HUB_CACHE_DIR.value and not _HTTP_ROOT.value:
    raise app.UsageError("Give --hub_cache_dir, --http_root or both")
  if _HANDLE_BASE.value and not _HUB_CACHE_DIR.value:
    raise app.UsageError("--handle_base needs --hub_cache_dir")
  common.quiet_tensorflow()
  try:
    report = layout.mirror(_REGENERATED.value, _HUB_CACHE_DIR.value,
                           _HTTP_ROOT.value, tuple(_HANDLE_BASE.value),
                           _MIRROR_URL.value)
  except (layout.MirrorError, OSError) as error:
    common.fail("slimhub-mirror", error)
  for path in report.written:
    print(f"wrote    {path}")
  for path in report.removed:
    print(f"removed  {path}")
  print(report.summary())


def run():
  common.run(main)


if __name__ == "__main__":
  run()
