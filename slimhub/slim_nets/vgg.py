"""VGG 16 and 19 (Simonyan & Zisserman 2014, configurations D and E).

Five stages of 3x3 convs (``<root>/conv{s}/conv{s}_{i}``), each closed by a
2x2 max pool, then the fully-connected layers as convolutions: ``fc6`` a 7x7
VALID conv, ``fc7`` and ``fc8`` 1x1 convs. fc6 needs a 7x7 pool5, so the net is
fixed-size (224). No batch norm; dropout before fc7 and fc8 when training.
"""

import functools

import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import vgg as tf_slim_vgg

from slimhub.slim_nets import heads
from slimhub.slim_nets.registry import NetOutput
from slimhub.slim_nets.registry import SlimNet

_WEIGHT_DECAY = 5e-4
_DROPOUT_KEEP_PROB = 0.5
_STAGE_DEPTHS = (64, 128, 256, 512, 512)
_CONVS_PER_STAGE = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_FC_DEPTH = 4096


def build(images, *, num_classes, is_training, batch_norm_decay, layers):
  """Builds vgg_{layers}; see registry for the contract."""
  del batch_norm_decay  # VGG has no batch norm.
  with slim.arg_scope(tf_slim_vgg.vgg_arg_scope(weight_decay=_WEIGHT_DECAY)):
    with tf.compat.v1.variable_scope(f"vgg_{layers}", values=[images]) as scope:
      collection = scope.original_name_scope + "_end_points"
      with slim.arg_scope([slim.conv2d, slim.max_pool2d],
                          outputs_collections=collection):
        net = images
        for stage, (depth, convs) in enumerate(
            zip(_STAGE_DEPTHS, _CONVS_PER_STAGE[layers]), start=1):
          net = slim.repeat(net, convs, slim.conv2d, depth, [3, 3],
                            scope=f"conv{stage}")
          net = slim.max_pool2d(net, [2, 2], scope=f"pool{stage}")
        net = slim.conv2d(net, _FC_DEPTH, [7, 7], padding="VALID", scope="fc6")
        net = slim.dropout(net, _DROPOUT_KEEP_PROB, is_training=is_training,
                           scope="dropout6")
        net = slim.conv2d(net, _FC_DEPTH, [1, 1], scope="fc7")
      end_points = slim.utils.convert_collection_to_dict(collection)
      # fc7 is 1x1 at 224; pooling keeps the feature vector [B, 1, 1, 4096].
      pooled = heads.global_pool(net, end_points)
      if not num_classes:
        return NetOutput(features=pooled, logits=None, end_points=end_points)
      net = slim.dropout(pooled, _DROPOUT_KEEP_PROB, is_training=is_training,
                         scope="dropout7")
      logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                           normalizer_fn=None, scope="fc8")
      logits = tf.squeeze(logits, [1, 2], name="fc8/squeezed")
      end_points[f"{scope.name}/fc8"] = logits
      return NetOutput(features=pooled, logits=logits, end_points=end_points)


def _net(layers):
  name = f"vgg_{layers}"
  return SlimNet(
      name=name,
      family="vgg",
      build=functools.partial(build, layers=layers),
      scope=name,
      num_features=_FC_DEPTH,
      default_image_size=224,
      bn_decay=None,
      preprocessing="vgg",
      num_classes=1000,
      logits_variable=f"{name}/fc8/weights",
      variable_size=False,
  )


NETS = tuple(_net(layers) for layers in sorted(_CONVS_PER_STAGE))
