"""Moved to slimhub.tflite.runtime; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.tflite.runtime")
