"""slimhub: TF-Slim checkpoints to TF1 Hub modules and TF2 SavedModels."""

from slimhub import compat

compat.apply()

from slimhub.image_size import get_expected_image_size  # pylint: disable=g-import-not-at-top,wrong-import-position

__version__ = "0.1.0"
__all__ = ["get_expected_image_size"]
