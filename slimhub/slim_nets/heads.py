"""The classification head shared by the Inception and MobileNet v1 nets.

Slim's "Logits" scope: global average pooling (end point ``global_pool``),
then, only for classification builds, dropout and a 1x1 conv to the logits.
Pooling with ``reduce_mean`` rather than a fixed 7x7 window is what makes the
v3+ variable-input modules possible; at the default size both are the same.
"""

import tensorflow as tf
import tf_slim as slim

from slimhub.slim_nets.registry import NetOutput


def global_pool(net, end_points, name="global_pool"):
  """Global average pooling to [B, 1, 1, C], the `global_pool` end point."""
  pooled = tf.reduce_mean(net, axis=[1, 2], keepdims=True, name=name)
  end_points["global_pool"] = pooled
  return pooled


def pooled_logits_head(net, end_points, *, num_classes, is_training,
                       dropout_keep_prob, logits_scope="Conv2d_1c_1x1",
                       prelogits_end_point=True):
  """Adds the Logits scope to `net`; returns the NetOutput of the build."""
  with tf.compat.v1.variable_scope("Logits"):
    pooled = global_pool(net, end_points)
    if not num_classes:
      return NetOutput(features=pooled, logits=None, end_points=end_points)
    net = slim.dropout(pooled, keep_prob=dropout_keep_prob,
                       is_training=is_training, scope="Dropout_1b")
    if prelogits_end_point:
      end_points["PreLogits"] = net
    logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                         normalizer_fn=None, scope=logits_scope)
    logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
  end_points["Logits"] = logits
  end_points["Predictions"] = slim.softmax(logits, scope="Predictions")
  return NetOutput(features=pooled, logits=logits, end_points=end_points)
