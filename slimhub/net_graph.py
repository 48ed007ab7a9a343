"""Moved to slimhub.reference.net_graph; this path stays for one release."""
from slimhub import _moved

_moved.alias(__name__, "slimhub.reference.net_graph")
