"""Shared plumbing of the absl binaries: quiet TensorFlow, error exits."""

import logging
import sys
import warnings


def quiet_tensorflow():
  """Hides TF1-API deprecation chatter that says nothing to a user."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel(logging.ERROR)
  warnings.filterwarnings("ignore", category=UserWarning)
  warnings.filterwarnings("ignore", category=DeprecationWarning)


def fail(program, message):
  """Prints `message` as the program's error and exits with status 1."""
  print(f"{program}: error: {message}", file=sys.stderr)
  sys.exit(1)
