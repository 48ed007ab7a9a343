"""MobileNet v1 (Howard et al. 2017), checkpoint-compatible with Slim's.

Layer names follow the published checkpoints: ``MobilenetV1/Conv2d_0`` (a
strided 3x3 conv) and ``Conv2d_{1..13}_{depthwise,pointwise}``. Widths are
``max(int(depth * multiplier), 8)``; every conv is followed by batch norm
(scale and center) and ReLU6. Depthwise weights are not regularized.
"""

import functools

import tensorflow as tf
import tf_slim as slim

from slimhub.slim_nets import mobilenet_blocks
from slimhub.slim_nets.heads import pooled_logits_head
from slimhub.slim_nets.registry import SlimNet

# (stride, output depth) of the 13 depthwise-separable layers after Conv2d_0.
SEPARABLE_LAYERS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256),
                    (2, 512), (1, 512), (1, 512), (1, 512), (1, 512),
                    (1, 512), (2, 1024), (1, 1024))
STEM_DEPTH = 32
_MIN_DEPTH = 8
BN_DECAY = 0.9997
_DROPOUT_KEEP_PROB = 0.999


def depth(channels, multiplier):
  """Output channels of a layer of `channels` at depth `multiplier`."""
  return max(int(channels * multiplier), _MIN_DEPTH)


def build(images, *, num_classes, is_training, batch_norm_decay,
          depth_multiplier=1.0):
  """Builds MobilenetV1 at `depth_multiplier`; see registry for the contract."""
  end_points = {}
  with slim.arg_scope(mobilenet_blocks.arg_scope(is_training, batch_norm_decay,
                                                 tf.nn.relu6)):
    with tf.compat.v1.variable_scope("MobilenetV1", values=[images]):
      net = slim.conv2d(images, depth(STEM_DEPTH, depth_multiplier), [3, 3],
                        stride=2, scope="Conv2d_0")
      end_points["Conv2d_0"] = net
      for index, (stride, channels) in enumerate(SEPARABLE_LAYERS, start=1):
        name = f"Conv2d_{index}_depthwise"
        net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                    stride=stride, scope=name)
        end_points[name] = net
        name = f"Conv2d_{index}_pointwise"
        net = slim.conv2d(net, depth(channels, depth_multiplier), [1, 1],
                          stride=1, scope=name)
        end_points[name] = net
      return pooled_logits_head(
          net, end_points, num_classes=num_classes, is_training=is_training,
          dropout_keep_prob=_DROPOUT_KEEP_PROB, prelogits_end_point=False)


def _net(multiplier_id, multiplier):
  return SlimNet(
      name=f"mobilenet_v1_{multiplier_id}",
      family="mobilenet_v1",
      build=functools.partial(build, depth_multiplier=multiplier),
      scope="MobilenetV1",
      num_features=int(1024 * multiplier),
      default_image_size=224,
      bn_decay=BN_DECAY,
      preprocessing="inception",
      num_classes=1001,
      logits_variable="MobilenetV1/Logits/Conv2d_1c_1x1/weights",
      variable_size=True,
  )


_WIDTHS = (("100", 1.0), ("075", 0.75), ("050", 0.5), ("025", 0.25))
MULTIPLIERS = tuple(multiplier for _, multiplier in _WIDTHS)
NETS = tuple(_net(mid, m) for mid, m in _WIDTHS)
