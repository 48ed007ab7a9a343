"""Checkpoint-compatible TF-Slim network definitions, one module per family."""

from slimhub import compat

compat.apply()  # before any net builds a tf-slim graph

from slimhub.slim_nets.registry import NetOutput, SlimNet, get, names  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ["NetOutput", "SlimNet", "get", "names"]
