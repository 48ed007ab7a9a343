"""Shared plumbing of the absl binaries: --verbosity read from the command
line (slimhub.quiet does the quieting), the binary's own --help, a quiet end
on a closed output pipe or a signal, error exits."""

import os
import signal
import sys
import threading

from absl import app
from absl import flags

from slimhub import interrupts
from slimhub import quiet

# absl's spellings of --help (plus -h, which absl does not know); --helpfull
# stays absl's.
_HELP_ARGS = frozenset(
    ("-h", "-?", "--?", "-help", "--help", "-helpshort", "--helpshort"))
_VERBOSITY_ARGS = frozenset(("-v", "--v", "-verbosity", "--verbosity"))
# What a closed output pipe ends a binary with: the status a shell reports
# for a program killed by SIGPIPE, as `cat` or `grep` would be.
CLOSED_PIPE_STATUS = 128 + signal.SIGPIPE
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _flag_args(argv):
  """The arguments of `argv` that can be flags (those before `--`)."""
  for arg in argv[1:]:
    if arg == "--":
      return
    yield arg


def verbosity_requested(argv):
  """Whether `argv` sets absl's --verbosity (or -v): debugging, so
  TensorFlow's own log lines are wanted."""
  return any(arg.split("=", 1)[0] in _VERBOSITY_ARGS
             for arg in _flag_args(argv))


def verbose(argv=None):
  """Whether the binary's command line (default sys.argv) asks for
  --verbosity: what it passes down as `verbose` to slimhub.quiet and to
  the processes it starts."""
  return verbosity_requested(sys.argv if argv is None else argv)


def quiet_tensorflow():
  """slimhub.quiet.quiet_tensorflow for this binary's command line."""
  quiet.quiet_tensorflow(verbose())


def fail(program, message):
  """Prints `message` as the program's error and exits with status 1; after
  a signal, raises the interrupt instead (the error is then its doing:
  interrupts.received)."""
  signum = interrupts.received()
  if signum is not None:
    raise interrupts.Interrupted(signum)
  print(f"{program}: error: {message}", file=sys.stderr)
  sys.exit(1)


def help_text(module_name):
  """The --help of the binary defined in module `module_name`: its
  docstring and its own flags."""
  module = sys.modules[module_name]
  # absl files the flags of the __main__ module (python -m) under argv[0].
  flags_key = sys.argv[0] if module_name == "__main__" else module_name
  own_flags = flags.FLAGS.module_help(flags_key).strip().split("\n", 1)[-1]
  return (f"{(module.__doc__ or '').strip()}\n\nFlags:\n{own_flags}\n"
          "  -v,--verbosity: absl's logging level; setting it (e.g. -v=1) "
          "also shows\n    TensorFlow's start-up and log lines, hidden by "
          "default.\n"
          "  --helpfull: every flag, including absl's and TensorFlow's.")


def _end_now(signum, frame):
  """SIGINT or SIGTERM before main runs (the binary still imports, e.g.
  TensorFlow, and has written nothing): the one line, and exit at once."""
  del frame
  program = os.path.basename(sys.argv[0]).removesuffix(".py")
  interrupted = interrupts.Interrupted(signum)
  os.write(quiet.visible_stderr(), f"{program}: {interrupted}\n".encode())
  os._exit(interrupted.exit_status)  # pylint: disable=protected-access


def _handle_signals(handler, replaced):
  """Installs `handler` for SIGINT and SIGTERM where the current handler is
  one of `replaced` (so that an inherited SIG_IGN stays), in the main
  thread only."""
  if threading.current_thread() is not threading.main_thread():
    return
  for signum in _STOP_SIGNALS:
    if signal.getsignal(signum) in replaced:
      signal.signal(signum, handler)


def end_quietly_on_signals():
  """Makes SIGINT and SIGTERM end a binary with one line and 128 + the
  signal's number, where Python would print a KeyboardInterrupt traceback
  or die silently. Called when slimhub.exporters is imported, before a
  binary imports TensorFlow; run() then has them raise
  interrupts.Interrupted, so that the work in progress cleans up."""
  _handle_signals(_end_now, (signal.default_int_handler, signal.SIG_DFL))


def _program(module_name):
  """The binary's name: its docstring starts "slimhub-NAME: ..."."""
  return (sys.modules[module_name].__doc__ or "").split(":", 1)[0].strip()


def run(main, known_only=False):
  """app.run(main) for a binary: --help prints the binary's own flags and
  exits 0, a closed stdout (`| head`) ends it quietly with
  CLOSED_PIPE_STATUS, and SIGINT or SIGTERM with one line and 128 + the
  signal's number (what the work was doing cleans up as the exception
  passes). With `known_only`, flags no one defined stay in the argv main
  gets (slimhub-regenerate hands them to Beam)."""

  def parse_flags(argv):
    if any(arg in _HELP_ARGS for arg in _flag_args(argv)):
      print(help_text(main.__module__))
      sys.stdout.flush()
      sys.exit(0)
    if not known_only:
      return app.parse_flags_with_usage(argv)
    try:
      return flags.FLAGS(argv, known_only=True)
    except flags.Error as error:
      print(f"FATAL Flags parsing error: {error}", file=sys.stderr)
      sys.exit(1)

  def main_flushing_stdout(argv):
    try:
      return main(argv)
    finally:
      sys.stdout.flush()  # here, where a closed pipe can still be caught

  def end_interrupted(interrupted):
    for signum in _STOP_SIGNALS:
      signal.signal(signum, signal.SIG_IGN)  # the work is cleaned up
    print(f"{_program(main.__module__)}: {interrupted}", file=sys.stderr)
    sys.exit(interrupted.exit_status)

  _handle_signals(interrupts.raise_interrupted,
                  (_end_now, signal.default_int_handler, signal.SIG_DFL))
  try:
    app.run(main_flushing_stdout, flags_parser=parse_flags)
  except interrupts.Interrupted as interrupted:
    end_interrupted(interrupted)
  except BrokenPipeError:
    # Python would report the unwritten rest of stdout when exiting.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(CLOSED_PIPE_STATUS)
  except Exception:  # pylint: disable=broad-except
    if interrupts.received() is None:
      raise
    # An Interrupted that a library turned into another error.
    end_interrupted(interrupts.Interrupted(interrupts.received()))
