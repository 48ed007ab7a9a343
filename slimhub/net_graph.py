"""The raw Slim net in a graph of its own, restored from a checkpoint.

This is the baseline a module is compared with: the tests' golden parity,
``slimhub-verify --checkpoint`` and the benchmarks all run the plain net,
restored by name, on inputs in [0, 1].
"""

import dataclasses

import numpy as np
import tensorflow as tf

from slimhub import checkpoints
from slimhub import preprocessing
from slimhub import slim_nets


@dataclasses.dataclass
class NetGraph:
  graph: tf.Graph
  images: tf.Tensor
  output: slim_nets.NetOutput
  features: tf.Tensor

  def variable_shapes(self):
    """{op name: shape} of the graph's global variables."""
    with self.graph.as_default():
      return {v.op.name: v.shape.as_list()
              for v in tf.compat.v1.global_variables()}


def build(net, *, num_classes, image_size=None, is_training=False,
          batch_norm_decay=None, preprocessing_kind=None):
  """Builds `net` (a SlimNet or its name) in a new graph on [0, 1] inputs."""
  if isinstance(net, str):
    net = slim_nets.get(net)
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(
        tf.float32, [None, image_size, image_size, 3], name="images")
    net_input = preprocessing.to_net_range(
        images, preprocessing_kind or net.preprocessing)
    output = net.build(
        net_input, num_classes=num_classes, is_training=is_training,
        batch_norm_decay=(net.bn_decay if batch_norm_decay is None
                          else batch_norm_decay))
    features = tf.reshape(output.features, [-1, net.num_features])
  return NetGraph(graph=graph, images=images, output=output,
                  features=features)


def run(net_graph, checkpoint, images, use_ema="auto"):
  """Restores `checkpoint` into `net_graph`; {"features", "logits"} arrays."""
  plan = checkpoints.plan_restore(net_graph.variable_shapes(), checkpoint,
                                  use_ema)
  with net_graph.graph.as_default():
    by_name = {v.op.name: v for v in tf.compat.v1.global_variables()}
    saver = tf.compat.v1.train.Saver(
        {key: by_name[name] for name, key in plan.keys.items()})
    fetches = {"features": net_graph.features}
    if net_graph.output.logits is not None:
      fetches["logits"] = net_graph.output.logits
    with tf.compat.v1.Session(graph=net_graph.graph) as session:
      saver.restore(session, plan.prefix)
      return session.run(fetches, {net_graph.images: np.asarray(images)})
