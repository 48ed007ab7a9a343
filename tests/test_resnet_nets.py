"""ResNet and VGG specifics that the cross-family tests in test_nets.py miss."""

import numpy as np
import pytest
import tensorflow as tf

import reference_data
from slimhub.reference import deterministic
from slimhub.reference import net_graph
from slimhub import slim_nets

# Slim's weight decay of each family's conv weights (logits included).
_WEIGHT_DECAY = {"resnet_v1_50": 1e-4, "resnet_v2_50": 1e-4, "vgg_16": 5e-4}


def test_resnet_v1_builds_for_a_1001_class_checkpoint(tmp_path):
  """Google's retrained resnet_v1 checkpoints have a background class; the
  catalogue takes the class count from the checkpoint's logits shape."""
  net = slim_nets.get("resnet_v1_50")
  meta, golden = reference_data.load("resnet_v1_50")
  variables = [(name, shape[:-1] + [1001] if name.startswith(
      f"{net.name}/logits/") else shape)
               for name, shape in meta["checkpoint_variables"]]
  checkpoint = deterministic.write_checkpoint(
      variables, reference_data.SEED, str(tmp_path / "model.ckpt"))
  graph = net_graph.build(net, num_classes=1001, image_size=224)
  assert graph.variable_shapes()[net.logits_variable] == [1, 1, 2048, 1001]
  outputs = net_graph.run(graph, checkpoint, golden["images"])
  assert outputs["logits"].shape == (2, 1001)
  assert reference_data.relative_error(
      outputs["features"], golden["feature_vector"]) < 1e-4


@pytest.mark.parametrize("name", sorted(_WEIGHT_DECAY))
def test_every_conv_weight_has_the_slim_weight_decay(name):
  graph = net_graph.build(name, num_classes=10, image_size=224)
  with graph.graph.as_default():
    losses = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
    weights = [v for v in tf.compat.v1.global_variables()
               if v.op.name.endswith("/weights")]
    assert len(losses) == len(weights)
    expected = _WEIGHT_DECAY[name] * tf.add_n(
        [tf.nn.l2_loss(w) for w in weights])
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      total, expected = session.run([tf.add_n(losses), expected])
  np.testing.assert_allclose(total, expected, rtol=1e-5)


def _dropout_layers(tensor):
  """Scopes of the dropout layers whose random masks `tensor` depends on."""
  seen, pending, layers = set(), [tensor.op], set()
  while pending:
    op = pending.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    if op.type == "RandomUniform":
      layers.add(op.name.split("/")[1])
    pending.extend(i.op for i in op.inputs)
  return layers


def test_vgg_dropout_spares_the_features():
  """Training builds drop out fc6 (into fc7) and fc7 (into fc8), but the
  feature vector is fc7 before its dropout; eval builds drop nothing."""
  train = net_graph.build("vgg_16", num_classes=1000, image_size=224,
                          is_training=True)
  assert _dropout_layers(train.output.features) == {"dropout6"}
  assert _dropout_layers(train.output.logits) == {"dropout6", "dropout7"}
  evaluation = net_graph.build("vgg_16", num_classes=1000, image_size=224)
  assert not _dropout_layers(evaluation.output.logits)


@pytest.mark.parametrize("name", ["resnet_v1_50", "resnet_v2_50"])
def test_resnet_builds_in_a_tf2_function_graph(name):
  """The TF2 exporter builds the net in wrap_function with resource
  variables; the end points come from graph collections, so check there."""
  net = slim_nets.get(name)
  built = {}

  def body(images):
    with tf.compat.v1.variable_scope("", use_resource=True):
      output = net.build(images, num_classes=0, is_training=False,
                         batch_norm_decay=net.bn_decay)
    built["end_points"] = sorted(output.end_points)
    return output.features

  function = tf.compat.v1.wrap_function(
      body, [tf.TensorSpec([None, None, None, 3], tf.float32)])
  assert f"{name}/block4" in built["end_points"]
  assert "global_pool" in built["end_points"]
  features = function(tf.zeros([1, 96, 128, 3]))
  assert features.shape == (1, 1, 1, net.num_features)
  # All of the checkpoint's variables but the logits weights and biases.
  assert len(function.variables) == len(
      reference_data.module_variables(name)) - 2
