"""SIGINT and SIGTERM as an exception, Interrupted, which the binaries turn
into one line and the status a shell gives a program the signal killed
(128 + its number: 130, 143).

A KeyboardInterrupt, so that code cleaning up on BaseException (atomic
writes: slimhub.formats.atomic) removes what it had half-written.
"""

import signal


class Interrupted(KeyboardInterrupt):
  """Work ended by signal `signum`; `note` says what it leaves (e.g. what
  the next run completes), `outcomes` what a regeneration had done."""

  def __init__(self, signum, note="", outcomes=()):
    super().__init__(signum, note)
    self.signum = signum
    self.note = note
    self.outcomes = list(outcomes)

  @property
  def exit_status(self):
    return 128 + self.signum

  def __str__(self):
    name = signal.Signals(self.signum).name
    return f"interrupted by {name}" + (f"; {self.note}" if self.note else "")


_received = []


def raise_interrupted(signum, frame):
  """A signal handler: notes the signal and raises Interrupted(signum)."""
  del frame
  _received.append(signum)
  raise Interrupted(signum)


def received():
  """The first signal raise_interrupted handled in this process, or None.

  The Interrupted may not reach the binary as itself: when the signal lands
  while TensorFlow's C++ raises an error, pybind11 turns it into a
  RuntimeError ("MISMATCH of original and normalized active exception
  types"), which a library may then word as its own error. The binaries
  ask this, not the exception's type, whether a signal ended the work.
  """
  return _received[0] if _received else None
