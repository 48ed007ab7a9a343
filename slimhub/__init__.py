"""slimhub: TF-Slim checkpoints to TF1 Hub modules and TF2 SavedModels."""

from slimhub import compat

compat.apply()

__version__ = "0.1.0"
