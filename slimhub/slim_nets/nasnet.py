"""NASNet-A (Zoph et al. 2017) and PNASNet-5 (Liu et al. 2017), Slim-compatible.

Both families stack searched cells on an ImageNet stem (``conv0`` and two
strided cells ``cell_stem_{0,1}``); variables have no root scope. A cell
projects its two inputs (``net`` and the previous cell's input ``prev``) to
its filter count, combines them in five ``comb_iter_N`` pairs of operations,
and concatenates the hidden states no pair consumed. NASNet-A inserts
``reduction_cell_N`` before a third and two thirds of its ``cell_N``;
PNASNet-5 has a single cell type that strides there itself.

Training builds keep research/slim's drop path, but with its keep probability
pinned at the end-of-training value (Slim ramps it by global step; a hub
module has no global step): a cell with number ``c`` (stem cells 0 and 1,
then every cell in build order) of ``C`` (22 in nasnet_large, 14 in
pnasnet_large) keeps a path with probability
``1 - (c + 1) / C * (1 - final)``. That value is a float32 constant named
``<cell scope>/drop_path_keep_prob`` (e.g. ``cell_stem_0/...``, ``cell_7/...``,
``reduction_cell_1/...``), rounded to float32 as Slim's ramp rounds it, and
read by the drop path after every non-identity operation of the cell. It
exists only in training builds of nets whose final keep probability is below
1 (nasnet_large 0.7, pnasnet_large 0.6; the mobile nets have no drop path).
"""

import dataclasses
import functools
import typing

import numpy as np
import tensorflow as tf
import tf_slim as slim

from slimhub.slim_nets.registry import NetOutput, SlimNet

BN_DECAY = 0.9997
DROP_PATH_KEEP_PROB = "drop_path_keep_prob"
_BN_EPSILON = 1e-3
_DENSE_DROPOUT_KEEP_PROB = 0.5
_NUM_STEM_CELLS = 2
_WEIGHTS_INITIALIZER = slim.variance_scaling_initializer(mode="FAN_OUT")


@dataclasses.dataclass(frozen=True)
class _Cell:
  """A searched cell: five (left, right) operations on hidden states.

  Hidden states 0 and 1 are the projected ``net`` and ``prev``; pair N adds
  state 2 + N. Operations: "sepK" (two ReLU, separable KxK, BN layers),
  "avgK"/"maxK" (KxK pooling) and "id" (identity). The output concatenates
  the states not listed in ``consumed``; in these cells they all have the same
  size, so Slim's resizing of mismatched outputs never applies.
  """
  operations: tuple
  inputs: tuple
  consumed: frozenset


_NASNET_NORMAL = _Cell(
    operations=(("sep5", "sep3"), ("sep5", "sep3"), ("avg3", "id"),
                ("avg3", "avg3"), ("sep3", "id")),
    inputs=((0, 1), (1, 1), (0, 1), (1, 1), (0, 0)),
    consumed=frozenset({0}))
_NASNET_REDUCTION = _Cell(
    operations=(("sep5", "sep7"), ("max3", "sep7"), ("avg3", "sep5"),
                ("id", "avg3"), ("sep3", "max3")),
    inputs=((0, 1), (0, 1), (0, 1), (3, 2), (2, 0)),
    consumed=frozenset({0, 1, 2}))
_PNASNET = _Cell(
    operations=(("sep5", "max3"), ("sep7", "max3"), ("sep5", "sep3"),
                ("sep3", "max3"), ("sep3", "id")),
    inputs=((1, 1), (0, 0), (0, 0), (4, 0), (1, 0)),
    consumed=frozenset({0, 1}))


@dataclasses.dataclass(frozen=True)
class _Config:
  """The hyperparameters of one published net.

  reduction_cell: NASNet-A's separate reduction cell (also its stem cell),
    or None for PNASNet, whose normal cell strides and serves as stem cell.
  prev_skips_reduction: whether the cell after a reduction cell takes the
    reduction cell's ``prev`` as its own (Slim's skip_reduction_layer_input)
    rather than the reduction cell's input.
  """
  normal_cell: _Cell
  reduction_cell: typing.Optional[_Cell]
  num_cells: int
  num_filters: int
  stem_multiplier: float
  drop_path_keep_prob: float
  prev_skips_reduction: bool
  weight_decay: float


def _channels(net):
  return int(net.shape[3])


def _width(net):
  return int(net.shape[2])


@slim.add_arg_scope
def _weights(name, shape, weight_decay=None):
  return slim.model_variable(
      name, shape, initializer=_WEIGHTS_INITIALIZER,
      regularizer=slim.l2_regularizer(weight_decay))


def _conv(net, filters, kernel, scope, stride=1, padding="SAME"):
  """slim.conv2d without biases, normalizer or activation."""
  with tf.compat.v1.variable_scope(scope):
    weights = _weights("weights", [kernel, kernel, _channels(net), filters])
    return tf.nn.conv2d(net, weights, [1, stride, stride, 1], padding)


