"""Quantized MobileNet v1: the eval graph of tf.contrib.quantize, in TF2 ops.

Slim's ``mobilenet_v1_<d>_<s>_quant`` checkpoints were trained with
``tf.contrib.quantize.create_training_graph``; TF 2.21 has no contrib, so
this builds what ``create_eval_graph`` turned the float net into:

* batch norm folded into each conv: ``m = gamma * rsqrt(moving_variance +
  0.001)``; regular conv weights scaled by ``m`` along the output channels,
  depthwise weights along the input channels (``m`` as ``[C, 1]``); bias
  ``beta - moving_mean * m`` added after the conv, then ReLU6;
* 8-bit ``FakeQuantWithMinMaxVars`` on the folded weights (narrow range,
  ``weights_quant/{min,max}``) and on every ReLU6 output (full range,
  ``act_quant/{min,max}``); the logits quantize their weights (narrow) and
  their BiasAdd output (full range); the average pool is not quantized and
  dropout is the identity.

The float variables keep their Slim names (``MobilenetV1/Conv2d_0/weights``,
``.../BatchNorm/gamma``); the ranges sit under the op scope, which re-enters
the root scope: ``MobilenetV1/MobilenetV1/Conv2d_0/act_quant/min``, except
the logits' ``MobilenetV1/Logits/Conv2d_1c_1x1/weights_quant/min``. They are
only read: the nets are inference-only (no training graph, no batch norm
updates) and their input size is fixed.
"""

import functools

import tensorflow as tf

from slimhub.slim_nets import mobilenet_v1
from slimhub.slim_nets.registry import NetOutput
from slimhub.slim_nets.registry import SlimNet

ROOT = "MobilenetV1"
LOGITS_SCOPE = "Logits/Conv2d_1c_1x1"
WEIGHTS_QUANT = "weights_quant"
ACT_QUANT = "act_quant"
NUM_BITS = 8
BN_EPSILON = 1e-3


def range_scope(layer):
  """The variable scope holding `layer`'s weights_quant / act_quant ranges."""
  if layer == LOGITS_SCOPE:
    return f"{ROOT}/{LOGITS_SCOPE}"
  return f"{ROOT}/{ROOT}/{layer}"


def _variable(name, shape):
  # Values always come from a checkpoint; nothing here is trainable.
  return tf.compat.v1.get_variable(
      name, shape, tf.float32, initializer=tf.compat.v1.zeros_initializer(),
      trainable=False,
      collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES,
                   tf.compat.v1.GraphKeys.MODEL_VARIABLES])


def _fake_quant(x, layer, kind, narrow_range):
  """FakeQuantWithMinMaxVars of `x` with `layer`'s `kind` range variables."""
  # A scope object is absolute: the ranges leave the layer's own scope.
  scope = tf.compat.v1.VariableScope(
      reuse=None, name=f"{range_scope(layer)}/{kind}", use_resource=True)
  with tf.compat.v1.variable_scope(scope):
    low = _variable("min", [])
    high = _variable("max", [])
  return tf.quantization.fake_quant_with_min_max_vars(
      x, low, high, num_bits=NUM_BITS, narrow_range=narrow_range,
      name=f"{kind}/FakeQuantWithMinMaxVars")


def fold_batch_norm(gamma, beta, mean, variance):
  """(multiplier, bias) of a batch norm folded into the preceding conv."""
  multiplier = gamma * tf.math.rsqrt(variance + BN_EPSILON)
  return multiplier, beta - mean * multiplier


