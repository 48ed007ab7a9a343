"""Verifying modules in child processes: a time limit, and many at once.

Each module is verified by a fresh Python process running
``python -m slimhub.verify.runner REQUEST RESULT`` (the same verifier as in
process), killed with its process group when it outlives the timeout. The
parent only starts children and reads their JSON results; it never loads a
module itself. A child that is killed or dies is reported
as one failed check (TIMEOUT or CRASHED) of that module.

Also finds the modules of a tree and writes JUnit XML reports.
"""

import concurrent.futures
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from xml.etree import ElementTree

from slimhub import quiet
from slimhub.verify import report
from slimhub.verify import security

TIMEOUT = "verify.timeout"
CRASHED = "verify.crashed"
MODULE_FILE = "saved_model.pb"


@dataclasses.dataclass(frozen=True)
class Options:
  """What every module is verified with (verifier.verify's arguments)."""
  expect: str = None
  checkpoint: str = None
  against: str = None
  allow_ops: tuple = ()
  max_bytes: int = security.DEFAULT_MAX_BYTES
  checkpoint_dir: str = None
  reference_cache: str = None
  # The child shows TensorFlow's log lines on stderr (slimhub.quiet).
  verbose: bool = False


@dataclasses.dataclass(frozen=True)
class Outcome:
  """One module's verification: its report as documented JSON and as the
  table, or error: the request could not be verified (bad --expect);
  seconds: the child process's wall time."""
  module_dir: str
  report: dict = None
  table: str = ""
  error: str = ""
  seconds: float = 0.0

  @property
  def passed(self):
    return not self.error and self.report["passed"]


def find_modules(root):
  """Directories under `root` holding saved_model.pb, sorted; a module's
  own subdirectories are not searched, links are not followed."""
  found = []
  for parent, dirs, files in os.walk(root):
    if MODULE_FILE in files:
      found.append(parent)
      dirs[:] = []
    else:
      dirs.sort()
  return sorted(found)


def _failed(module_dir, check_id, detail, seconds):
  """The Outcome of one failed check, in the documented JSON schema and as
  the table."""
  failed = report.failed(module_dir, check_id, detail, seconds)
  return Outcome(module_dir, report.as_json(failed), report.table(failed),
                 seconds=seconds)


def _last_line(text):
  lines = [line for line in text.splitlines() if line.strip()]
  return lines[-1].strip() if lines else "no output"


def _show_if_verbose(stderr, options):
  """A verbose run passes the child's log lines on to the user."""
  if options.verbose and stderr:
    sys.stderr.write(stderr)
    sys.stderr.flush()


def verify_in_child(module_dir, options, timeout):
  """The Outcome of verifying `module_dir` in a child process; timeout in
  seconds (None: no limit)."""
  started = time.monotonic()
  elapsed = lambda: time.monotonic() - started
  with tempfile.TemporaryDirectory(prefix="slimhub-verify-") as scratch:
    request = os.path.join(scratch, "request.json")
    result = os.path.join(scratch, "result.json")
    with open(request, "w") as f:
      json.dump({"module_dir": module_dir, **dataclasses.asdict(options)}, f)
    child = subprocess.Popen(
        [sys.executable, "-m", "slimhub.verify.runner", request, result],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        env=quiet.worker_environment(os.environ, options.verbose))
    try:
      _, stderr = child.communicate(timeout=timeout)
    except BaseException as error:  # the timeout, or the parent interrupted
      os.killpg(child.pid, signal.SIGKILL)
      child.communicate()
      if not isinstance(error, subprocess.TimeoutExpired):
        raise
      detail = (f"killed after {timeout:g} s (--timeout): the verification "
                "did not finish")
      return _failed(module_dir, TIMEOUT, detail, elapsed())
    _show_if_verbose(stderr, options)
    if child.returncode != 0 or not os.path.exists(result):
      detail = (f"the verifying process ended with status "
                f"{child.returncode}: {_last_line(stderr)}")
      return _failed(module_dir, CRASHED, detail, elapsed())
    with open(result) as f:
      data = json.load(f)
  return Outcome(module_dir, data.get("report"), data.get("table", ""),
                 data.get("error", ""), elapsed())


def verify_all(module_dirs, options, timeout, jobs=1, progress=None):
  """Outcomes of `module_dirs` (in their order), `jobs` children at a time;
  progress(outcome) is called as each finishes."""
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    futures = {pool.submit(verify_in_child, d, options, timeout): d
               for d in module_dirs}
    outcomes = {}
    for future in concurrent.futures.as_completed(futures):
      outcome = future.result()
      outcomes[futures[future]] = outcome
      if progress:
        progress(outcome)
  return [outcomes[d] for d in module_dirs]


# Checks that report the verification itself dying, not a finding: JUnit
# <error>s rather than <failure>s.
_ERRORS = (TIMEOUT, CRASHED)


def _seconds(value):
  return f"{value:.3f}"


def junit_xml(outcomes):
  """JUnit XML text of [(suite name, Outcome)]: one <testsuite> per module,
  one <testcase> per check with its time; a failure's message is the
  check's detail, its text the further lines; skipped checks are
  <skipped/>, a killed or crashed verification an <error>. Suites carry
  their counts and the child's wall time, <testsuites> the totals."""
  root = ElementTree.Element("testsuites", name="slimhub-verify")
  totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
  total_seconds = 0.0
  for name, outcome in outcomes:
    items = outcome.report["checks"]
    counts = {"tests": len(items),
              "failures": sum(i["status"] == "fail" and i["id"] not in _ERRORS
                              for i in items),
              "errors": sum(i["status"] == "fail" and i["id"] in _ERRORS
                            for i in items),
              "skipped": sum(i["status"] == "skip" for i in items)}
    suite = ElementTree.SubElement(
        root, "testsuite", name=name,
        **{key: str(value) for key, value in counts.items()},
        time=_seconds(outcome.seconds))
    for item in items:
      case = ElementTree.SubElement(suite, "testcase", name=item["id"],
                                    classname=name,
                                    time=_seconds(item.get("seconds", 0.0)))
      if item["status"] == "fail":
        element = ElementTree.SubElement(
            case, "error" if item["id"] in _ERRORS else "failure",
            message=item["detail"])
        element.text = "\n".join(item["lines"] or [item["detail"]])
      elif item["status"] == "skip":
        ElementTree.SubElement(case, "skipped", message=item["detail"])
    for key, value in counts.items():
      totals[key] += value
    total_seconds += outcome.seconds
  for key, value in totals.items():
    root.set(key, str(value))
  root.set("time", _seconds(total_seconds))
  ElementTree.indent(root)
  return ElementTree.tostring(root, encoding="unicode",
                              xml_declaration=True) + "\n"


def _child(request_path, result_path):
  """The child's side: verify, write {"report", "table"} or {"error"}."""
  with open(request_path) as f:
    request = json.load(f)
  quiet.import_tensorflow_quietly(request["verbose"])
  quiet.quiet_tensorflow(request["verbose"])
  from slimhub.verify import verifier  # pylint: disable=g-import-not-at-top
  try:
    result = verifier.verify(
        request["module_dir"], expect=request["expect"],
        checkpoint=request["checkpoint"], against=request["against"],
        allow_ops=request["allow_ops"], max_bytes=request["max_bytes"],
        checkpoint_dir=request["checkpoint_dir"],
        reference_cache=request["reference_cache"])
    data = {"report": report.as_json(result), "table": report.table(result)}
  except verifier.VerifyError as error:
    data = {"error": str(error)}
  with open(result_path, "w") as f:
    json.dump(data, f)


if __name__ == "__main__":
  _child(*sys.argv[1:])
