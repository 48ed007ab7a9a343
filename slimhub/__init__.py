"""slimhub: TF-Slim checkpoints to TF1 Hub modules and TF2 SavedModels."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from slimhub import compat  # pylint: disable=g-import-not-at-top

compat.apply()

__version__ = "0.1.0"
