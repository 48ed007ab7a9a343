"""slimhub: TF-Slim checkpoints to TF1 Hub modules and TF2 SavedModels.

Importing the package does not import TensorFlow: slimhub's programs first
set up a quiet TensorFlow start-up (slimhub.exporters), and the submodules
import what they need (slimhub.slim_nets applies the tf-slim patches).
"""

__version__ = "0.1.0"
__all__ = ["get_expected_image_size"]


def __getattr__(name):
  if name == "get_expected_image_size":
    from slimhub.formats import image_size  # pylint: disable=g-import-not-at-top
    return image_size.get_expected_image_size
  raise AttributeError(f"module 'slimhub' has no attribute '{name}'")
