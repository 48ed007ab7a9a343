"""slimhub-verify's library: contract checks of any TF1 Hub image module or
TF2 reusable image SavedModel, golden layouts and module diffs.

Never runs Python from a module: TF1 graphs are imported from their
MetaGraphDefs and SavedModels loaded with tf.saved_model.load.

The verifier is imported on first use of its names, so that the module
consumers can use ``slimhub.verify.security`` without loading the verifier
(and through it the exporter).
"""

import importlib

__all__ = ["Report", "VerifyError", "verify"]


def __getattr__(name):
  if name in __all__:
    return getattr(importlib.import_module("slimhub.verify.verifier"), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
