r"""slimhub-verify: checks image modules against their contract, for CI.

  slimhub-verify --module_dir=out/mobilenet_v1_025_128/feature_vector/3
  slimhub-verify --module_dir=DIR \
      --expect=imagenet/mobilenet_v1_025_128/feature_vector@3 \
      --checkpoint=ckpt/mobilenet_v1_0.25_128.ckpt --json
  slimhub-verify --module_dir=v3 --against=v2     # also diff two modules
  slimhub-verify --module_dir=out --jobs=2 --junit_xml=verify.xml  # a tree
  slimhub-verify --manifest=out/manifest.json      # files vs. their hashes

Works on any TF1 Hub image module or TF2 reusable image SavedModel, made by
slimhub or not; runs only the module's TF graphs, never its Python, and
only after a static scan found nothing but image-module ops in them. Each
module is verified in a child process killed after --timeout. A directory
that holds modules below it (not itself one) is a tree: every module in it
is verified. Exits 0 only if no check of any module failed (the --against
diff does not count), 1 otherwise.
"""

import json
import os
import sys

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
TREE_SCHEMA = "slimhub-verify-tree/1"


def _options(runner):
  return runner.Options(expect=_EXPECT.value, checkpoint=_CHECKPOINT.value,
                        against=_AGAINST.value,
                        allow_ops=tuple(_ALLOW_OPS.value),
                        max_bytes=_MAX_BYTES.value)


def _write_junit(runner, suites):
  if _JUNIT_XML.value:
    from slimhub.formats import atomic  # pylint: disable=g-import-not-at-top
    atomic.write_file(_JUNIT_XML.value, runner.junit_xml(suites))


def _verify_one(runner, module_dir):
  outcome = runner.verify_in_child(module_dir, _options(runner),
                                   _TIMEOUT.value or None)
  if outcome.error:
    common.fail(PROGRAM, outcome.error)
  _write_junit(runner, [(module_dir, outcome.report)])
  print(json.dumps(outcome.report, indent=2) if _JSON.value else outcome.table)
  return outcome.passed


def _summary(root, outcomes):
  """The tree's table: one row per module, its failed checks below it."""
  names = [os.path.relpath(o.module_dir, root) for o in outcomes]
  width = max(len(name) for name in names)
  lines = [f"slimhub-verify {root}: {len(outcomes)} modules", ""]
  for name, outcome in zip(names, outcomes):
    counts = outcome.report["counts"]
    total = sum(counts.values())
    verdict = "PASS" if outcome.passed else "FAIL"
    lines.append(f"{verdict:<6}{name:<{width}}  {counts['pass']} of {total} "
                 f"checks passed, {counts['fail']} failed, {counts['skip']} "
                 "skipped")
    lines += [f"{'':<6}  {item['id']}: {item['detail']}"
              for item in outcome.report["checks"] if item["status"] == "fail"]
  failed = [name for name, o in zip(names, outcomes) if not o.passed]
  lines.append("")
  lines.append(f"FAILED: {len(failed)} of {len(outcomes)} modules failed "
               f"({', '.join(failed)})" if failed else
               f"PASSED: all {len(outcomes)} modules passed")
  return "\n".join(lines)


def _verify_tree(runner, root, module_dirs):
  for flag in (_EXPECT, _CHECKPOINT, _AGAINST):
    if flag.value and not (flag is _EXPECT and flag.value == "none"):
      common.fail(PROGRAM, f"--{flag.name} names one module; {root} holds "
                  f"{len(module_dirs)} (each module's slimhub metadata names "
                  "its golden layout)")

  def progress(outcome):
    verdict = "pass" if outcome.passed else "FAIL"
    print(f"{verdict} {os.path.relpath(outcome.module_dir, root)}",
          file=sys.stderr, flush=True)

  outcomes = runner.verify_all(module_dirs, _options(runner),
                               _TIMEOUT.value or None, _JOBS.value, progress)
  _write_junit(runner, [(os.path.relpath(o.module_dir, root), o.report)
                        for o in outcomes])
  passed = all(outcome.passed for outcome in outcomes)
  if _JSON.value:
    print(json.dumps({
        "schema": TREE_SCHEMA, "module_dir": root, "passed": passed,
        "counts": {"pass": sum(o.passed for o in outcomes),
                   "fail": sum(not o.passed for o in outcomes)},
        "modules": [{"path": os.path.relpath(o.module_dir, root), **o.report}
                    for o in outcomes]}, indent=2))
  else:
    print(_summary(root, outcomes))
  return passed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not _MODULE_DIR.value and not _MANIFEST.value:
    raise app.UsageError("--module_dir or --manifest is required")
  passed = True
  if _MANIFEST.value:
    from slimhub.regenerate import manifest  # pylint: disable=g-import-not-at-top
    out = print if not _JSON.value else (
        lambda line: print(line, file=sys.stderr))
    try:
      passed = manifest.report_tree(_MANIFEST.value, _MODULE_DIR.value, out)
    except manifest.ManifestError as error:
      common.fail(PROGRAM, error)
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
