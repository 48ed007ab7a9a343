"""TensorFlow kept quiet, unless the user asked for its lines (verbose).

slimhub's programs print their own progress lines; TensorFlow's start-up
lines (oneDNN, CUDA stubs, CPU features), its C++ log and its Python
deprecation chatter say nothing to a user and hide those lines. A user who
debugs asks for them with a binary's --verbosity (-v); the binary then
passes `verbose` down explicitly to every process it starts (verify's
children, regenerate's workers, Beam's SDK workers), since those parse no
flags. This is library code: binaries, workers and tools all call it.

    quiet.import_tensorflow_quietly(verbose)   # before anything imports TF
    quiet.quiet_tensorflow(verbose)            # Python-level log chatter
"""

import contextlib
import faulthandler
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import warnings

# The file descriptor of the user's stderr while stderr_hidden() has moved
# descriptor 2 (a signal handler writes its one line there).
_visible_stderr = 2


def visible_stderr():
  """The file descriptor that reaches the user's stderr right now."""
  return _visible_stderr


@contextlib.contextmanager
def stderr_hidden():
  """Points file descriptor 2 at a temporary file for the block (native
  libraries write there directly); replays the file if the block fails.
  A crash in the block (e.g. an abort in a native library) still shows its
  Python traceback on the real stderr."""
  global _visible_stderr
  sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # no stderr at all: nothing to hide
    yield
    return
  _visible_stderr = saved
  faulthandler_was_enabled = faulthandler.is_enabled()
  faulthandler.enable(file=saved)
  with tempfile.TemporaryFile() as hidden:
    os.dup2(hidden.fileno(), 2)
    failed = True
    try:
      yield
      failed = False
    except KeyboardInterrupt:
      failed = False  # a signal (interrupts.Interrupted), not a failure
      raise
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      _visible_stderr = 2
      if faulthandler_was_enabled:
        faulthandler.enable()
      else:
        faulthandler.disable()
      os.close(saved)
      if failed:
        hidden.seek(0)
        os.write(2, hidden.read())


def _import_quietly(loader, module):
  """Runs TensorFlow's import, and its search for devices, with stderr
  hidden."""
  with stderr_hidden():
    loader.exec_module(module)
    module.config.list_physical_devices()


class _QuietTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Finds `tensorflow` until it is imported, and loads it with
  _import_quietly; the module keeps its own loader."""

  def __init__(self):
    self.loader = None
    self._finding = False

  def find_spec(self, fullname, path=None, target=None):
    del path, target  # `tensorflow` is a top-level package
    if fullname != "tensorflow" or self._finding:
      return None
    self._finding = True  # find_spec below asks this finder too
    try:
      spec = importlib.util.find_spec(fullname)
    finally:
      self._finding = False
    if spec is None or spec.loader is None:
      return spec
    self.loader = spec.loader
    spec.loader = self
    return spec

  def create_module(self, spec):
    return self.loader.create_module(spec)

  def exec_module(self, module):
    sys.meta_path.remove(self)
    module.__spec__.loader = module.__loader__ = self.loader
    _import_quietly(self.loader, module)


def import_tensorflow_quietly(verbose=False):
  """Makes the first import of TensorFlow, whenever something does it,
  hide its start-up lines on stderr.

  TensorFlow's native libraries log their start-up before absl's C++
  logging is initialised, ignoring TF_CPP_MIN_LOG_LEVEL. So stderr is
  hidden while TensorFlow loads and looks for devices, and shown if that
  fails; TF_CPP_MIN_LOG_LEVEL=2 (unless set) then hides later C++ info and
  warnings. Lazy, so that a program that never needs TensorFlow
  (slimhub-regenerate's driver) never pays for it. Does nothing when
  TensorFlow is already imported or `verbose`.
  """
  if verbose or "tensorflow" in sys.modules:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if not any(isinstance(finder, _QuietTensorFlow) for finder in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlow())


def quiet_tensorflow(verbose=False):
  """Unless `verbose`, hides TF1-API deprecation and SavedModel chatter
  (Python logging, absl logging, warnings). Does not import TensorFlow."""
  if verbose:
    return
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  absl_logging.set_verbosity(absl_logging.ERROR)
  warnings.filterwarnings("ignore", category=UserWarning)
  warnings.filterwarnings("ignore", category=DeprecationWarning)


def worker_environment(environment, verbose):
  """`environment` for a child process: quiet TensorFlow C++ logs unless
  `verbose` (then the user's own TF_CPP_MIN_LOG_LEVEL, if any, stays)."""
  environment = dict(environment)
  if not verbose:
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  return environment
