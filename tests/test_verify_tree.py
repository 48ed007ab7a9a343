"""slimhub-verify on a tree of modules, in child processes: --jobs, the
summary, JUnit XML, --timeout, and the golden layout checked by default.

Every test runs the installed binary as a subprocess, as CI would.
"""

import json
import os
import shutil
import subprocess
import sys
from xml.etree import ElementTree

from slimhub import catalog

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