def _conv_bn_relu6(net, layer, kernel_shape, *, depthwise, stride):
  """One folded, fake-quantized conv + ReLU6 in variable scope `layer`."""
  channels = kernel_shape[2] if depthwise else kernel_shape[3]
  with tf.compat.v1.variable_scope(layer):
    weights = _variable("depthwise_weights" if depthwise else "weights",
                        kernel_shape)
    with tf.compat.v1.variable_scope("BatchNorm"):
      stats = [_variable(name, [channels]) for name in
               ("gamma", "beta", "moving_mean", "moving_variance")]
    multiplier, bias = fold_batch_norm(*stats)
    if depthwise:
      folded = tf.multiply(weights, tf.reshape(multiplier, [channels, 1]),
                           name="mul_fold")
    else:
      folded = tf.multiply(weights, multiplier, name="mul_fold")
    folded = _fake_quant(folded, layer, WEIGHTS_QUANT, narrow_range=True)
    strides = [1, stride, stride, 1]
    if depthwise:
      net = tf.nn.depthwise_conv2d(net, folded, strides, "SAME")
    else:
      net = tf.nn.conv2d(net, folded, strides, "SAME")
    net = tf.nn.bias_add(net, bias, name="add_fold")
    net = tf.nn.relu6(net)
    return _fake_quant(net, layer, ACT_QUANT, narrow_range=False)


def build(images, *, num_classes, is_training, batch_norm_decay,
          depth_multiplier=1.0):
  """Builds the quantized MobilenetV1; see registry for the contract.

  is_training must be False and batch_norm_decay is unused: the net only
  runs inference with the folded moving statistics.
  """
  del batch_norm_decay  # Folded batch norm never updates.
  if is_training:
    raise ValueError("Quantized MobileNet v1 is inference-only")
  def depth(channels):
    return mobilenet_v1.depth(channels, depth_multiplier)

  end_points = {}
  with tf.compat.v1.variable_scope(ROOT, values=[images]):
    channels = images.shape[3]
    net = _conv_bn_relu6(
        images, "Conv2d_0", [3, 3, channels, depth(mobilenet_v1.STEM_DEPTH)],
        depthwise=False, stride=2)
    end_points["Conv2d_0"] = net
    for index, (stride, width) in enumerate(mobilenet_v1.SEPARABLE_LAYERS,
                                            start=1):
      name = f"Conv2d_{index}_depthwise"
      net = _conv_bn_relu6(net, name, [3, 3, net.shape[3], 1],
                           depthwise=True, stride=stride)
      end_points[name] = net
      name = f"Conv2d_{index}_pointwise"
      net = _conv_bn_relu6(net, name, [1, 1, net.shape[3], depth(width)],
                           depthwise=False, stride=1)
      end_points[name] = net
    with tf.compat.v1.variable_scope("Logits"):
      # A fixed-size average pool (not reduce_mean): TFLite keeps its
      # quantization parameters from the input, as toco did.
      pooled = tf.nn.avg_pool2d(net, net.shape[1:3], [1, 1, 1, 1], "VALID",
                                name="AvgPool_1a")
      end_points["global_pool"] = pooled
      if not num_classes:
        return NetOutput(features=pooled, logits=None, end_points=end_points)
      logits = _logits(pooled, num_classes)
    end_points["Logits"] = logits
    end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
  return NetOutput(features=pooled, logits=logits, end_points=end_points)


def _logits(pooled, num_classes):
  """The quantized 1x1 logits conv on the pooled features (no dropout)."""
  with tf.compat.v1.variable_scope("Conv2d_1c_1x1"):
    weights = _variable("weights", [1, 1, pooled.shape[3], num_classes])
    biases = _variable("biases", [num_classes])
    weights = _fake_quant(weights, LOGITS_SCOPE, WEIGHTS_QUANT,
                          narrow_range=True)
    net = tf.nn.conv2d(pooled, weights, [1, 1, 1, 1], "SAME")
    net = tf.nn.bias_add(net, biases)
    net = _fake_quant(net, LOGITS_SCOPE, ACT_QUANT, narrow_range=False)
  return tf.squeeze(net, [1, 2], name="SpatialSqueeze")


def _net(float_net, multiplier):
  return SlimNet(
      name=f"{float_net.name}_quant",
      family="mobilenet_v1_quant",
      build=functools.partial(build, depth_multiplier=multiplier),
      scope=ROOT,
      num_features=float_net.num_features,
      default_image_size=224,
      bn_decay=None,
      preprocessing="inception",
      num_classes=1001,
      logits_variable=float_net.logits_variable,
      variable_size=False,
      inference_only=True,
  )


NETS = tuple(_net(float_net, multiplier) for float_net, multiplier in
             zip(mobilenet_v1.NETS, mobilenet_v1.MULTIPLIERS))
