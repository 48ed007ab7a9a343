"""MobileNet v2/v3 specifics: widths without reference data, EMA checkpoints.

Reference data covers v2 at every width but only v3 at depth 1.0, so the
feature widths of every registered width are pinned here; and the published
v3 checkpoints are EMA checkpoints, so restoring their shadows is checked on
a deterministic one.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference_data
from slimhub.build import checkpoints
from slimhub.reference import deterministic
from slimhub.reference import net_graph
from slimhub import slim_nets

# Below depth 1.0, v2's Conv_1 and v3's Conv_2 keep their full width (Slim's
# finegrain_classification_mode, as in the published checkpoints).
EXPECTED_NUM_FEATURES = {
    "mobilenet_v2_140": 1792, "mobilenet_v2_130": 1664,
    "mobilenet_v2_100": 1280, "mobilenet_v2_075": 1280,
    "mobilenet_v2_050": 1280, "mobilenet_v2_035": 1280,
    "mobilenet_v3_large_100": 1280, "mobilenet_v3_large_075": 1280,
    "mobilenet_v3_small_100": 1024, "mobilenet_v3_small_075": 1024,
}

# The 0.75 v3 nets narrow Conv_1 (960 -> 720, 576 -> 432) but not Conv_2.
V3_075_LAST_CONVS = {
    "mobilenet_v3_large_075": {"MobilenetV3/Conv_1/weights": [1, 1, 120, 720],
                               "MobilenetV3/Conv_2/weights": [1, 1, 720, 1280]},
    "mobilenet_v3_small_075": {"MobilenetV3/Conv_1/weights": [1, 1, 72, 432],
                               "MobilenetV3/Conv_2/weights": [1, 1, 432, 1024]},
}


def test_all_mobilenet_v2_v3_widths_are_registered():
  registered = {name for name in slim_nets.names()
                if name.startswith(("mobilenet_v2", "mobilenet_v3"))}
  assert registered == set(EXPECTED_NUM_FEATURES)


@pytest.mark.parametrize("name", sorted(EXPECTED_NUM_FEATURES))
def test_feature_vector_width(name):
  net = slim_nets.get(name)
  graph = net_graph.build(net, num_classes=0, image_size=224)
  assert net.num_features == EXPECTED_NUM_FEATURES[name]
  assert graph.output.features.shape.as_list() == [
      None, 1, 1, EXPECTED_NUM_FEATURES[name]]
  assert graph.output.logits is None
  assert "Logits" not in graph.output.end_points


@pytest.mark.parametrize("name", sorted(V3_075_LAST_CONVS))
def test_v3_075_keeps_the_full_width_last_conv(name):
  graph = net_graph.build(name, num_classes=0, image_size=224)
  shapes = graph.variable_shapes()
  for variable, shape in V3_075_LAST_CONVS[name].items():
    assert shapes[variable] == shape


def _write_ema_checkpoint(variables, seed, prefix):
  """Shadows hold the deterministic values at `seed`, the raw variables
  (and global_step) the values at another seed, as after EMA training."""
  keys, values = [], []
  for name, shape in variables:
    if reference_data.is_module_variable(name):
      keys.append(name + checkpoints.EMA_SUFFIX)
      values.append(deterministic.variable_value(name, shape, seed))
    keys.append(name)
    values.append(deterministic.variable_value(name, shape, seed + 1))
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys,
                    shape_and_slices=[""] * len(keys),
                    tensors=[tf.constant(value) for value in values])
  return prefix


def test_ema_checkpoint_restores_shadows(tmp_path):
  stem = "mobilenet_v3_small_100_224"
  meta, golden = reference_data.load(stem)
  checkpoint = _write_ema_checkpoint(
      meta["checkpoint_variables"], reference_data.SEED,
      str(tmp_path / "model.ckpt"))
  graph = net_graph.build("mobilenet_v3_small_100",
                          num_classes=meta["num_classes"],
                          image_size=meta["image_size"])
  with_ema = net_graph.run(graph, checkpoint, golden["images"], use_ema="auto")
  without = net_graph.run(graph, checkpoint, golden["images"], use_ema="no")
  assert reference_data.relative_error(
      with_ema["logits"], golden["logits"]) < 1e-4
  assert reference_data.relative_error(
      with_ema["features"], golden["feature_vector"]) < 1e-4
  assert reference_data.relative_error(
      without["logits"], golden["logits"]) > 0.1
  assert not np.allclose(without["features"], golden["feature_vector"])
