"""Moved to slimhub.build.module_fn; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.build.module_fn")
