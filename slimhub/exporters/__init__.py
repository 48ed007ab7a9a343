"""slimhub's programs, thin absl binaries (pyproject.toml [project.scripts]).

Importing this package imports TensorFlow with its start-up lines hidden,
before any program module imports it (common.import_tensorflow_quietly).
"""

from slimhub.exporters import common

common.import_tensorflow_quietly()
