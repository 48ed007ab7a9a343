"""Identical randomness in every training step the checks run.

Dropout and drop path (NASNet-A, PNASNet-5) draw new masks in every step, so
two steps of a module see other batch statistics, and comparing the moving
averages they leave (batch_norm.py) measures the masks instead of the
momentum. The training checks therefore run a copy of the module's graphs
in which each stateful random op of the allowlist is replaced by its
stateless twin with a fixed seed: the same distribution and shape, drawn
identically in every run. Every other op runs as shipped, and inference
runs the graphs unchanged (they must repeat by themselves): TF1 pins the
[train] variant only, TF2 the functions only training=True traces run.
"""

import contextlib
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from slimhub.verify import reading
from slimhub.verify import security

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
  for number, index in enumerate(indices):
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
        np.array([_SEED, number], np.int64)))
  return len(indices)


def _closure(roots, library):
  """The functions `roots` name and every function they call."""
  seen, stack = set(), list(roots)
  while stack:
    name = stack.pop()
    if name in seen or name not in library:
      continue
    seen.add(name)
    for node in library[name].node_def:
      stack.extend(security.called_functions(node, library))
  return seen


def training_functions(saved_model):
  """The functions of a TF2 SavedModel that only its training=True traces
  of __call__ run: those whose random ops the training checks pin."""
  meta_graph = saved_model.meta_graphs[0]
  library = _library(meta_graph.graph_def)
  training = reading.training_trace_names(saved_model)
  others = [name for name in meta_graph.object_graph_def.concrete_functions
            if name not in training]
  others += [name for node in meta_graph.graph_def.node
             for name in security.called_functions(node, library)]
  return _closure(training, library) - _closure(others, library)


def _random_nodes(functions, library):
  return [f"{node.name} in function {name}" for name in sorted(functions)
          for node in library[name].node_def if node.op in STATELESS]


def _library(graph_def):
  return {function.signature.name: function
          for function in graph_def.library.function}


def random_ops_behind(graph_def, tensor_names):
  """The random ops that computing `tensor_names` runs (graph nodes, and
  nodes of the functions called on the way), sorted."""
  nodes = {node.name: node for node in graph_def.node}
  library = _library(graph_def)
  found, functions, seen = [], [], set()
  stack = [name.lstrip("^").split(":")[0] for name in tensor_names]
  while stack:
    name = stack.pop()
    if name in seen or name not in nodes:
      continue
    seen.add(name)
    node = nodes[name]
    if node.op in STATELESS:
      found.append(name)
    functions.extend(security.called_functions(node, library))
    stack.extend(item.lstrip("^").split(":")[0] for item in node.input)
  return sorted(found) + _random_nodes(_closure(functions, library), library)


def inference_random_ops(saved_model):
  """The random ops in what __call__'s traces without training=True run."""
  graph_def = saved_model.meta_graphs[0].graph_def
  library = _library(graph_def)
  training = reading.training_trace_names(saved_model)
  inference = reading.call_trace_names(saved_model) - training
  return _random_nodes(_closure(inference, library), library)


def pinned_meta_graph(meta_graph):
  """A copy of a TF1 `meta_graph` with every random op pinned; the number
  pinned."""
  pinned = type(meta_graph)()
  pinned.CopyFrom(meta_graph)
  graph_def = pinned.graph_def
  total = _pin_nodes(graph_def.node, lambda name: name)
  for function in graph_def.library.function:
    total += _pin_nodes(function.node_def, lambda name: f"{name}:output:0")
  return pinned, total


@contextlib.contextmanager
def training_pinned(directory, saved_model):
  """(a SavedModel directory, the number of random ops pinned): a temporary
  copy of `saved_model` with the random ops of training_functions pinned,
  reading the variables of `directory` (linked, not copied); `directory`
  itself when those functions have none."""
  functions = training_functions(saved_model)
  pinned = saved_model_pb2.SavedModel()
  pinned.CopyFrom(saved_model)
  total = sum(_pin_nodes(function.node_def, lambda name: f"{name}:output:0")
              for function in pinned.meta_graphs[0].graph_def.library.function
              if function.signature.name in functions)
  if not total:
    yield directory, 0
    return
  with tempfile.TemporaryDirectory(prefix="slimhub-verify-") as temporary:
    with open(os.path.join(temporary, reading.SAVED_MODEL_FILE), "wb") as f:
      f.write(pinned.SerializeToString())
    os.symlink(os.path.abspath(os.path.join(directory, "variables")),
               os.path.join(temporary, "variables"))
    yield temporary, total
