"""slimhub's programs, thin absl binaries (pyproject.toml [project.scripts]).

Importing this package makes TensorFlow's start-up lines hidden whenever a
program first imports it (slimhub.quiet.import_tensorflow_quietly), unless
the command line asks for --verbosity; a program that does not need
TensorFlow, like slimhub-regenerate's driver, never loads it. SIGINT and
SIGTERM end a program with one line from then on
(common.end_quietly_on_signals).
"""

from slimhub import quiet
from slimhub.exporters import common

quiet.import_tensorflow_quietly(common.verbose())
common.end_quietly_on_signals()
