"""What the Slim Inception nets share: arg scope, builder, heads, blocks.

All of them train with BN decay 0.9997, epsilon 0.001, no BN scale, weight
decay 4e-5 and dropout keep probability 0.8 before the logits. Inception v4
and Inception-ResNet v2 are not in tf_slim.nets; they are built here from
tables of ``Layer``s whose names are the checkpoint's scope names.
"""

import typing

import tensorflow as tf
import tf_slim as slim

from slimhub.slim_nets import heads
from slimhub.slim_nets.heads import pooled_logits_head
from slimhub.slim_nets.registry import NetOutput, SlimNet

BN_DECAY = 0.9997
WEIGHT_DECAY = 4e-5
BN_EPSILON = 1e-3
DROPOUT_KEEP_PROB = 0.8
NUM_CLASSES = 1001


def inception_arg_scope(is_training, batch_norm_decay, *,
                        weights_initializer=None, regularize_biases=False):
  """Slim's Inception arg scope: conv + BN without scale + ReLU.

  The weights initializer defaults to Slim's variance scaling;
  Inception-ResNet v2 keeps slim's Xavier default and also regularizes
  biases.
  """
  regularizer = slim.l2_regularizer(WEIGHT_DECAY)
  with slim.arg_scope(
      [slim.conv2d, slim.fully_connected], weights_regularizer=regularizer,
      biases_regularizer=regularizer if regularize_biases else None):
    with slim.arg_scope(
        [slim.conv2d],
        weights_initializer=(weights_initializer or
                             slim.variance_scaling_initializer()),
        activation_fn=tf.nn.relu,
        normalizer_fn=slim.batch_norm,
        normalizer_params={"decay": batch_norm_decay, "epsilon": BN_EPSILON,
                           "scale": False}):
      with slim.arg_scope([slim.batch_norm, slim.dropout],
                          is_training=is_training) as scope:
        return scope


def build_inception(images, *, num_classes, is_training, batch_norm_decay,
                    scope, base, head=pooled_logits_head,
                    arg_scope=inception_arg_scope):
  """Builds `base` (images, scope=...) -> (net, end_points) and `head` on it
  in the variable scope `scope`; see registry for the contract."""
  with slim.arg_scope(arg_scope(is_training, batch_norm_decay)):
    with tf.compat.v1.variable_scope(scope, values=[images]) as net_scope:
      net, end_points = base(images, scope=net_scope)
      return head(net, end_points, num_classes=num_classes,
                  is_training=is_training,
                  dropout_keep_prob=DROPOUT_KEEP_PROB)


def fully_connected_head(net, end_points, *, num_classes, is_training,
                         dropout_keep_prob):
  """The Logits scope of Inception v4 and Inception-ResNet v2.

  Global average pooling (end point ``global_pool``), then for
  classification builds flatten, dropout (end point ``PreLogitsFlatten``)
  and a fully-connected ``Logits`` layer.
  """
  with tf.compat.v1.variable_scope("Logits"):
    pooled = heads.global_pool(net, end_points)
    if not num_classes:
      return NetOutput(features=pooled, logits=None, end_points=end_points)
    net = slim.flatten(pooled, scope="PreLogitsFlatten")
    net = slim.dropout(net, keep_prob=dropout_keep_prob,
                       is_training=is_training, scope="Dropout")
    end_points["PreLogitsFlatten"] = net
    logits = slim.fully_connected(net, num_classes, activation_fn=None,
                                  scope="Logits")
  end_points["Logits"] = logits
  end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
  return NetOutput(features=pooled, logits=logits, end_points=end_points)


def inception_net(name, build, *, scope, num_features, image_size,
                  logits_scope):
  """The SlimNet of an ImageNet Inception checkpoint."""
  return SlimNet(
      name=name,
      family=name,
      build=build,
      scope=scope,
      num_features=num_features,
      default_image_size=image_size,
      bn_decay=BN_DECAY,
      preprocessing="inception",
      num_classes=NUM_CLASSES,
      logits_variable=f"{scope}/Logits/{logits_scope}/weights",
      variable_size=True,
  )


class Layer(typing.NamedTuple):
  """A conv or pooling layer; `name` (e.g. "Conv2d_0b_1x7", "MaxPool_1a_3x3",
  "Conv2d_1x1") is its checkpoint scope and gives its kind and kernel size.
  `depth` is None for pooling layers."""
  name: str
  depth: typing.Optional[int] = None
  stride: int = 1
  padding: str = "SAME"


def _apply_layer(net, layer):
  kind = layer.name.split("_")[0]
  kernel = [int(size) for size in layer.name.split("_")[-1].split("x")]
  if kind == "Conv2d":
    return slim.conv2d(net, layer.depth, kernel, stride=layer.stride,
                       padding=layer.padding, scope=layer.name)
  pool = {"MaxPool": slim.max_pool2d, "AvgPool": slim.avg_pool2d}[kind]
  return pool(net, kernel, stride=layer.stride, padding=layer.padding,
              scope=layer.name)


def _apply_branch(net, branch):
  """Applies the layers of `branch` in turn; a tuple of Layers within it is
  a fork: each applied to the same input, outputs concatenated."""
  for step in branch:
    if isinstance(step, Layer):
      net = _apply_layer(net, step)
    else:
      net = tf.concat([_apply_layer(net, layer) for layer in step], 3)
  return net


def concat_branches(net, branches):
  """Applies each branch to `net` in scope Branch_<i>; concatenates them."""
  outputs = []
  for index, branch in enumerate(branches):
    with tf.compat.v1.variable_scope(f"Branch_{index}"):
      outputs.append(_apply_branch(net, branch))
  return tf.concat(outputs, 3)


def add_layers(net, end_points, layers):
  """Applies plain `layers` in turn, each recorded as an end point."""
  for layer in layers:
    net = _apply_layer(net, layer)
    end_points[layer.name] = net
  return net


def add_mixed(net, end_points, name, branches):
  """Adds the multi-branch block `name`, recorded as an end point."""
  with tf.compat.v1.variable_scope(name):
    net = concat_branches(net, branches)
  end_points[name] = net
  return net
