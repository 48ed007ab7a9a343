"""Writer of the TF1 Hub module format ("format: hub", read by hub.Module).

Plain TensorFlow 2.21 APIs only; the layout is the one tensorflow_hub 0.15's
``create_module_spec`` + ``export`` produce (tf1-hub-format.md §7):

  tfhub_module.pb      ModuleDef(format=FORMAT_V3), the bytes 08 03
  saved_model.pb       SavedModel, schema version 0, one MetaGraphDef per
                       graph variant (no saver_def), signatures without
                       method names, ModuleAttachments in every variant
  variables/variables  V2 checkpoint keyed by the variables' op names
  assets/              empty

The graph content comes from a module_fn callback; variable values come
from a callback that writes the checkpoint at a given prefix.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from slimhub import compat
from slimhub.formats import hub_protos

# The variants Google's image modules have: inference, then training.
IMAGE_MODULE_VARIANTS = ((frozenset(), {"is_training": False}),
                         (frozenset({"train"}), {"is_training": True}))

_KEYS = tf.compat.v1.GraphKeys
SUPPORTED_COLLECTIONS = frozenset([
    _KEYS.GLOBAL_VARIABLES, _KEYS.TRAINABLE_VARIABLES, _KEYS.MODEL_VARIABLES,
    _KEYS.TABLE_INITIALIZERS, _KEYS.UPDATE_OPS, _KEYS.REGULARIZATION_LOSSES,
    _KEYS.ASSET_FILEPATHS, _KEYS.COND_CONTEXT, _KEYS.WHILE_CONTEXT,
    hub_protos.ATTACHMENTS_COLLECTION,
])
VARIABLES_PREFIX = os.path.join("variables", "variables")
# slimhub builds resource variables. False builds TF 1.x's reference
# variables (VariableV2, Assign, AssignSub), as Google's published TF1 Hub
# modules hold them: the tests set it to check such modules.
RESOURCE_VARIABLES = True
# The ops of quantization-aware graphs (quantops modules).
FAKE_QUANT_OPS = frozenset({"FakeQuantWithMinMaxVars",
                            "FakeQuantWithMinMaxArgs"})


class ModuleGraphError(ValueError):
  """A module_fn built a graph the TF1 Hub format cannot hold."""


def _drop_unsupported_collections(graph):
  for key in graph.get_all_collection_keys():
    if isinstance(key, str) and key not in SUPPORTED_COLLECTIONS:
      del graph.get_collection_ref(key)[:]


def _colocation_groups(node):
  """Operation.colocation_groups() of a NodeDef: its "_class" entries
  "loc:@<node>", else its own group."""
  groups = [group for group in node.attr["_class"].list.s
            if group.startswith(b"loc:@")] if "_class" in node.attr else []
  return groups or [f"loc:@{node.name}".encode()]


def _holds_state(node):
  """A stateful op without data inputs (a variable, a table, ...)."""
  op_def = op_def_registry.get(node.op)
  return bool(op_def and op_def.is_stateful) and not any(
      not name.startswith("^") for name in node.input)


def _attr(node, op_def, name):
  if name in node.attr:
    return node.attr[name]
  return next(attr.default_value for attr in op_def.attr if attr.name == name)


def _output_count(node):
  """How many outputs `node` has; None for an unregistered op."""
  op_def = op_def_registry.get(node.op)
  if op_def is None:
    return None
  count = 0
  for arg in op_def.output_arg:
    if arg.number_attr:
      count += _attr(node, op_def, arg.number_attr).i
    elif arg.type_list_attr:
      count += len(_attr(node, op_def, arg.type_list_attr).list.type)
    else:
      count += 1
  return count


def find_state_op_colocation_error(graph_def, tags=None):
  """hub.Module's rule for state ops, or None if `graph_def` (the graph for
  `tags`, if given, named in the message) keeps it: a state-holding node
  (a variable) must not be colocated with a node that holds no state."""
  state = {node.name for node in graph_def.node if _holds_state(node)}
  for node in graph_def.node:
    if node.name not in state:
      continue
    for group in _colocation_groups(node):
      other = group[5:].decode()
      if other not in state:
        return ("A state-holding node (e.g. a variable) must not be "
                "colocated with a node that holds no state (hub.Module "
                "refuses it). Details: "
                + ("" if tags is None else
                   f"in the graph for tags {sorted(tags)}, ")
                + f"state op {node.name} ({node.op}) is colocated with "
                f"non-state op {other}. Create the variable outside "
                "tf.colocate_with.")
  return None


def find_signature_input_colocation_error(signature_name, inputs, graph_def):
  """hub.Module's rule for signature inputs, or None if they keep it: each
  input is the single output of an op without colocation constraints.
  inputs: {input key: tensor name} of the signature in `graph_def`."""
  nodes = {node.name: node for node in graph_def.node}
  for key, tensor_name in sorted(inputs.items()):
    node = nodes.get(tensor_name.split(":")[0].lstrip("^"))
    if node is None:  # not this rule's concern (tf1.signature_inputs)
      continue
    groups = _colocation_groups(node)
    outputs = _output_count(node)
    if groups != [f"loc:@{node.name}".encode()]:
      found = "colocated with " + ", ".join(g[5:].decode() for g in groups)
    elif outputs not in (1, None):  # None: an op unknown here
      found = f"one of the {outputs} outputs of a {node.op} op"
    else:
      continue
    return ("A signature input must be the single output of an op without "
            "colocation constraints (hub.Module refuses others). Details: "
            f"input {key!r} of signature {signature_name!r} is {tensor_name}, "
            f"{found}. Feed a tf.compat.v1.placeholder instead.")
  return None


def _signature_def(signature):
  info = tf.compat.v1.saved_model.utils.build_tensor_info
  return tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
      inputs={key: info(t) for key, t in signature.inputs.items()},
      outputs={key: info(t) for key, t in signature.outputs.items()})


def build_meta_graph(module_fn, tags, kwargs):
  """Runs `module_fn(**kwargs)` in a fresh graph; returns (MetaGraphDef,
  {variable name: shape}, the graph).

  `module_fn` returns an object with `signatures` ({name: Signature with
  inputs/outputs dicts}) and `attachments` ({key: bytes}).
  """
  graph = tf.Graph()
  with graph.as_default(), compat.graph_building():
    with tf.compat.v1.variable_scope("", use_resource=RESOURCE_VARIABLES):
      module_graph = module_fn(**kwargs)
    _drop_unsupported_collections(graph)
    graph_def = graph.as_graph_def()
    error = find_state_op_colocation_error(graph_def, tags)
    for name, signature in module_graph.signatures.items():
      error = error or find_signature_input_colocation_error(
          name, {key: t.name for key, t in signature.inputs.items()},
          graph_def)
    if error:
      raise ModuleGraphError(error)
    meta_graph = tf.compat.v1.train.export_meta_graph(
        graph=graph, strip_default_attrs=True)
    for name, signature in module_graph.signatures.items():
      meta_graph.signature_def[name].CopyFrom(_signature_def(signature))
  meta_graph.meta_info_def.tags[:] = sorted(tags)
  if module_graph.attachments:
    meta_graph.collection_def[
        hub_protos.ATTACHMENTS_COLLECTION].bytes_list.value[:] = [
            hub_protos.ModuleAttachment(key=key, value=value)
            .SerializeToString()
            for key, value in module_graph.attachments.items()]
  variables = {v.op.name: v.shape.as_list()
               for v in graph.get_collection(_KEYS.GLOBAL_VARIABLES)}
  return meta_graph, variables, graph


def build_meta_graphs(module_fn, variants=IMAGE_MODULE_VARIANTS):
  """MetaGraphDefs of all variants and their common {variable: shape}.

  Every variant must define the same variables: a module has one checkpoint.
  """
  meta_graphs, common = [], None
  for tags, kwargs in variants:
    meta_graph, variables, _ = build_meta_graph(module_fn, tags, kwargs)
    if common is not None and variables != common:
      differ = sorted(set(variables).symmetric_difference(common))
      raise ModuleGraphError(
          f"Graph variant {sorted(tags)} has other variables than the first "
          f"variant: {', '.join(differ[:10]) or 'shapes differ'}")
    common = variables
    meta_graphs.append(meta_graph)
  return meta_graphs, common


def saved_model_proto(meta_graphs):
  """The SavedModel of a module: schema version 0, as hub writes it."""
  saved_model = saved_model_pb2.SavedModel(saved_model_schema_version=0)
  saved_model.meta_graphs.extend(meta_graphs)
  return saved_model


def write_module(directory, meta_graphs, write_variables):
  """Writes a TF1 Hub module into the (empty, staging) `directory`.

  write_variables(prefix) must write the V2 checkpoint of every variable of
  the meta graphs at `prefix`.
  """
  os.makedirs(os.path.join(directory, "variables"), exist_ok=True)
  os.makedirs(os.path.join(directory, "assets"), exist_ok=True)
  write_variables(os.path.join(directory, VARIABLES_PREFIX))
  with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
    # Deterministic: protobuf maps (signatures, collections) in key order.
    f.write(saved_model_proto(meta_graphs).SerializeToString(
        deterministic=True))
  with open(os.path.join(directory, hub_protos.MODULE_DEF_FILENAME), "wb") as f:
    f.write(hub_protos.module_def_bytes())


def read_saved_model(directory):
  """The SavedModel proto of a module directory."""
  with open(os.path.join(directory, "saved_model.pb"), "rb") as f:
    return saved_model_pb2.SavedModel.FromString(f.read())


def is_tf1_module(directory):
  """Whether `directory` holds a TF1 Hub module (its tfhub_module.pb)."""
  return os.path.exists(os.path.join(directory,
                                     hub_protos.MODULE_DEF_FILENAME))


def has_fake_quant(meta_graph):
  """Whether a graph variant computes with fake quantization."""
  return any(node.op in FAKE_QUANT_OPS for node in meta_graph.graph_def.node)


def meta_graph_for(saved_model, tags):
  """The MetaGraphDef whose tag set equals `tags`; KeyError if none."""
  for meta_graph in saved_model.meta_graphs:
    if set(meta_graph.meta_info_def.tags) == set(tags):
      return meta_graph
  raise KeyError(f"No graph variant with tags {sorted(tags)}")
