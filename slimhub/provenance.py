"""Moved to slimhub.build.provenance; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.build.provenance")