def _separable_conv(net, filters, kernel, scope, stride):
  """slim.separable_conv2d (depth multiplier 1) without biases."""
  with tf.compat.v1.variable_scope(scope):
    channels = _channels(net)
    depthwise = _weights("depthwise_weights", [kernel, kernel, channels, 1])
    pointwise = _weights("pointwise_weights", [1, 1, channels, filters])
    return tf.nn.separable_conv2d(net, depthwise, pointwise,
                                  [1, stride, stride, 1], "SAME")


def _conv_bn(net, filters, conv_scope, bn_scope, stride=1):
  net = _conv(net, filters, 1, conv_scope, stride)
  return slim.batch_norm(net, scope=bn_scope)


def _arg_scope(config, is_training, batch_norm_decay):
  """Slim's NASNet arg scope for the layers above.

  The update collection is passed as a list: that makes slim.batch_norm use
  its own fused implementation (same ops, same UPDATE_OPS) instead of the
  Keras layer, which, like slim's conv layers, re-hashes every global
  variable for each weight it adds and makes the build quadratic.
  """
  with slim.arg_scope([_weights], weight_decay=config.weight_decay):
    with slim.arg_scope(
        [slim.batch_norm], decay=batch_norm_decay, epsilon=_BN_EPSILON,
        scale=True, fused=True, is_training=is_training,
        updates_collections=[tf.compat.v1.GraphKeys.UPDATE_OPS]) as scope:
      return scope


