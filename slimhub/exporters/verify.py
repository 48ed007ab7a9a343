r"""slimhub-verify: checks image modules against their contract, for CI.

  slimhub-verify --module_dir=out/mobilenet_v1_025_128/feature_vector/3
  slimhub-verify --module_dir=DIR \
      --expect=imagenet/mobilenet_v1_025_128/feature_vector@3 \
      --checkpoint=ckpt/mobilenet_v1_0.25_128.ckpt --json
  slimhub-verify --module_dir=v3 --against=v2     # also diff two modules
  slimhub-verify --module_dir=out --jobs=2 --junit_xml=verify.xml  # a tree
  slimhub-verify --module_dir=out --checkpoint_dir=ckpts  # + each checkpoint
  slimhub-verify --manifest=out/manifest.json      # files vs. their hashes

Works on any TF1 Hub image module or TF2 reusable image SavedModel, made by
slimhub or not; runs only the module's TF graphs, never its Python, and
only after a static scan found nothing but image-module ops in them. Each
module is verified in a child process killed after --timeout. A directory
that holds modules below it (not itself one) is a tree: every module in it
is verified. Exits 0 only if no check of any module failed (the --against
diff does not count), 1 otherwise. With --json, an error is a JSON object
too (schema slimhub-verify-error/1).
"""

import contextlib
import json
import os
import sys
import tempfile

from absl import app
from absl import flags

from slimhub.exporters import common

_MODULE_DIR = flags.DEFINE_string(
    "module_dir", None, "The module: a TF1 Hub module or TF2 SavedModel "
    "directory; or a directory tree holding many (each is verified).")
_EXPECT = flags.DEFINE_string(
    "expect", None, "HANDLE@VERSION of the catalogue module it must be, e.g. "
    "imagenet/mobilenet_v1_025_128/feature_vector@3: its contract and golden "
    "layout are checked. Default: the golden layout of the catalogue module "
    "the slimhub metadata names; 'none': no golden layout.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Slim checkpoint (prefix or directory) whose net's "
    "outputs the module must reproduce.")
_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir", None, "A directory of catalogue checkpoints laid out "
    "as slimhub-regenerate reads them (e.g. mobilenet_v1_0.25_128/"
    "mobilenet_v1_0.25_128.ckpt): each module's outputs must reproduce its "
    "own catalogue checkpoint's, for one module or a tree.")
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
_TIMEOUT = flags.DEFINE_float(
    "timeout", 1800, "Seconds each module's verification may take; its "
    "process is killed after that and the module fails. 0: no limit.",
    lower_bound=0)
_JOBS = flags.DEFINE_integer(
    "jobs", 1, "Modules of a tree verified at the same time.", lower_bound=1)
_JUNIT_XML = flags.DEFINE_string(
    "junit_xml", None, "Also write a JUnit XML report here: one testsuite "
    "per module, one testcase per check.")
_JSON = flags.DEFINE_bool("json", False, "Print the report as JSON "
                          "(docs/verify.md has the schema).")
_MANIFEST = flags.DEFINE_string(
    "manifest", None, "A slimhub-regenerate OUT/manifest.json: every file of "
    "its modules (those under --module_dir, if given) must match the recorded "
    "hashes and content digest; names each file that differs, is missing or "
    "is not recorded.")

PROGRAM = "slimhub-verify"
ERROR_SCHEMA = "slimhub-verify-error/1"

flags.mark_flags_as_mutual_exclusive(["checkpoint", "checkpoint_dir"])


def _fail(message):
  """Exits 1 with `message`: a JSON object on stdout with --json, else the
  usual error line."""
  if _JSON.value:
    print(json.dumps({"schema": ERROR_SCHEMA, "passed": False,
                      "error": str(message)}, indent=2))
    sys.exit(1)
  common.fail(PROGRAM, message)


