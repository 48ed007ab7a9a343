"""Identical randomness in every training step the checks run.

Dropout and drop path (NASNet-A, PNASNet-5) draw new masks in every step, so
two steps of a module see other batch statistics, and comparing the moving
averages they leave (batch_norm.py) measures the masks instead of the
momentum. The training checks therefore run a copy of the module's graphs
in which each stateful random op of the allowlist is replaced by its
stateless twin with a fixed seed: the same distribution and shape, drawn
identically in every run. Every other op runs as shipped; inference runs
use the graphs unchanged (they must repeat by themselves).
"""

import contextlib
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

# Each takes (shape) and attrs seed, seed2, dtype, T; its twin takes (shape,
# seed) and attrs dtype, T, Tseed.
STATELESS = {
    "RandomUniform": "StatelessRandomUniform",
    "RandomStandardNormal": "StatelessRandomNormal",
    "TruncatedNormal": "StatelessTruncatedNormal",
}
SEED_SUFFIX = "/pinned_seed"
_SEED = 23


def _pin_nodes(nodes, reference):
  """Makes the random ops of `nodes` (a repeated NodeDef field) stateless;
  reference(name) is how an input names that node's first output. Returns
  the number of ops pinned."""
  indices = [i for i, node in enumerate(nodes) if node.op in STATELESS]
  for count, index in enumerate(indices):
    node = nodes[index]
    seed_name = node.name + SEED_SUFFIX
    data = [name for name in node.input if not name.startswith("^")]
    control = [name for name in node.input if name.startswith("^")]
    del node.input[:]
    node.input.extend(data + [reference(seed_name)] + control)
    node.op = STATELESS[node.op]
    for key in ("seed", "seed2"):
      if key in node.attr:
        del node.attr[key]
    node.attr["Tseed"].type = tf.int64.as_datatype_enum
    device = node.device
    seed = nodes.add()
    seed.name, seed.op, seed.device = seed_name, "Const", device
    seed.attr["dtype"].type = tf.int64.as_datatype_enum
    seed.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(
        np.array([_SEED, count], np.int64)))
  return len(indices)


def pin_graph_def(graph_def):
  """Pins the random ops of `graph_def` and its function library in place;
  returns how many there were."""
  count = _pin_nodes(graph_def.node, lambda name: name)
  for function in graph_def.library.function:
    count += _pin_nodes(function.node_def, lambda name: f"{name}:output:0")
  return count


def count(graph_def):
  """The random ops pin_graph_def would pin."""
  return sum(node.op in STATELESS for node in graph_def.node) + sum(
      node.op in STATELESS for function in graph_def.library.function
      for node in function.node_def)


def pinned_meta_graph(meta_graph):
  """A copy of `meta_graph` with its random ops pinned."""
  pinned = type(meta_graph)()
  pinned.CopyFrom(meta_graph)
  pin_graph_def(pinned.graph_def)
  return pinned


@contextlib.contextmanager
def pinned_saved_model(directory, saved_model):
  """A temporary SavedModel directory: `saved_model` with its random ops
  pinned, reading the variables of `directory` (linked, not copied)."""
  pinned = saved_model_pb2.SavedModel()
  pinned.CopyFrom(saved_model)
  for meta_graph in pinned.meta_graphs:
    pin_graph_def(meta_graph.graph_def)
  with tempfile.TemporaryDirectory(prefix="slimhub-verify-") as temporary:
    with open(os.path.join(temporary, "saved_model.pb"), "wb") as f:
      f.write(pinned.SerializeToString())
    os.symlink(os.path.abspath(os.path.join(directory, "variables")),
               os.path.join(temporary, "variables"))
    yield temporary
