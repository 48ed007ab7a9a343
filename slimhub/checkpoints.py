"""Moved to slimhub.build.checkpoints; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.build.checkpoints")
