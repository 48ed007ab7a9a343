"""Checkpoint-compatible TF-Slim network definitions, one module per family."""

from slimhub.slim_nets.registry import NetOutput, SlimNet, get, names

__all__ = ["NetOutput", "SlimNet", "get", "names"]
