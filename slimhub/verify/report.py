"""A Report as a readable table or as JSON (schema in docs/verify.md);
and the report of a tree of modules, from each module's JSON report."""

import dataclasses
import json
import os
from typing import Any, Optional

from slimhub.verify import checks
from slimhub.verify import layout

SCHEMA = "slimhub-verify/1"
TREE_SCHEMA = "slimhub-verify-tree/1"
MAX_LINES = 20  # further lines of a failed check shown in the table


@dataclasses.dataclass(frozen=True)
class Comparison:
  """The differences of --against (layout.* and metadata.* paths)."""
  directory: str
  format: str
  differences: tuple


@dataclasses.dataclass(frozen=True)
class Report:
  """One module's verification: its format, what it was expected to be
  (an expectations.Expectation) and the checks' results (checks.Result)."""
  directory: str
  format: Optional[str]
  expectation: Any
  results: tuple
  comparison: Optional[Comparison] = None

  @property
  def passed(self):
    """True when no check failed (skipped checks do not count)."""
    return all(result.status != checks.FAIL for result in self.results)

  def counts(self):
    return {status: sum(1 for r in self.results if r.status == status)
            for status in (checks.PASS, checks.FAIL, checks.SKIP)}


def failed(directory, check_id, detail, seconds=0.0):
  """The Report of a module whose verification ended in one failed check
  (e.g. killed after the timeout)."""
  return Report(directory=directory, format=None, expectation=None,
                results=(checks.Result(check_id, checks.FAIL, detail,
                                       seconds=seconds),))


def as_json(report):
  """The report as the documented JSON object."""
  comparison = report.comparison
  return {
      "schema": SCHEMA,
      "module_dir": report.directory,
      "format": report.format,
      "passed": report.passed,
      "counts": report.counts(),
      "expectation": (report.expectation.as_json() if report.expectation
                      else None),
      "checks": [result.as_json() for result in report.results],
      "against": None if comparison is None else {
          "module_dir": comparison.directory,
          "format": comparison.format,
          "identical": not comparison.differences,
          "differences": [d.as_json() for d in comparison.differences],
      },
  }


def json_text(report):
  return json.dumps(as_json(report), indent=2)


def _result_lines(result, width):
  status = result.status.upper() if result.status == checks.FAIL else (
      result.status)
  lines = [f"{status:<6}{result.id:<{width}}  {result.detail}"]
  if result.status == checks.FAIL and len(result.lines) > 1:
    shown = result.lines[:MAX_LINES]
    lines += [f"{'':<6}{'':<{width}}    {line}" for line in shown]
    if len(result.lines) > MAX_LINES:
      lines.append(f"{'':<6}{'':<{width}}    ... and "
                   f"{len(result.lines) - MAX_LINES} more (see --json)")
  return lines


def table(report):
  """The report as lines of text: header, one row per check, verdict."""
  lines = [f"slimhub-verify {report.directory}"]
  if report.expectation:
    lines.append(f"expecting {report.expectation.describe()}")
  lines.append("")
  width = max(len(result.id) for result in report.results)
  for result in report.results:
    lines += _result_lines(result, width)
  counts = report.counts()
  failed = [r.id for r in report.results if r.status == checks.FAIL]
  total = len(report.results)
  verdict = (f"FAILED: {counts[checks.FAIL]} of {total} checks failed "
             f"({', '.join(failed)})" if failed else
             f"PASSED: {counts[checks.PASS]} of {total} checks passed")
  lines += ["", f"{verdict}; {counts[checks.SKIP]} skipped."]
  comparison = report.comparison
  if comparison is not None:
    lines += ["", f"Differences from {report.directory} to "
              f"{comparison.directory}: {len(comparison.differences)}"]
    lines += [f"  {line}"
              for line in layout.summarize(comparison.differences)]
  return "\n".join(lines)


# A tree: `outcomes` have module_dir, passed and report (as_json's object).

def tree_json(root, outcomes):
  """The tree's documented JSON object (TREE_SCHEMA): each module's report
  under its path relative to `root`."""
  return {
      "schema": TREE_SCHEMA, "module_dir": root,
      "passed": all(o.passed for o in outcomes),
      "counts": {"pass": sum(o.passed for o in outcomes),
                 "fail": sum(not o.passed for o in outcomes)},
      "modules": [{"path": os.path.relpath(o.module_dir, root), **o.report}
                  for o in outcomes]}


def tree_table(root, outcomes):
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
  failed_names = [name for name, o in zip(names, outcomes) if not o.passed]
  lines.append("")
  lines.append(f"FAILED: {len(failed_names)} of {len(outcomes)} modules "
               f"failed ({', '.join(failed_names)})" if failed_names else
               f"PASSED: all {len(outcomes)} modules passed")
  return "\n".join(lines)