def _options(runner, reference_cache=None):
  return runner.Options(expect=_EXPECT.value, checkpoint=_CHECKPOINT.value,
                        checkpoint_dir=_CHECKPOINT_DIR.value,
                        against=_AGAINST.value,
                        allow_ops=tuple(_ALLOW_OPS.value),
                        max_bytes=_MAX_BYTES.value,
                        reference_cache=reference_cache,
                        verbose=common.verbose())


def _write_junit(runner, outcomes):
  if _JUNIT_XML.value:
    from slimhub.formats import atomic  # pylint: disable=g-import-not-at-top
    atomic.write_file(_JUNIT_XML.value, runner.junit_xml(outcomes))


def _as_flags(message):
  """A library error about the `expect` parameter, as one about --expect."""
  return "--" + message if message.startswith(f"{_EXPECT.name}=") else message


def _verify_one(runner, module_dir):
  outcome = runner.verify_in_child(module_dir, _options(runner),
                                   _TIMEOUT.value or None)
  if outcome.error:
    _fail(_as_flags(outcome.error))
  _write_junit(runner, [(module_dir, outcome)])
  print(json.dumps(outcome.report, indent=2) if _JSON.value else outcome.table)
  return outcome.passed


def _verify_tree(runner, root, module_dirs):
  for flag in (_EXPECT, _CHECKPOINT, _AGAINST):
    if flag.value and not (flag is _EXPECT and flag.value == "none"):
      hint = ("pass --checkpoint_dir to check each module against its "
              "catalogue checkpoint" if flag is _CHECKPOINT else
              "each module's slimhub metadata names its golden layout")
      _fail(f"--{flag.name} names one module; {root} holds "
            f"{len(module_dirs)} ({hint})")

  def progress(outcome):
    verdict = "pass" if outcome.passed else "FAIL"
    print(f"{verdict} {os.path.relpath(outcome.module_dir, root)}",
          file=sys.stderr, flush=True)

  with contextlib.ExitStack() as stack:
    # The Slim net's outputs on a checkpoint, computed by the first of its
    # modules for the others.
    cache = (stack.enter_context(tempfile.TemporaryDirectory(
        prefix="slimhub-verify-slim-")) if _CHECKPOINT_DIR.value else None)
    outcomes = runner.verify_all(module_dirs, _options(runner, cache),
                                 _TIMEOUT.value or None, _JOBS.value,
                                 progress)
  _write_junit(runner, [(os.path.relpath(o.module_dir, root), o)
                        for o in outcomes])
  from slimhub.verify import report  # pylint: disable=g-import-not-at-top
  print(json.dumps(report.tree_json(root, outcomes), indent=2) if _JSON.value
        else report.tree_table(root, outcomes))
  return all(outcome.passed for outcome in outcomes)


def _usage_error(message):
  if _JSON.value:
    _fail(message)
  raise app.UsageError(message)


def main(argv):
  if len(argv) > 1:
    _usage_error(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not _MODULE_DIR.value and not _MANIFEST.value:
    _usage_error("--module_dir or --manifest is required")
  if _CHECKPOINT_DIR.value and not os.path.isdir(_CHECKPOINT_DIR.value):
    _fail(f"--checkpoint_dir={_CHECKPOINT_DIR.value} is not a directory")
  passed = True
  if _MANIFEST.value:
    from slimhub.regenerate import manifest  # pylint: disable=g-import-not-at-top
    out = print if not _JSON.value else (
        lambda line: print(line, file=sys.stderr))
    try:
      passed = manifest.report_tree(_MANIFEST.value, _MODULE_DIR.value, out)
    except manifest.ManifestError as error:
      _fail(error)
  if _MODULE_DIR.value:
    from slimhub.verify import runner  # pylint: disable=g-import-not-at-top
    root = _MODULE_DIR.value
    is_module = os.path.isfile(os.path.join(root, runner.MODULE_FILE))
    module_dirs = [] if is_module or not os.path.isdir(root) else (
        runner.find_modules(root))
    passed = (_verify_tree(runner, root, module_dirs) if module_dirs
              else _verify_one(runner, root)) and passed
  sys.exit(0 if passed else 1)


def run():
  common.run(main)


if __name__ == "__main__":
  run()
