"""Shared plumbing of the absl binaries: quiet TensorFlow, error exits."""

import logging
import sys
import warnings

from absl import logging as absl_logging


def quiet_tensorflow():
  """Hides TF1-API deprecation and SavedModel chatter that says nothing to a
  user (the binaries print their own progress lines)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel(logging.ERROR)
  absl_logging.set_verbosity(absl_logging.ERROR)
  warnings.filterwarnings("ignore", category=UserWarning)
  warnings.filterwarnings("ignore", category=DeprecationWarning)


def fail(program, message):
  """Prints `message` as the program's error and exits with status 1."""
  print(f"{program}: error: {message}", file=sys.stderr)
  sys.exit(1)
