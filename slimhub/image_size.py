"""Moved to slimhub.formats.image_size; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.formats.image_size")
