r"""slimhub-verify: checks an image module against its contract, for CI.

  slimhub-verify --module_dir=out/mobilenet_v1_025_128/feature_vector/3
  slimhub-verify --module_dir=DIR \
      --expect=imagenet/mobilenet_v1_025_128/feature_vector@3 \
      --checkpoint=ckpt/mobilenet_v1_0.25_128.ckpt --json
  slimhub-verify --module_dir=v3 --against=v2     # also diff two modules

Works on any TF1 Hub image module or TF2 reusable image SavedModel, made by
slimhub or not; runs only the module's TF graphs, never its Python, and
only after a static scan found nothing but image-module ops in them. Exits 0
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
_ALLOW_OPS = flags.DEFINE_list(
    "allow_ops", [], "Op types to allow beyond slimhub's allowlist of image "
    "module ops (e.g. Erf,Cumsum), for a module you know needs them; the "
    "report names those it found.")
_MAX_BYTES = flags.DEFINE_integer(
    "max_bytes", 4 * 2**30, "Refuse, before loading, a module whose declared "
    "variables and constants, variables/ files or saved_model.pb exceed this "
    "many bytes.", lower_bound=1)
_JSON = flags.DEFINE_bool("json", False, "Print the report as JSON "
                          "(docs/verify.md has the schema).")

flags.mark_flag_as_required("module_dir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_tensorflow()
  # Imported after flag parsing: --help stays fast.
  from slimhub import verify  # pylint: disable=g-import-not-at-top
  from slimhub.verify import report  # pylint: disable=g-import-not-at-top
  try:
    result = verify.verify(_MODULE_DIR.value, expect=_EXPECT.value,
                           checkpoint=_CHECKPOINT.value,
                           against=_AGAINST.value,
                           allow_ops=_ALLOW_OPS.value,
                           max_bytes=_MAX_BYTES.value)
  except verify.VerifyError as error:
    common.fail("slimhub-verify", error)
  print(report.json_text(result) if _JSON.value else report.table(result))
  sys.exit(0 if result.passed else 1)


def run():
  app.run(main)


if __name__ == "__main__":
  run()
