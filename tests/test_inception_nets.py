"""Inception specifics that the checkpoint tests do not see: the L2 weight
decay the Slim arg scopes put on conv and fully-connected weights (and, for
Inception-ResNet v2 only, on biases)."""

import numpy as np
import pytest
import tensorflow as tf

from slimhub.reference import net_graph
from slimhub.slim_nets import inception_common

_NETS = ("inception_v1", "inception_v2", "inception_v3",
         pytest.param("inception_v4", marks=pytest.mark.slow),
         pytest.param("inception_resnet_v2", marks=pytest.mark.slow))


@pytest.mark.parametrize("name", _NETS)
def test_regularization_losses_are_slim_weight_decay(name):
  graph = net_graph.build(name, num_classes=1001, image_size=None)
  with graph.graph.as_default():
    variables = tf.compat.v1.global_variables()
    losses = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      values = session.run({v.op.name: v for v in variables})
      total_loss = session.run(tf.add_n(losses))
  suffixes = ("/weights", "/biases") if name == "inception_resnet_v2" else (
      "/weights",)
  regularized = [value for key, value in values.items()
                 if key.endswith(suffixes)]
  assert len(losses) == len(regularized)
  expected = sum(inception_common.WEIGHT_DECAY * 0.5 * np.sum(
      np.square(value, dtype=np.float64)) for value in regularized)
  assert total_loss == pytest.approx(expected, rel=1e-4)
