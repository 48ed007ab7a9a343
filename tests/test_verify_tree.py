"""slimhub-verify on a tree of modules, in child processes: --jobs, the
summary, JUnit XML, --timeout, the golden layout checked by default, each
module's checkpoint from --checkpoint_dir, and errors as JSON.

Every test runs the installed binary as a subprocess, as CI would.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import pytest

import reference_data
from slimhub import catalog
from slimhub.reference import deterministic

NET = "mobilenet_v1_025_128"
V2_NET = "mobilenet_v2_035_96"
FV, CLS = catalog.FEATURE_VECTOR, catalog.CLASSIFICATION
VERIFY = os.path.join(os.path.dirname(sys.executable), "slimhub-verify")


def _run(*flags, timeout=600):
  return subprocess.run([VERIFY, *flags], capture_output=True, text=True,
                        check=False, timeout=timeout)


def _checks(report):
  return {item["id"]: item for item in report["checks"]}


def test_a_tree_with_a_broken_module(exported_module, tmp_path):
  tree = tmp_path / "out"
  good = {"imagenet/mobilenet_v1/feature_vector/3": (NET, FV, 3),
          "imagenet/mobilenet_v2/feature_vector/5": (V2_NET, FV, 5)}
  for name, module in good.items():
    shutil.copytree(exported_module(*module), tree / name)
  broken = "broken/classification/1"
  shutil.copytree(exported_module(NET, CLS, 1), tree / broken)
  for data in (tree / broken / "variables").glob("variables.data-*"):
    data.unlink()
  (tree / "notes").mkdir()  # Not a module: ignored.
  junit = tmp_path / "reports" / "verify.xml"
  junit.parent.mkdir()

  result = _run(f"--module_dir={tree}", "--jobs=2", f"--junit_xml={junit}")
  assert result.returncode == 1, result.stdout + result.stderr
  lines = result.stdout.splitlines()
  assert lines[0] == f"slimhub-verify {tree}: 3 modules"
  assert lines[-1] == f"FAILED: 1 of 3 modules failed ({broken})"
  rows = {line.split()[1]: line.split()[0] for line in lines
          if line.startswith(("PASS ", "FAIL "))}
  assert rows == {broken: "FAIL", **{name: "PASS" for name in good}}
  assert any(line.strip().startswith("variables.readable: ")
             for line in lines)

  root = ElementTree.parse(junit).getroot()
  assert not list(tmp_path.joinpath("reports").glob(".junit-*"))
  suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
  assert set(suites) == {broken, *good}
  # Totals on <testsuites>, times everywhere (CI pages show both).
  for key in ("tests", "failures", "errors", "skipped"):
    assert int(root.get(key)) == sum(int(suite.get(key))
                                     for suite in suites.values()), key
  assert int(root.get("failures")) == 1 and int(root.get("errors")) == 0
  assert float(root.get("time")) == pytest.approx(
      sum(float(suite.get("time")) for suite in suites.values()), abs=0.01)
  for suite in suites.values():
    case_times = [float(case.get("time")) for case in suite.iter("testcase")]
    assert min(case_times) >= 0
    # A suite's time is its child process's, start-up included.
    assert float(suite.get("time")) > sum(case_times) > 0
  for name, suite in suites.items():
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases)[:4] == ["format.detect", "security.op_allowlist",
                               "security.paths", "security.max_bytes"]
    assert int(suite.get("tests")) == len(cases)
    failures = {case_id: case.find("failure")
                for case_id, case in cases.items()
                if case.find("failure") is not None}
    assert int(suite.get("failures")) == len(failures)
    if name != broken:
      assert not failures, name
      # The golden layout the metadata names is checked by default.
      assert cases["golden_layout"].find("skipped") is None
      continue
    assert set(failures) == {"variables.readable"}
    message = failures["variables.readable"].get("message")
    assert message.startswith("137 of 137 tensors of variables/variables "
                              "cannot be read (")
    assert message.endswith("No such file or directory)")
    skipped = [case_id for case_id, case in cases.items()
               if case.find("skipped") is not None]
    assert "tf1.inference" in skipped
    assert int(suite.get("skipped")) == len(skipped)

  # --json: the tree schema, one slimhub-verify/1 report per module.
  result = _run(f"--module_dir={tree}", "--jobs=2", "--json")
  data = json.loads(result.stdout)
  assert data["schema"] == "slimhub-verify-tree/1"
  assert data["passed"] is False and data["counts"] == {"pass": 2, "fail": 1}
  by_path = {module["path"]: module for module in data["modules"]}
  assert set(by_path) == {broken, *good}
  assert by_path[broken]["schema"] == "slimhub-verify/1"
  assert _checks(by_path[broken])["variables.readable"]["status"] == "fail"


def test_golden_layout_by_default_and_expect_none(exported_module):
  module = exported_module(NET, FV, 3)
  result = _run(f"--module_dir={module}", "--json")
  assert result.returncode == 0, result.stdout + result.stderr
  report = json.loads(result.stdout)
  assert report["expectation"]["source"] == "slimhub metadata"
  golden = _checks(report)["golden_layout"]
  assert golden["status"] == "pass"
  assert golden["detail"] == (f"equal to golden_layouts/imagenet/{NET}/"
                              f"{FV}.json version 3")
  result = _run(f"--module_dir={module}", "--expect=none", "--json")
  golden = _checks(json.loads(result.stdout))["golden_layout"]
  assert golden["status"] == "skip"


def test_timeout_kills_the_verification(exported_module):
  result = _run(f"--module_dir={exported_module(NET, FV, 3)}",
                "--timeout=1", "--json", timeout=120)
  assert result.returncode == 1
  report = json.loads(result.stdout)
  (only,) = report["checks"]
  assert only.pop("seconds") >= 1
  assert only == {"id": "verify.timeout", "status": "fail", "lines": [],
                  "detail": "killed after 1 s (--timeout): the verification "
                            "did not finish"}


def _copy_checkpoint(prefix, target):
  os.makedirs(os.path.dirname(target), exist_ok=True)
  for path in os.listdir(os.path.dirname(prefix)):
    if path.startswith(os.path.basename(prefix) + "."):
      shutil.copy(os.path.join(os.path.dirname(prefix), path),
                  target + path[len(os.path.basename(prefix)):])


def test_checkpoint_dir_checks_each_module_of_a_tree(
    exported_module, reference_checkpoint, tmp_path):
  """Each module's parity against its own catalogue checkpoint: the right
  one passes, one of another seed fails."""
  tree = tmp_path / "out"
  modules = {"v1": (NET, FV, 3), "v2": (V2_NET, FV, 5)}
  for name, module in modules.items():
    shutil.copytree(exported_module(*module), tree / name)
  checkpoints = tmp_path / "ckpts"
  _copy_checkpoint(reference_checkpoint(NET),
                   str(checkpoints / catalog.find(NET).checkpoint))
  meta, _ = reference_data.load(V2_NET)
  deterministic.write_checkpoint(
      meta["checkpoint_variables"], reference_data.SEED + 1,
      str(checkpoints / catalog.find(V2_NET).checkpoint))

  junit = tmp_path / "report.xml"
  result = _run(f"--module_dir={tree}", f"--checkpoint_dir={checkpoints}",
                "--jobs=2", f"--junit_xml={junit}", "--json")
  assert result.returncode == 1, result.stdout + result.stderr
  failed = [(case.get("classname"), case.get("name"))
            for case in ElementTree.parse(junit).getroot().iter("testcase")
            if case.find("failure") is not None]
  assert failed == [("v2", "checkpoint_parity")]
  data = json.loads(result.stdout)
  parity = {module["path"]: _checks(module)["checkpoint_parity"]
            for module in data["modules"]}
  assert parity["v1"]["status"] == "pass", parity["v1"]
  assert "from mobilenet_v1_0.25_128.ckpt" in parity["v1"]["detail"]
  assert parity["v2"]["status"] == "fail"
  assert parity["v2"]["detail"].startswith(
      "the default output differs from the Slim net's features")
  assert data["counts"] == {"pass": 1, "fail": 1}


@pytest.mark.parametrize("flags, message", [
    (["--checkpoint=ckpt"], "--checkpoint names one module; {tree} holds 2 "
     "(pass --checkpoint_dir to check each module against its catalogue "
     "checkpoint)"),
    (["--checkpoint_dir={tree}/nowhere"],
     "--checkpoint_dir={tree}/nowhere is not a directory"),
    (["--manifest={tree}/manifest.json"], "{tree}/manifest.json"),
    (["extra"], "Unexpected arguments: extra"),
])
def test_json_errors_are_json(tmp_path, flags, message):
  tree = tmp_path / "tree"
  for name in ("a", "b"):
    (tree / name).mkdir(parents=True)
    (tree / name / "saved_model.pb").write_bytes(b"")
  result = _run(f"--module_dir={tree}", "--json",
                *[flag.format(tree=tree) for flag in flags])
  assert result.returncode == 1
  error = json.loads(result.stdout)
  assert error["schema"] == "slimhub-verify-error/1"
  assert error["passed"] is False
  assert message.format(tree=tree) in error["error"]
  assert "Traceback" not in result.stderr


def test_ci_example_verifies_with_checkpoints_and_publishes_the_report():
  """docs/ci-example.yml: the verify step checks parity and writes the JUnit
  file the reporter step publishes, always; every flag it passes exists."""
  import yaml  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(__file__), "..", "docs",
                      "ci-example.yml")
  with open(path) as f:
    workflow = yaml.safe_load(f)
  assert workflow["permissions"]["checks"] == "write"
  (job,) = workflow["jobs"].values()
  commands = [shlex.split(step["run"].replace("\\\n", " "))
              for step in job["steps"] if "run" in step]
  slimhub = [c for c in commands if c[0].startswith("slimhub-")]
  for command in slimhub:
    usage = subprocess.run(
        [os.path.join(os.path.dirname(VERIFY), command[0]), "--help"],
        capture_output=True, text=True, check=True).stdout
    for arg in command[1:]:
      flag = arg.split("=", 1)[0][2:]
      assert re.search(rf"--(\[no\])?{flag}\b", usage), (command[0], flag)
  (verify,) = [c for c in slimhub if c[0] == "slimhub-verify"]
  options = dict(arg[2:].split("=", 1) for arg in verify[1:])
  assert options["checkpoint_dir"] == "ckpts" and options["module_dir"] == "out"
  (reporter,) = [step for step in job["steps"]
                 if step.get("uses", "").startswith(
                     "mikepenz/action-junit-report@")]
  assert reporter["if"] == "always()"
  assert reporter["with"]["report_paths"] == options["junit_xml"]


# A line of TensorFlow's native logging; group 1 is the logging thread's id,
# which for the start-up lines is the process id.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +(\d+) \S+\.cc:\d+\]",
                         re.MULTILINE)


def test_verbosity_reaches_the_verifying_children(exported_module, tmp_path):
  """-v shows TensorFlow's lines from each child process (ids other than
  the driver's); without it, no process shows any."""
  tree = tmp_path / "out"
  for name, module in {"a": (NET, FV, 3), "b": (NET, CLS, 1)}.items():
    shutil.copytree(exported_module(*module), tree / name)
  runs = {}
  for verbosity in ([], ["-v=1"]):
    process = subprocess.Popen(
        [VERIFY, f"--module_dir={tree}", "--jobs=2", *verbosity],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout + stderr
    runs[bool(verbosity)] = process.pid, stderr
  assert not TF_LOG_LINE.search(runs[False][1]), runs[False][1]
  driver, stderr = runs[True]
  children = {int(pid) for pid in TF_LOG_LINE.findall(stderr)} - {driver}
  assert len(children) >= 2, stderr
