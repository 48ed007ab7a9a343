"""Workarounds that let tf-slim 1.1.0 build graphs on TensorFlow >= 2.16.

tf-slim 1.1.0 is the last release and predates two TensorFlow changes:

* ``tensorflow/python/layers/normalization.py`` (used by ``slim.batch_norm``
  when its updates go to ``UPDATE_OPS``) lazy-loads
  ``tf_keras.legacy_tf_layers.normalization``; tf-keras 2.16+ only ships that
  package as ``tf_keras.src.legacy_tf_layers``.
* ``tensorflow.python.framework.ops.Tensor`` was removed; tf-slim's
  ``layers/utils.py`` still does ``isinstance(x, ops.Tensor)``.

``apply()`` patches both, is idempotent, and runs on the import of
``slimhub.slim_nets``, before any net is built.
``needed()`` reports which patches the installed stack still requires, so a
test notices when an upgrade makes one of them obsolete.

``graph_building()`` is the context every Slim graph is built in: it turns
off TF2's value-based ``Tensor.__eq__``/``Variable.__hash__`` because

* tf-slim's ``var in collection`` tests raise inside ``wrap_function``, and
* the legacy Keras layers behind ``slim.batch_norm`` hash every variable of
  the graph on each ``add_weight``, which makes the build quadratic in the
  variable count with the slow TF2 hash (2-3x slower for large nets).
"""

import contextlib
import importlib
import sys

import tensorflow as tf
from tensorflow.python.framework import ops as _framework_ops

_LEGACY_LAYERS = "tf_keras.legacy_tf_layers"
_LEGACY_LAYERS_SRC = "tf_keras.src.legacy_tf_layers"
_LEGACY_SUBMODULES = ("base", "convolutional", "core", "normalization",
                      "pooling", "variable_scope_shim")


def _legacy_layers_missing():
  try:
    importlib.import_module(_LEGACY_LAYERS + ".normalization")
    return False
  except ModuleNotFoundError:
    return True


def needed():
  """Names of the patches the installed TensorFlow/tf-keras still need."""
  patches = []
  if sys.modules.get(_LEGACY_LAYERS) is None and _legacy_layers_missing():
    patches.append("tf_keras_legacy_layers_alias")
  if not hasattr(_framework_ops, "Tensor"):
    patches.append("framework_ops_tensor")
  return patches


def apply():
  """Installs the patches tf-slim needs; safe to call repeatedly."""
  if sys.modules.get(_LEGACY_LAYERS) is None and _legacy_layers_missing():
    package = importlib.import_module(_LEGACY_LAYERS_SRC)
    sys.modules[_LEGACY_LAYERS] = package
    for name in _LEGACY_SUBMODULES:
      sys.modules[f"{_LEGACY_LAYERS}.{name}"] = importlib.import_module(
          f"{_LEGACY_LAYERS_SRC}.{name}")
  if not hasattr(_framework_ops, "Tensor"):
    _framework_ops.Tensor = tf.Tensor


@contextlib.contextmanager
def graph_building():
  """Identity-based tensor equality and hashing while building a graph."""
  was_enabled = tf.Tensor._USE_EQUALITY  # pylint: disable=protected-access
  tf.compat.v1.disable_tensor_equality()
  try:
    yield
  finally:
    if was_enabled:
      tf.compat.v1.enable_tensor_equality()
