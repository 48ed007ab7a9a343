"""The raw Slim net in a graph of its own, restored from a checkpoint.

This is the baseline a module is compared with: the tests' golden parity,
``slimhub-verify --checkpoint`` and the benchmarks all run the plain net,
restored by name, on inputs in [0, 1].
"""

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from slimhub.build import checkpoints
from slimhub import compat
from slimhub.build import preprocessing
from slimhub import slim_nets


@dataclasses.dataclass
class NetGraph:
  """A built net. batch_norm_momentum is its decay input, if it has one."""
  graph: tf.Graph
  images: tf.Tensor
  output: slim_nets.NetOutput
  features: tf.Tensor
  batch_norm_momentum: Optional[tf.Tensor] = None

  def variable_shapes(self):
    """{op name: shape} of the graph's global variables."""
    return {v.op.name: v.shape.as_list() for v in self._variables()}

  def moving_statistics(self):
    """Op names of the BN moving_mean/moving_variance variables."""
    return sorted(v.op.name for v in self._variables()
                  if v.op.name.endswith(("/moving_mean", "/moving_variance")))

  def update_ops(self):
    return self.graph.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)

  def _variables(self):
    return self.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)


def build(net, *, num_classes, image_size=None, is_training=False,
          batch_norm_decay=None, momentum_input=False,
          preprocessing_kind=None, seed=None, input_quant_range=None):
  """Builds `net` (a SlimNet or its name) in a new graph on [0, 1] inputs.

  The BN decay is `batch_norm_decay` (default: the net's Slim value), or with
  `momentum_input` a scalar placeholder_with_default fed at run time. A
  `seed` makes the graph's random ops (dropout, drop path) draw the same
  values in every new session. `input_quant_range` (min, max) fake-quantizes
  the scaled input to 8 bits, as quantops modules do.
  """
  if isinstance(net, str):
    net = slim_nets.get(net)
  graph = tf.Graph()
  if seed is not None:
    graph.seed = seed
  with graph.as_default(), compat.graph_building(), \
       tf.compat.v1.variable_scope("", use_resource=True):
    images = tf.compat.v1.placeholder(
        tf.float32, [None, image_size, image_size, 3], name="images")
    decay = net.bn_decay if batch_norm_decay is None else batch_norm_decay
    momentum = None
    if momentum_input:
      momentum = tf.compat.v1.placeholder_with_default(
          tf.constant(decay, tf.float32), [], name="batch_norm_momentum")
      decay = momentum
    net_input = preprocessing.to_net_range(
        images, preprocessing_kind or net.preprocessing, input_quant_range)
    output = net.build(net_input, num_classes=num_classes,
                       is_training=is_training, batch_norm_decay=decay)
    features = tf.reshape(output.features, [-1, net.num_features])
  return NetGraph(graph=graph, images=images, output=output,
                  features=features, batch_norm_momentum=momentum)


def checkpoint_variables(entry):
  """[(name, shape)] of a Slim checkpoint for catalogue `entry`: the
  variables of its inference graph plus global_step."""
  net = slim_nets.get(entry.net)
  graph = build(net, num_classes=net.num_classes, image_size=entry.image_size)
  return sorted(graph.variable_shapes().items()) + [("global_step", [])]


def restored_session(net_graph, checkpoint, use_ema="auto"):
  """A Session on the graph with `checkpoint` restored by variable name."""
  plan = checkpoints.plan_restore(net_graph.variable_shapes(), checkpoint,
                                  use_ema)
  by_name = {v.op.name: v for v in net_graph._variables()}  # pylint: disable=protected-access
  session = tf.compat.v1.Session(graph=net_graph.graph)
  with net_graph.graph.as_default():
    saver = tf.compat.v1.train.Saver(
        {key: by_name[name] for name, key in plan.keys.items()})
    saver.restore(session, plan.prefix)
  return session


def run(net_graph, checkpoint, images, use_ema="auto"):
  """Restores `checkpoint` into `net_graph`; {"features", "logits"} arrays."""
  fetches = {"features": net_graph.features}
  if net_graph.output.logits is not None:
    fetches["logits"] = net_graph.output.logits
  with restored_session(net_graph, checkpoint, use_ema) as session:
    return session.run(fetches, {net_graph.images: np.asarray(images)})


def update_step(net_graph, checkpoint, images, momentum, use_ema="auto"):
  """{moving statistic: change} after running UPDATE_OPS once at `momentum`.

  Starts from the restored checkpoint; needs a graph built with
  momentum_input=True.
  """
  by_name = {v.op.name: v for v in net_graph._variables()}  # pylint: disable=protected-access
  names = net_graph.moving_statistics()
  with restored_session(net_graph, checkpoint, use_ema) as session:
    before = session.run({name: by_name[name] for name in names})
    session.run(net_graph.update_ops(),
                {net_graph.images: np.asarray(images),
                 net_graph.batch_norm_momentum: momentum})
    after = session.run({name: by_name[name] for name in names})
  return {name: after[name] - before[name] for name in names}
