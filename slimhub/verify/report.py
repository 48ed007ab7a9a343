"""A Report as a readable table or as JSON (schema in docs/verify.md)."""

import json

from slimhub.verify import checks
from slimhub.verify import layout

SCHEMA = "slimhub-verify/1"
MAX_LINES = 20  # further lines of a failed check shown in the table


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
