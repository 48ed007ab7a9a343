"""Moved to slimhub.reference.quant_calibration; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.reference.quant_calibration")
