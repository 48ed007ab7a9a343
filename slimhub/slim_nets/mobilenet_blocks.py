"""Layers shared by MobileNet v2 and v3, named as in Slim's ``nets/mobilenet``.

A net is a table of layers run in order inside its root scope; layer ``i``
(from 1) is end point ``layer_i``. Plain convs are scoped ``Conv``,
``Conv_1``, ...; inverted residual bottlenecks ``expanded_conv``,
``expanded_conv_1``, ... with ``expand``, ``depthwise``, optional
``squeeze_excite`` and ``project`` inside, and end points
``layer_i/{expansion,depthwise}_output`` and ``layer_i/output``.

Widths scale by the depth multiplier and round to the nearest multiple of 8
(at least 8, never more than 10% below the exact value). The arg scope is
Slim's mobilenet ``training_scope``: truncated-normal init, L2 weight decay on
regular (not depthwise) convs, batch norm with scale and center.
"""

import dataclasses
import functools
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
import tf_slim as slim

from slimhub.slim_nets.heads import pooled_logits_head
from slimhub.slim_nets.registry import SlimNet

BN_DECAY = 0.997
_WEIGHT_DECAY = 4e-5
_INIT_STDDEV = 0.09
_BN_EPSILON = 1e-3
_DROPOUT_KEEP_PROB = 0.8
_DIVISOR = 8
_SQUEEZE_FACTOR = 4
# Slim's hard sigmoid gate multiplies by this literal, not by exactly 1/6.
_HARD_SIGMOID_SCALE = 0.16667


def make_divisible(value, divisor=_DIVISOR):
  """`value` rounded to a multiple of `divisor` (>= divisor), as Slim does."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


def hard_swish(x):
  with tf.name_scope("hard_swish"):
    return x * tf.nn.relu6(x + np.float32(3)) * np.float32(1. / 6.)


def _hard_sigmoid(x):
  return tf.nn.relu6(x + 3) * _HARD_SIGMOID_SCALE


def _activation(activation_fn):
  """Keyword override of the arg scope's activation; {} keeps the default."""
  return {} if activation_fn is None else {"activation_fn": activation_fn}


@dataclasses.dataclass(frozen=True)
class Conv:
  """A regular conv with batch norm, or with biases if batch_norm=False.

  keep_width: Slim's finegrain_classification_mode for the last layer; the
  multiplier may widen it but never narrows it.
  """
  depth: int
  kernel: int = 1
  stride: int = 1
  activation_fn: Optional[Callable] = None
  batch_norm: bool = True
  keep_width: bool = False
  scope_name = "Conv"

  def width(self, multiplier):
    """Output channels at depth `multiplier`."""
    if self.keep_width:
      multiplier = max(multiplier, 1.0)
    return make_divisible(self.depth * multiplier)

  def apply(self, net, *, multiplier, scope, end_points, end_point):
    del end_points, end_point  # A conv has no inner end points.
    normalizer = {} if self.batch_norm else {"normalizer_fn": None}
    return slim.conv2d(net, self.width(multiplier),
                       [self.kernel, self.kernel], stride=self.stride,
                       scope=scope, **normalizer,
                       **_activation(self.activation_fn))


@dataclasses.dataclass(frozen=True)
class Bottleneck:
  """Inverted residual: 1x1 expand (skipped if it would not widen),
  depthwise conv, optional squeeze-excite, linear 1x1 projection, and a
  residual connection when stride and width allow."""
  depth: int
  expansion: float = 6
  kernel: int = 3
  stride: int = 1
  activation_fn: Optional[Callable] = None
  squeeze_excite: bool = False
  scope_name = "expanded_conv"

  def apply(self, net, *, multiplier, scope, end_points, end_point):
    inputs = net
    input_depth = net.shape[3]
    inner_depth = make_divisible(input_depth * self.expansion)
    activation = _activation(self.activation_fn)
    with tf.compat.v1.variable_scope(scope):
      if inner_depth > input_depth:
        net = slim.conv2d(net, inner_depth, [1, 1], scope="expand",
                          **activation)
        end_points[f"{end_point}/expansion_output"] = net
      net = slim.separable_conv2d(
          net, None, [self.kernel, self.kernel], depth_multiplier=1,
          stride=self.stride, scope="depthwise", **activation)
      end_points[f"{end_point}/depthwise_output"] = net
      if self.squeeze_excite:
        net = _squeeze_excite(net)
      net = slim.conv2d(net, make_divisible(self.depth * multiplier), [1, 1],
                        activation_fn=tf.identity, scope="project")
      if self.stride == 1 and net.shape[3] == input_depth:
        net += inputs
      net = tf.identity(net, name="output")
    end_points[f"{end_point}/output"] = net
    return net


