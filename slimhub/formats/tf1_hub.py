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


def _check_state_colocation(graph, tags):
  """hub.Module rejects state ops colocated with non-state ops."""
  state_ops = {op.name for op in graph.get_operations()
               if op.op_def.is_stateful and not op.inputs}
  for op in graph.get_operations():
    if op.name not in state_ops:
      continue
    for group in op.colocation_groups():
      if group[5:].decode() not in state_ops:
        raise ModuleGraphError(
            f"In the graph for tags {sorted(tags)}, state op {op.name} is "
            f"colocated with non-state op {group[5:].decode()}")


def _check_signature_inputs(name, inputs):
  for key, tensor in inputs.items():
    op = tensor.op
    if len(op.outputs) != 1 or op.colocation_groups() != [
        f"loc:@{op.name}".encode()]:
      raise ModuleGraphError(
          f"Input {key!r} of signature {name!r} must be the single output of "
          f"an op without colocation constraints; got {tensor.name}")


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
    _check_state_colocation(graph, tags)
    for name, signature in module_graph.signatures.items():
      _check_signature_inputs(name, signature.inputs)
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
