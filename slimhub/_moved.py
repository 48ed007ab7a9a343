"""Old import paths of moved modules, kept for one release (timm's way).

A shim module calls alias(__name__, new_name): importing the old path
warns once and yields the very module at the new path, so that attributes
set or patched through either path are the same.
"""

import importlib
import sys
import warnings


def alias(old_name, new_name):
  """Makes module `old_name` the module `new_name`, with a FutureWarning."""
  warnings.warn(f"{old_name} moved to {new_name}; the old path goes away in "
                "the next release", FutureWarning, stacklevel=3)
  sys.modules[old_name] = importlib.import_module(new_name)