def _squeeze_excite(net):
  """Gates channels by a bottleneck of two biased 1x1 convs on the mean."""
  channels = net.shape[3]
  with tf.compat.v1.variable_scope("squeeze_excite"):
    gate = tf.reduce_mean(net, axis=[1, 2], keepdims=True)
    gate = slim.conv2d(gate, make_divisible(channels / _SQUEEZE_FACTOR),
                       [1, 1], normalizer_fn=None, activation_fn=tf.nn.relu,
                       scope="Conv")
    gate = slim.conv2d(gate, channels, [1, 1], normalizer_fn=None,
                       activation_fn=_hard_sigmoid, scope="Conv_1")
    return net * gate


@dataclasses.dataclass(frozen=True)
class GlobalPool:
  """Averages to 1x1 inside the body (v3 pools before its last conv)."""
  scope_name = None

  def apply(self, net, *, multiplier, scope, end_points, end_point):
    del multiplier, scope, end_points, end_point  # Nothing to name or scale.
    return tf.reduce_mean(net, axis=[1, 2], keepdims=True, name="AvgPool")


def arg_scope(is_training, batch_norm_decay, activation_fn):
  """Slim's MobileNet scope (v1 arg scope = v2/v3 training_scope values)."""
  with slim.arg_scope(
      [slim.conv2d, slim.separable_conv2d],
      weights_initializer=tf.compat.v1.truncated_normal_initializer(
          stddev=_INIT_STDDEV),
      activation_fn=activation_fn, normalizer_fn=slim.batch_norm,
      padding="SAME"):
    with slim.arg_scope([slim.batch_norm], center=True, scale=True,
                        decay=batch_norm_decay, epsilon=_BN_EPSILON,
                        is_training=is_training):
      with slim.arg_scope([slim.conv2d],
                          weights_regularizer=slim.l2_regularizer(
                              _WEIGHT_DECAY)) as scope:
        return scope


def _scope_names(layers):
  """Slim's default scope names: the first of a kind bare, then _1, _2..."""
  counts = {}
  for layer in layers:
    kind = layer.scope_name
    count = counts.get(kind, 0)
    counts[kind] = count + 1
    yield kind if kind is None or not count else f"{kind}_{count}"


def build_mobilenet(images, *, layers, root_scope, multiplier, activation_fn,
                    num_classes, is_training, batch_norm_decay):
  """Runs `layers` in `root_scope`, then Slim's Logits head.

  activation_fn is the net's default for layers that do not name their own;
  see registry for the rest of the builder contract.
  """
  end_points = {}
  with slim.arg_scope(arg_scope(is_training, batch_norm_decay,
                                 activation_fn)):
    with tf.compat.v1.variable_scope(root_scope, values=[images]):
      net = images
      for index, (layer, scope) in enumerate(
          zip(layers, _scope_names(layers)), start=1):
        end_point = f"layer_{index}"
        net = layer.apply(net, multiplier=multiplier, scope=scope,
                          end_points=end_points, end_point=end_point)
        end_points[end_point] = net
      return pooled_logits_head(
          net, end_points, num_classes=num_classes, is_training=is_training,
          dropout_keep_prob=_DROPOUT_KEEP_PROB, prelogits_end_point=False)


def slim_net(*, name, family, root_scope, layers, multiplier, activation_fn):
  """The SlimNet of `layers` at depth `multiplier`: fixed 224x224 input,
  1001 classes, inception preprocessing, as published."""
  return SlimNet(
      name=name,
      family=family,
      build=functools.partial(
          build_mobilenet, layers=layers, root_scope=root_scope,
          multiplier=multiplier, activation_fn=activation_fn),
      scope=root_scope,
      num_features=layers[-1].width(multiplier),
      default_image_size=224,
      bn_decay=BN_DECAY,
      preprocessing="inception",
      num_classes=1001,
      logits_variable=f"{root_scope}/Logits/Conv2d_1c_1x1/weights",
      variable_size=False,
  )
