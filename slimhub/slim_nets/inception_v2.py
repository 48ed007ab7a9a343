"""Inception v2 (Ioffe & Szegedy 2015, "BN-Inception"), Slim-compatible.

The body is tf-slim's own ``inception_v2_base`` (its variable names are the
checkpoint's); slimhub supplies the arg scope, because tf-slim 1.1.0's
``inception_v2_arg_scope`` cannot take the BN decay, and the head.
"""

import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import inception_v2 as tf_slim_inception_v2

from slimhub.slim_nets.heads import pooled_logits_head
from slimhub.slim_nets.registry import SlimNet

BN_DECAY = 0.9997
_WEIGHT_DECAY = 4e-5
_BN_EPSILON = 1e-3
_DROPOUT_KEEP_PROB = 0.8


def inception_arg_scope(is_training, batch_norm_decay,
                        weight_decay=_WEIGHT_DECAY):
  """Slim's Inception arg scope (conv + BN without scale + ReLU)."""
  with slim.arg_scope([slim.conv2d, slim.fully_connected],
                      weights_regularizer=slim.l2_regularizer(weight_decay)):
    with slim.arg_scope(
        [slim.conv2d],
        weights_initializer=slim.variance_scaling_initializer(),
        activation_fn=tf.nn.relu,
        normalizer_fn=slim.batch_norm,
        normalizer_params={"decay": batch_norm_decay, "epsilon": _BN_EPSILON,
                           "scale": False}):
      with slim.arg_scope([slim.batch_norm, slim.dropout],
                          is_training=is_training) as scope:
        return scope


def build(images, *, num_classes, is_training, batch_norm_decay):
  """Builds InceptionV2; see registry for the contract."""
  with slim.arg_scope(inception_arg_scope(is_training, batch_norm_decay)):
    with tf.compat.v1.variable_scope("InceptionV2", values=[images]) as scope:
      net, end_points = tf_slim_inception_v2.inception_v2_base(
          images, scope=scope)
      return pooled_logits_head(
          net, end_points, num_classes=num_classes, is_training=is_training,
          dropout_keep_prob=_DROPOUT_KEEP_PROB)


NETS = (SlimNet(
    name="inception_v2",
    family="inception_v2",
    build=build,
    scope="InceptionV2",
    num_features=1024,
    default_image_size=224,
    bn_decay=BN_DECAY,
    preprocessing="inception",
    num_classes=1001,
    logits_variable="InceptionV2/Logits/Conv2d_1c_1x1/weights",
    variable_size=True,
),)