def _factorized_reduction(net, filters, stride):
  """Matches `net` to `filters` channels, halving its size if stride is 2.

  Two 1x1 convs see the even and the odd pixel grid; Slim samples them with
  1x1 average pools, i.e. the strided slices used here.
  """
  if stride == 1:
    return _conv_bn(net, filters, "path_conv", "path_bn")
  even = _conv(net[:, ::2, ::2, :], filters // 2, 1, "path1_conv")
  shifted = tf.pad(net, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1::2, 1::2, :]
  odd = _conv(shifted, filters - filters // 2, 1, "path2_conv")
  return slim.batch_norm(tf.concat([even, odd], 3), scope="final_path_bn")


def _drop_path(net, keep_prob):
  """Slim's drop path: zeroes whole examples with probability 1 - keep_prob
  (a floor(keep_prob + uniform) mask) and scales the rest by 1 / keep_prob."""
  noise = tf.random.uniform([tf.shape(net)[0], 1, 1, 1], dtype=tf.float32)
  mask = tf.floor(keep_prob + noise)
  return net * (1.0 / keep_prob) * mask


def _operation(net, operation, filters, stride, keep_prob):
  """One operation of a combination; keep_prob is None without drop path."""
  kind, size = operation[:3], operation[3:]
  if kind == "sep":
    for layer in (1, 2):
      name = f"{size}x{size}_{layer}"
      net = _separable_conv(tf.nn.relu(net), filters, int(size),
                            f"separable_{name}", stride)
      net = slim.batch_norm(net, scope=f"bn_sep_{name}")
      stride = 1
  elif kind == "id":
    if stride > 1 or _channels(net) != filters:
      net = _conv_bn(tf.nn.relu(net), filters, "1x1", "bn_1", stride)
    return net
  else:
    pool = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
    net = pool(net, int(size), stride, "SAME")
    if _channels(net) != filters:
      net = _conv_bn(net, filters, "1x1", "bn_1")
  return net if keep_prob is None else _drop_path(net, keep_prob)


def _cell(net, prev, cell, *, scope, filters, stride, keep_prob):
  """Builds `cell` on (net, prev) under `scope`; keep_prob as in the module
  docstring, or None without drop path."""
  with tf.compat.v1.variable_scope(scope):
    if keep_prob is not None:
      keep_prob = tf.constant(keep_prob, tf.float32,
                              name=DROP_PATH_KEEP_PROB)
    if prev is None:
      prev = net
    elif _width(prev) != _width(net):
      prev = _factorized_reduction(tf.nn.relu(prev), filters, 2)
    elif _channels(prev) != filters:
      prev = _conv_bn(tf.nn.relu(prev), filters, "prev_1x1", "prev_bn")
    states = [_conv_bn(tf.nn.relu(net), filters, "1x1", "beginning_bn"), prev]
    for index, (operations, inputs) in enumerate(
        zip(cell.operations, cell.inputs)):
      with tf.compat.v1.variable_scope(f"comb_iter_{index}"):
        paths = []
        for side, operation, state in zip(("left", "right"), operations,
                                          inputs):
          with tf.compat.v1.variable_scope(side):
            paths.append(_operation(states[state], operation, filters,
                                    stride if state < 2 else 1, keep_prob))
        states.append(tf.add(*paths, name="combine"))
    return tf.concat([state for index, state in enumerate(states)
                      if index not in cell.consumed], 3, name="cell_output")


class _Step(typing.NamedTuple):
  """One cell of the plan: `prev` is outputs[-prev_back] (outputs start with
  [None, conv0])."""
  scope: str
  end_point: typing.Optional[str]
  cell: _Cell
  filter_scaling: float
  stride: int
  prev_back: int


def _plan(config):
  """The cells in build order; a cell's number is its index."""
  stem_cell = config.reduction_cell or config.normal_cell
  steps = [_Step(f"cell_stem_{index}", "Stem" if index else None, stem_cell,
                 0.5 ** (_NUM_STEM_CELLS - index), 2, 2)
           for index in range(_NUM_STEM_CELLS)]
  scaling = 1
  reductions = (config.num_cells // 3, 2 * config.num_cells // 3)
  for index in range(config.num_cells):
    stride, prev_back = 1, 2
    if index in reductions:
      scaling *= 2
      if config.reduction_cell:
        reduction = reductions.index(index)
        steps.append(_Step(f"reduction_cell_{reduction}",
                           f"Reduction_Cell_{reduction}",
                           config.reduction_cell, scaling, 2, 2))
        prev_back = 3 if config.prev_skips_reduction else 2
      else:
        stride = 2
    steps.append(_Step(f"cell_{index}", f"Cell_{index}", config.normal_cell,
                       scaling, stride, prev_back))
  return steps


def _pinned_keep_prob(final, number, count):
  """Slim's keep probability of cell `number` of `count` at the end of
  training, rounded as Slim's float32 ramp rounds it."""
  at_layer = 1.0 - (number + 1) / count * (1.0 - final)
  return np.float32(1.0) - np.float32(1.0 - at_layer)


def _body(images, config, is_training, end_points):
  """The stem and the cells; returns the last cell's output."""
  net = _conv(images, int(32 * config.stem_multiplier), 3, "conv0", stride=2,
              padding="VALID")
  outputs = [None, slim.batch_norm(net, scope="conv0_bn")]
  steps = _plan(config)
  drop_path = is_training and config.drop_path_keep_prob < 1.0
  for number, step in enumerate(steps):
    keep_prob = None
    if drop_path:
      keep_prob = _pinned_keep_prob(config.drop_path_keep_prob, number,
                                    len(steps))
    net = _cell(outputs[-1], outputs[-step.prev_back], step.cell,
                scope=step.scope, stride=step.stride, keep_prob=keep_prob,
                filters=int(config.num_filters * step.filter_scaling))
    outputs.append(net)
    if step.end_point:
      end_points[step.end_point] = net
  return net


def build(images, *, num_classes, is_training, batch_norm_decay, config):
  """Builds the net of `config`; see registry for the contract."""
  end_points = {}
  with slim.arg_scope(_arg_scope(config, is_training, batch_norm_decay)):
    net = _body(images, config, is_training, end_points)
    with tf.compat.v1.variable_scope("final_layer"):
      pooled = tf.reduce_mean(tf.nn.relu(net), axis=[1, 2])
      end_points["global_pool"] = pooled
      if not num_classes:
        return NetOutput(features=pooled, logits=None, end_points=end_points)
      net = slim.dropout(pooled, _DENSE_DROPOUT_KEEP_PROB,
                         is_training=is_training, scope="dropout")
      logits = slim.fully_connected(
          net, num_classes, activation_fn=None,
          weights_initializer=_WEIGHTS_INITIALIZER,
          weights_regularizer=slim.l2_regularizer(config.weight_decay),
          scope="FC")
      end_points["Logits"] = logits
      end_points["Predictions"] = tf.nn.softmax(logits, name="predictions")
  return NetOutput(features=pooled, logits=logits, end_points=end_points)


# The cells of each family: (normal cell, reduction cell or None).
_FAMILIES = {"NASNet": (_NASNET_NORMAL, _NASNET_REDUCTION),
             "PNASNet": (_PNASNET, None)}

# research/slim's hparams and arg scopes of the published checkpoints: name,
# family (end-point scope), image size, features, then the _Config fields
# after the cells: cells, filters, stem multiplier, final drop-path keep
# probability, prev_skips_reduction, weight decay.
_PUBLISHED = (
    ("nasnet_mobile", "NASNet", 224, 1056, 12, 44, 1.0, 1.0, False, 4e-5),
    ("nasnet_large", "NASNet", 331, 4032, 18, 168, 3.0, 0.7, True, 5e-5),
    ("pnasnet_mobile", "PNASNet", 224, 1080, 9, 54, 1.0, 1.0, True, 4e-5),
    ("pnasnet_large", "PNASNet", 331, 4320, 12, 216, 3.0, 0.6, True, 4e-5),
)


def _net(name, family, image_size, num_features, *hparams):
  config = _Config(*_FAMILIES[family], *hparams)
  return SlimNet(
      name=name,
      family="nasnet",
      build=functools.partial(build, config=config),
      config=config,
      scope=family,
      num_features=num_features,
      default_image_size=image_size,
      bn_decay=BN_DECAY,
      preprocessing="inception",
      num_classes=1001,
      logits_variable="final_layer/FC/weights",
      variable_size=False,
  )


NETS = tuple(_net(*row) for row in _PUBLISHED)
