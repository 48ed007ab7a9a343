"""What the engines share while they build: progress lines, and the signals
that stop a run.

A run stops handing out work at the first SIGINT or SIGTERM. SIGINT (Ctrl-C)
lets the modules in flight finish, so their work is kept; a second signal,
or SIGTERM (what timeouts and service managers send before SIGKILL), stops
them at once. Either way a module is in place and recorded whole or not at
all, and the next run builds what is left.
"""

import signal
import threading

from slimhub.regenerate import worker as worker_lib

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _eta(durations, remaining, workers):
  if not durations:
    return "ETA unknown"
  seconds = int(sum(durations) / len(durations) * remaining / workers)
  return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
  """The progress lines of a run of `total` modules on `workers` workers:
  one when a module starts (with why it is built), one when it ends ([n/N],
  its time, what is left, an ETA from the average build time so far)."""

  def __init__(self, total, workers, log):
    self.total, self.workers, self.log = total, max(workers, 1), log
    self.done, self.durations = 0, []
    self.width = len(str(total))

  def started(self, job):
    self.log(f"{'':>{2 * self.width + 3}} start  {job.key} ({job.reason})")

  def finished(self, outcome, log_lines=(), reason=None):
    """Logs `outcome`, with the worker's `log_lines` under a failure;
    `reason` (the job's) when no start line gave it."""
    self.done += 1
    if outcome.status == worker_lib.BUILT:
      self.durations.append(outcome.seconds)
    remaining = self.total - self.done
    took = "" if outcome.seconds is None else f" in {outcome.seconds:.1f}s"
    why = f" ({reason})" if reason else ""
    self.log(f"[{self.done:>{self.width}}/{self.total}] {outcome.status:<6} "
             f"{outcome.key}{took}{why}; {remaining} left, "
             f"{_eta(self.durations, remaining, self.workers)}")
    if outcome.status == worker_lib.FAILED:
      self.log("    " + "\n    ".join([outcome.reason, *log_lines]))


class Stop:
  """While entered (in the main thread; elsewhere it never fires), SIGINT
  and SIGTERM set `signum` (the first signal) and `now` (stop the modules
  in flight) instead of raising; the previous handlers come back on exit.
  The engines call announce() as they poll: a signal handler must not
  print, as it may interrupt a print."""

  def __init__(self, log):
    self.log = log
    self.signum = None
    self.now = False
    self._previous = {}
    self._announced = (None, False)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in STOP_SIGNALS:
        self._previous[signum] = signal.signal(signum, self._received)
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  @property
  def requested(self):
    return self.signum is not None

  def _received(self, signum, frame):
    del frame
    if self.signum is None:
      self.signum = signum
      self.now = signum == signal.SIGTERM
    else:
      self.now = True

  def announce(self, in_flight=None):
    """Logs what the signals received since the last call change;
    `in_flight`: how many modules are being built, if known."""
    if (self.signum, self.now) == self._announced:
      return
    name = signal.Signals(self.signum).name
    which = "those" if in_flight is None else f"the {in_flight}"
    if self._announced[0] is None:
      self.log(f"{name}: no more modules are started; " + (
          f"stopping {which} in flight" if self.now else
          f"finishing {which} in flight (Ctrl-C again stops them)"))
    else:
      self.log(f"stopping {which} in flight")
    self._announced = (self.signum, self.now)
