"""Named checks and how they run.

A check is a function of the verification context that returns the detail
of its pass (a line, or a line and extra lines), raises Failed naming what
is wrong, or raises Skipped saying why it does not apply. Each check has a
stable id (``tf1.tags``) and may need others: when one of those did not
pass, the check is skipped with the reason, so one defect fails one check
instead of a cascade. A check that loads or runs the module (``loads``) is
also skipped when a guard check (the security checks) did not pass.
"""

import dataclasses
import time
from typing import Callable, Sequence

PASS = "pass"
FAIL = "fail"
SKIP = "skip"


class Failed(Exception):
  """The check failed; the message names what is wrong."""

  def __init__(self, detail, lines=()):
    super().__init__(detail)
    self.detail = detail
    self.lines = tuple(lines)


class Skipped(Exception):
  """The check does not apply to this module; the message says why."""


@dataclasses.dataclass(frozen=True)
class Result:
  """The outcome of one check. lines: further detail, e.g. each difference;
  seconds: how long the check ran (JUnit's testcase time)."""
  id: str
  status: str
  detail: str
  lines: tuple = ()
  seconds: float = 0.0

  def as_json(self):
    return {"id": self.id, "status": self.status, "detail": self.detail,
            "lines": list(self.lines), "seconds": round(self.seconds, 3)}


@dataclasses.dataclass(frozen=True)
class Check:
  id: str
  function: Callable
  needs: tuple = ()
  loads: bool = False


def check(check_id, needs=(), loads=False):
  """Decorator that makes a function the check `check_id`; loads: it
  loads the module's variables or runs its graphs."""
  def wrap(function):
    return Check(check_id, function, tuple(needs), loads)
  return wrap


def _error_line(error):
  """The first line of an unexpected error, with TF's op context dropped."""
  message = getattr(error, "message", None) or str(error) or repr(error)
  return f"{type(error).__name__}: {message.strip().splitlines()[0]}"


def _blocked(check_, results, guards):
  if check_.loads:
    for guard, reason in guards.items():
      result = results.get(guard)
      if result is not None and result.status != PASS:
        return reason
  for need in check_.needs:
    result = results.get(need)
    if result is None or result.status == PASS:
      continue
    if result.status == FAIL:
      return f"needs {need}, which failed"
    return f"as {need}: {result.detail}"
  return None


def run(checks: Sequence[Check], context, guards=None):
  """Runs `checks` in order; their Results. guards: {check id: the skip
  detail of checks that load the module when that check did not pass}."""
  results = {}
  for check_ in checks:
    reason = _blocked(check_, results, guards or {})
    started = time.monotonic()
    if reason:
      result = Result(check_.id, SKIP, reason)
    else:
      try:
        outcome = check_.function(context)
        detail, lines = outcome if isinstance(outcome, tuple) else (outcome,
                                                                    ())
        result = Result(check_.id, PASS, detail, tuple(lines))
      except Failed as failure:
        result = Result(check_.id, FAIL, failure.detail, failure.lines)
      except Skipped as skip:
        result = Result(check_.id, SKIP, str(skip))
      except Exception as error:  # pylint: disable=broad-except
        # Whatever a module makes TensorFlow raise is a finding to report.
        result = Result(check_.id, FAIL, f"error: {_error_line(error)}")
    results[check_.id] = dataclasses.replace(
        result, seconds=time.monotonic() - started)
  return list(results.values())


def require_none(problems):
  """Fails when there are problems: the first is the detail (with a count
  of the others), all are the lines."""
  if problems:
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    raise Failed(problems[0] + more, problems)


def listing(items, limit=5):
  """"a, b, c (+4 more)": a short list for a one-line detail."""
  items = list(items)
  shown = ", ".join(str(item) for item in items[:limit])
  return shown + (f" (+{len(items) - limit} more)" if len(items) > limit
                  else "")
