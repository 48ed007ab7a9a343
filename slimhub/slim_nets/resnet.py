"""ResNet v1 (He et al. 2015) and v2 (pre-activation, He et al. 2016).

The residual units and their stacking are tf-slim's own (their variable names
are the checkpoints'): ``<root>/conv1``, then ``block{1..4}/unit_N/
bottleneck_v{1,2}/...``, and for v2 a final ``postnorm`` batch norm, since its
units end without one. slimhub adds the root layer, the arg scope (so the BN
decay may be a tensor) and the head, which pools with ``reduce_mean`` and so
takes any input size.
"""

import functools

import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import resnet_utils
from tf_slim.nets import resnet_v1 as tf_slim_resnet_v1
from tf_slim.nets import resnet_v2 as tf_slim_resnet_v2

from slimhub.slim_nets import heads
from slimhub.slim_nets.registry import NetOutput
from slimhub.slim_nets.registry import SlimNet

BN_DECAY = 0.997
_WEIGHT_DECAY = 1e-4
_BN_EPSILON = 1e-5
_ROOT_DEPTH = 64
# Per block: bottleneck depth (the unit output is 4x) and stride of its last
# unit; the unit counts per block depend on the net's depth.
_BLOCKS = ((64, 2), (128, 2), (256, 2), (512, 1))
_UNITS_PER_BLOCK = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_NUM_FEATURES = 2048

# resnet_v{1,2}_block and the residual unit they stack, per version.
_VERSIONS = {
    1: (tf_slim_resnet_v1.resnet_v1_block, tf_slim_resnet_v1.bottleneck),
    2: (tf_slim_resnet_v2.resnet_v2_block, tf_slim_resnet_v2.bottleneck),
}


def _arg_scope(is_training, batch_norm_decay):
  """Slim's ResNet arg scope: conv + BN (with scale) + ReLU, SAME max pools."""
  with slim.arg_scope(resnet_utils.resnet_arg_scope(
      weight_decay=_WEIGHT_DECAY, batch_norm_decay=batch_norm_decay,
      batch_norm_epsilon=_BN_EPSILON, batch_norm_scale=True)):
    with slim.arg_scope([slim.batch_norm], is_training=is_training) as scope:
      return scope


def build(images, *, num_classes, is_training, batch_norm_decay, version,
          depth):
  """Builds resnet_v{version}_{depth}; see registry for the contract."""
  make_block, unit = _VERSIONS[version]
  blocks = [make_block(f"block{index}", base_depth=base_depth,
                       num_units=num_units, stride=stride)
            for index, ((base_depth, stride), num_units) in enumerate(
                zip(_BLOCKS, _UNITS_PER_BLOCK[depth]), start=1)]
  # v2 units start with their own BN + ReLU, so its root conv has neither.
  root_conv_args = ({"activation_fn": None, "normalizer_fn": None}
                    if version == 2 else {})
  with slim.arg_scope(_arg_scope(is_training, batch_norm_decay)):
    with tf.compat.v1.variable_scope(f"resnet_v{version}_{depth}",
                                     values=[images]) as scope:
      collection = scope.original_name_scope + "_end_points"
      with slim.arg_scope([slim.conv2d, unit, resnet_utils.stack_blocks_dense],
                          outputs_collections=collection):
        with slim.arg_scope([slim.conv2d], **root_conv_args):
          net = resnet_utils.conv2d_same(images, _ROOT_DEPTH, 7, stride=2,
                                         scope="conv1")
        net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
        net = resnet_utils.stack_blocks_dense(net, blocks)
        if version == 2:
          net = slim.batch_norm(net, activation_fn=tf.nn.relu, scope="postnorm")
      end_points = slim.utils.convert_collection_to_dict(collection)
      pooled = heads.global_pool(net, end_points, name="pool5")
      if not num_classes:
        return NetOutput(features=pooled, logits=None, end_points=end_points)
      spatial_logits = slim.conv2d(pooled, num_classes, [1, 1],
                                   activation_fn=None, normalizer_fn=None,
                                   scope="logits")
      logits = tf.squeeze(spatial_logits, [1, 2], name="SpatialSqueeze")
      end_points[f"{scope.name}/logits"] = spatial_logits
      end_points[f"{scope.name}/spatial_squeeze"] = logits
      end_points["predictions"] = slim.softmax(logits, scope="predictions")
      return NetOutput(features=pooled, logits=logits, end_points=end_points)


def _net(version, depth):
  name = f"resnet_v{version}_{depth}"
  # The public v1 checkpoints have no background class and take VGG inputs.
  num_classes, preprocessing = (1000, "vgg") if version == 1 else (
      1001, "inception")
  return SlimNet(
      name=name,
      family="resnet",
      build=functools.partial(build, version=version, depth=depth),
      scope=name,
      num_features=_NUM_FEATURES,
      default_image_size=224,
      bn_decay=BN_DECAY,
      preprocessing=preprocessing,
      num_classes=num_classes,
      logits_variable=f"{name}/logits/weights",
      variable_size=True,
  )


NETS = tuple(_net(version, depth) for version in (1, 2)
             for depth in sorted(_UNITS_PER_BLOCK))
