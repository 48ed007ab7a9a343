"""Beam's SDK worker for the offline runner of --engine=beam, kept quiet.

    python -m slimhub.regenerate.engines.sdk_worker LEVEL

Beam's own worker (apache_beam.runners.worker.sdk_worker_main) logs INFO
lines to stderr before it has read the pipeline options that could set its
level, and TensorFlow's C++ start-up lines follow. This entry first gives
the root logger a stderr handler at LEVEL (a logging level name; ERROR
unless the user asked for --verbosity) and, above INFO, has TensorFlow's
start-up lines hidden should anything import it, then runs Beam's worker
unchanged. It ignores SIGINT, which a Ctrl-C sends every process of the
terminal: the driver decides what stops (beam.py).
"""

import logging
import signal
import sys


def main(argv):
  level = logging.getLevelName(argv[1] if len(argv) > 1 else "ERROR")
  if level > logging.INFO:
    # The DoFn needs no TensorFlow; should anything import it, quietly.
    from slimhub import quiet  # pylint: disable=g-import-not-at-top
    quiet.import_tensorflow_quietly()
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the binaries' one line
  handler = logging.StreamHandler()
  handler.setLevel(level)
  handler.setFormatter(logging.Formatter(
      "%(levelname)s:%(name)s:%(message)s"))
  logging.getLogger().addHandler(handler)
  from apache_beam.runners.worker import sdk_worker_main  # pylint: disable=g-import-not-at-top
  sdk_worker_main.main(argv)


if __name__ == "__main__":
  main(sys.argv)
