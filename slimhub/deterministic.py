"""Moved to slimhub.reference.deterministic; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.reference.deterministic")
