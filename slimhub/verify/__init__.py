"""slimhub-verify's library: contract checks of any TF1 Hub image module or
TF2 reusable image SavedModel, golden layouts and module diffs.

Never runs Python from a module: TF1 graphs are imported from their
MetaGraphDefs and SavedModels loaded with tf.saved_model.load.
"""

from slimhub.verify.verifier import Report
from slimhub.verify.verifier import VerifyError
from slimhub.verify.verifier import verify

__all__ = ["Report", "VerifyError", "verify"]
