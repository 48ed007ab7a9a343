"""MobileNet v3 large and small (Howard et al. 2019), Slim-compatible.

Scope ``MobilenetV3``: a strided 3x3 ``Conv`` (hard-swish), bottlenecks with
ReLU or hard-swish and some with squeeze-excite, the 1x1 ``Conv_1``, a global
average pool, then the 1x1 ``Conv_2`` with biases instead of batch norm
(hard-swish), whose pooled output is the feature vector, and the Logits head.

The published depth-0.75 checkpoints were trained in Slim's
finegrain_classification_mode: ``Conv_2`` keeps its full width (1280 or 1024)
while every other layer narrows. Only then do the nets have the published
parameter counts (4.0M large, 2.0M small; 3.4M and 1.7M otherwise).
"""

import tensorflow as tf

from slimhub.slim_nets import mobilenet_blocks as blocks

_RELU = tf.nn.relu
_HSWISH = blocks.hard_swish

# (kernel, expansion factor, output depth, squeeze-excite, activation, stride)
# of the bottlenecks. Slim expands by a factor of the actual input width, so
# factors (not absolute widths) keep the narrowed nets checkpoint-compatible.
_LARGE_BOTTLENECKS = (
    (3, 1, 16, False, _RELU, 1), (3, 4, 24, False, _RELU, 2),
    (3, 3, 24, False, _RELU, 1), (5, 3, 40, True, _RELU, 2),
    (5, 3, 40, True, _RELU, 1), (5, 3, 40, True, _RELU, 1),
    (3, 6, 80, False, _HSWISH, 2), (3, 2.5, 80, False, _HSWISH, 1),
    (3, 184 / 80, 80, False, _HSWISH, 1), (3, 184 / 80, 80, False, _HSWISH, 1),
    (3, 6, 112, True, _HSWISH, 1), (3, 6, 112, True, _HSWISH, 1),
    (5, 6, 160, True, _HSWISH, 2), (5, 6, 160, True, _HSWISH, 1),
    (5, 6, 160, True, _HSWISH, 1))
_SMALL_BOTTLENECKS = (
    (3, 1, 16, True, _RELU, 2), (3, 72 / 16, 24, False, _RELU, 2),
    (3, 88 / 24, 24, False, _RELU, 1), (5, 4, 40, True, _HSWISH, 2),
    (5, 6, 40, True, _HSWISH, 1), (5, 6, 40, True, _HSWISH, 1),
    (5, 3, 48, True, _HSWISH, 1), (5, 3, 48, True, _HSWISH, 1),
    (5, 6, 96, True, _HSWISH, 2), (5, 6, 96, True, _HSWISH, 1),
    (5, 6, 96, True, _HSWISH, 1))


def _layers(bottlenecks, last_conv_depth, features_depth):
  return (
      (blocks.Conv(16, kernel=3, stride=2, activation_fn=_HSWISH),)
      + tuple(blocks.Bottleneck(depth, expansion=expansion, kernel=kernel,
                                stride=stride, activation_fn=activation,
                                squeeze_excite=squeeze_excite)
              for kernel, expansion, depth, squeeze_excite, activation, stride
              in bottlenecks)
      + (blocks.Conv(last_conv_depth, activation_fn=_HSWISH),
         blocks.GlobalPool(),
         blocks.Conv(features_depth, activation_fn=_HSWISH, batch_norm=False,
                     keep_width=True)))


_LAYERS = {"large": _layers(_LARGE_BOTTLENECKS, 960, 1280),
           "small": _layers(_SMALL_BOTTLENECKS, 576, 1024)}

NETS = tuple(
    blocks.slim_net(name=f"mobilenet_v3_{size}_{multiplier_id}",
                    family="mobilenet_v3", root_scope="MobilenetV3",
                    layers=_LAYERS[size], multiplier=multiplier,
                    activation_fn=_RELU)
    for size in ("large", "small")
    for multiplier_id, multiplier in (("100", 1.0), ("075", 0.75)))
