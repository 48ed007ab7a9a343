"""Inception-ResNet v2 (Szegedy et al. 2016), checkpoint-compatible with Slim's.

Stem, Mixed_5b, then three stages of residual Inception blocks (10 x
block35, 20 x block17, 9 x block8 plus a final linear Block8) separated by
the reductions Mixed_6a and Mixed_7a, and a 1x1 conv to 1536 features.
Each residual block adds a scaled 1x1 projection ("Conv2d_1x1", with
biases, no BN) of its concatenated branches to its input. Unlike the other
Inception nets, conv weights keep slim's Xavier initializer and biases are
regularized too.
"""

import functools

import tensorflow as tf
import tf_slim as slim

from slimhub.slim_nets.inception_common import (
    Layer, add_layers, add_mixed, build_inception, concat_branches,
    fully_connected_head, inception_arg_scope, inception_net)

_VALID = "VALID"

_STEM = (Layer("Conv2d_1a_3x3", 32, 2, _VALID),
         Layer("Conv2d_2a_3x3", 32, padding=_VALID),
         Layer("Conv2d_2b_3x3", 64),
         Layer("MaxPool_3a_3x3", stride=2, padding=_VALID),
         Layer("Conv2d_3b_1x1", 80, padding=_VALID),
         Layer("Conv2d_4a_3x3", 192, padding=_VALID),
         Layer("MaxPool_5a_3x3", stride=2, padding=_VALID))

_MIXED_5B = ((Layer("Conv2d_1x1", 96),),
             (Layer("Conv2d_0a_1x1", 48), Layer("Conv2d_0b_5x5", 64)),
             (Layer("Conv2d_0a_1x1", 64), Layer("Conv2d_0b_3x3", 96),
              Layer("Conv2d_0c_3x3", 96)),
             (Layer("AvgPool_0a_3x3"), Layer("Conv2d_0b_1x1", 64)))

_MIXED_6A = ((Layer("Conv2d_1a_3x3", 384, 2, _VALID),),
             (Layer("Conv2d_0a_1x1", 256), Layer("Conv2d_0b_3x3", 256),
              Layer("Conv2d_1a_3x3", 384, 2, _VALID)),
             (Layer("MaxPool_1a_3x3", stride=2, padding=_VALID),))

_MIXED_7A = ((Layer("Conv2d_0a_1x1", 256),
              Layer("Conv2d_1a_3x3", 384, 2, _VALID)),
             (Layer("Conv2d_0a_1x1", 256),
              Layer("Conv2d_1a_3x3", 288, 2, _VALID)),
             (Layer("Conv2d_0a_1x1", 256), Layer("Conv2d_0b_3x3", 288),
              Layer("Conv2d_1a_3x3", 320, 2, _VALID)),
             (Layer("MaxPool_1a_3x3", stride=2, padding=_VALID),))

_BLOCK35 = ((Layer("Conv2d_1x1", 32),),
            (Layer("Conv2d_0a_1x1", 32), Layer("Conv2d_0b_3x3", 32)),
            (Layer("Conv2d_0a_1x1", 32), Layer("Conv2d_0b_3x3", 48),
             Layer("Conv2d_0c_3x3", 64)))

_BLOCK17 = ((Layer("Conv2d_1x1", 192),),
            (Layer("Conv2d_0a_1x1", 128), Layer("Conv2d_0b_1x7", 160),
             Layer("Conv2d_0c_7x1", 192)))

_BLOCK8 = ((Layer("Conv2d_1x1", 192),),
           (Layer("Conv2d_0a_1x1", 192), Layer("Conv2d_0b_1x3", 224),
            Layer("Conv2d_0c_3x1", 256)))


def _residual_block(net, branches, scale, scope, activate=True):
  """net + scale * (1x1 projection of the branches), then ReLU if `activate`."""
  with tf.compat.v1.variable_scope(scope):
    mixed = concat_branches(net, branches)
    projection = slim.conv2d(mixed, net.shape[-1], [1, 1], normalizer_fn=None,
                             activation_fn=None, scope="Conv2d_1x1")
    net = net + projection * scale
    return tf.nn.relu(net) if activate else net


def _residual_stage(net, scope, block_name, branches, count, scale):
  """`count` residual blocks, named as slim.repeat names them."""
  with tf.compat.v1.variable_scope(scope):
    for index in range(1, count + 1):
      net = _residual_block(net, branches, scale, f"{block_name}_{index}")
  return net


def inception_resnet_v2_base(images, scope):
  """The body up to Conv2d_7b_1x1; (net, end_points). `scope` is open."""
  del scope
  end_points = {}
  net = add_layers(images, end_points, _STEM)
  net = add_mixed(net, end_points, "Mixed_5b", _MIXED_5B)
  net = _residual_stage(net, "Repeat", "block35", _BLOCK35, 10, 0.17)
  net = add_mixed(net, end_points, "Mixed_6a", _MIXED_6A)
  net = _residual_stage(net, "Repeat_1", "block17", _BLOCK17, 20, 0.10)
  end_points["PreAuxLogits"] = net
  net = add_mixed(net, end_points, "Mixed_7a", _MIXED_7A)
  net = _residual_stage(net, "Repeat_2", "block8", _BLOCK8, 9, 0.20)
  net = _residual_block(net, _BLOCK8, 1.0, "Block8", activate=False)
  net = add_layers(net, end_points, (Layer("Conv2d_7b_1x1", 1536),))
  return net, end_points


NETS = (inception_net(
    "inception_resnet_v2",
    functools.partial(
        build_inception, scope="InceptionResnetV2",
        base=inception_resnet_v2_base, head=fully_connected_head,
        arg_scope=functools.partial(
            inception_arg_scope,
            weights_initializer=slim.xavier_initializer(),
            regularize_biases=True)),
    scope="InceptionResnetV2", num_features=1536, image_size=299,
    logits_scope="Logits"),)
