r"""slimhub-verify: checks an image module against its contract, for CI.

  slimhub-verify --module_dir=out/mobilenet_v1_025_128/feature_vector/3
  slimhub-verify --module_dir=DIR \
      --expect=imagenet/mobilenet_v1_025_128/feature_vector@3 \
      --checkpoint=ckpt/mobilenet_v1_0.25_128.ckpt --json
  slimhub-verify --module_dir=v3 --against=v2     # also diff two modules
  slimhub-verify --manifest=OUT/manifest.json      # files vs. their hashes

Works on any TF1 Hub image module or TF2 reusable image SavedModel, made by
slimhub or not; runs only the module's TF graphs, never its Python. Exits 0
only if no check failed (the --against diff does not count), 1 otherwise.
"""

import sys

from absl import app
from absl import flags

from slimhub.exporters import common

_MODULE_DIR = flags.DEFINE_string(
    "module_dir", None, "The module: a TF1 Hub module or TF2 SavedModel "
    "directory.")
_EXPECT = flags.DEFINE_string(
    "expect", None, "HANDLE@VERSION of the catalogue module it must be, e.g. "
    "imagenet/mobilenet_v1_025_128/feature_vector@3: its contract and golden "
    "layout are checked.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Slim checkpoint (prefix or directory) whose net's "
    "outputs the module must reproduce.")
_AGAINST = flags.DEFINE_string(
    "against", None, "Another module to diff signatures, layout and "
    "metadata with.")
_JSON = flags.DEFINE_bool("json", False, "Print the report as JSON "
                          "(docs/verify.md has the schema).")

_MANIFEST = flags.DEFINE_string(
    "manifest", None, "A slimhub-regenerate OUT/manifest.json: every file of "
    "its modules (those under --module_dir, if given) must match the recorded "
    "hashes and content digest; names each file that differs, is missing or "
    "is not recorded.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not _MODULE_DIR.value and not _MANIFEST.value:
    raise app.UsageError("--module_dir or --manifest is required")
  common.quiet_tensorflow()
  manifest_passed = True
  if _MANIFEST.value:
    from slimhub.regenerate import manifest  # pylint: disable=g-import-not-at-top
    try:
      manifest_passed = manifest.report_tree(_MANIFEST.value, _MODULE_DIR.value)
    except manifest.ManifestError as error:
      common.fail("slimhub-verify", error)
    if not _MODULE_DIR.value:
      sys.exit(0 if manifest_passed else 1)
  # Imported after flag parsing: --help stays fast.
  from slimhub import verify  # pylint: disable=g-import-not-at-top
  from slimhub.verify import report  # pylint: disable=g-import-not-at-top
  try:
    result = verify.verify(_MODULE_DIR.value, expect=_EXPECT.value,
                           checkpoint=_CHECKPOINT.value,
                           against=_AGAINST.value)
  except verify.VerifyError as error:
    common.fail("slimhub-verify", error)
  print(report.json_text(result) if _JSON.value else report.table(result))
  sys.exit(0 if result.passed and manifest_passed else 1)


def run():
  common.run(main)


if __name__ == "__main__":
  run()
