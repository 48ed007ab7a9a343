"""The tf-slim compat patches: still needed on this stack, and sufficient."""

import pathlib
import subprocess
import sys

import tensorflow as tf

COMPAT = pathlib.Path(__file__).resolve().parent.parent / "slimhub" / "compat.py"

_PROBE = f"""
import importlib.util, json
spec = importlib.util.spec_from_file_location("compat_alone", {str(COMPAT)!r})
compat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compat)
import tensorflow as tf
import tf_slim as slim

def build_batch_norm():
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 3])
    slim.batch_norm(x, decay=tf.constant(0.9), is_training=True)
    return len(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS))

before = compat.needed()
try:
  build_batch_norm()
  unpatched = "built"
except Exception as error:  # the failure the patches exist for
  unpatched = type(error).__name__
compat.apply()
compat.apply()
print(json.dumps(dict(before=before, unpatched=unpatched,
                      after=compat.needed(), update_ops=build_batch_norm())))
"""


def _probe():
  result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True,
                          text=True, check=True)
  import json  # pylint: disable=g-import-not-at-top
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_patches_are_still_needed_and_make_slim_batch_norm_work():
  seen = _probe()
  # If this fails because a patch is no longer needed, delete that patch.
  assert seen["before"] == ["tf_keras_legacy_layers_alias",
                            "framework_ops_tensor"]
  assert seen["unpatched"] in ("ModuleNotFoundError", "AttributeError")
  assert seen["after"] == []
  assert seen["update_ops"] == 2


def test_graph_building_restores_tensor_equality():
  from slimhub import compat  # pylint: disable=g-import-not-at-top
  assert tf.Tensor._USE_EQUALITY  # pylint: disable=protected-access
  with compat.graph_building():
    assert not tf.Tensor._USE_EQUALITY  # pylint: disable=protected-access
  assert tf.Tensor._USE_EQUALITY  # pylint: disable=protected-access
