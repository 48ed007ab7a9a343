"""Reading a module directory without running anything from it.

Detects the format -- a TF1 Hub module has ``tfhub_module.pb`` next to
``saved_model.pb``, a TF2 SavedModel has ``saved_model.pb`` alone -- and
parses ``saved_model.pb`` into plain descriptions: graph variants with their
signatures, collections, attachments and variables (TF1), or the saved
object's attributes, ``__call__`` traces and variables (TF2). Only protos are
read here; no graph is imported and no Python from the module is run.
"""

import dataclasses
import os
from typing import Any, Mapping, Optional

import tensorflow as tf
from google.protobuf import message as protobuf_message
from tensorflow.core.framework import variable_pb2
from tensorflow.core.protobuf import saved_model_pb2

from slimhub import catalog
from slimhub.formats import hub_protos
from slimhub.formats import metadata as metadata_format
from slimhub.formats import tf1_hub

TF1_HUB = catalog.TF1_HUB
TF2_SAVED_MODEL = catalog.TF2_SAVED_MODEL
SAVED_MODEL_FILE = "saved_model.pb"


class NotAModule(ValueError):
  """The directory holds no readable TF1 Hub module or SavedModel."""


@dataclasses.dataclass(frozen=True)
class Tensor:
  """A tensor or TensorSpec: dtype name, shape (None: unknown rank; None
  dimensions: unknown size) and, in graphs, its name."""
  dtype: str
  shape: Optional[tuple]
  name: str = ""

  def describe(self):
    """"float32 [?,128,128,3] hub_input/images:0", the layout's notation."""
    return " ".join(part for part in (self.dtype, shape_text(self.shape),
                                      self.name) if part)


def shape_text(shape):
  """"[?,128,128,3]" for (None, 128, 128, 3); None is an unknown rank."""
  if shape is None:
    return "<unknown rank>"
  return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


@dataclasses.dataclass(frozen=True)
class Signature:
  method_name: str
  inputs: Mapping[str, Tensor]
  outputs: Mapping[str, Tensor]


@dataclasses.dataclass(frozen=True)
class GraphVariant:
  """One MetaGraphDef of a TF1 Hub module.

  collections: {key: number of items}; variables and trainable: {op name:
  Tensor with dtype and shape} of the variables / trainable_variables
  collections.
  """
  tags: tuple
  signatures: Mapping[str, Signature]
  collections: Mapping[str, int]
  attachments: Mapping[str, bytes]
  variables: Mapping[str, Tensor]
  trainable: Mapping[str, Tensor]
  meta_graph: Any

  @property
  def label(self):
    """"[]" or "[train]": how reports name the variant."""
    return "[" + ",".join(self.tags) + "]"

  def node_names(self, key):
    """Items of a node_list collection (op or tensor names)."""
    collection = self.meta_graph.collection_def.get(key)
    return list(collection.node_list.value) if collection is not None else []


@dataclasses.dataclass(frozen=True)
class Trace:
  """One concrete function of the restored __call__.

  arguments: {parameter name: Tensor (a TensorSpec) or Python value};
  output: a Tensor, or a dict / list of them.
  """
  arguments: Mapping[str, Any]
  output: Any


@dataclasses.dataclass(frozen=True)
class SavedObject:
  """The root object of a TF2 SavedModel, as its object graph describes it.

  attributes: names of the root's children. parameters: __call__'s
  parameter names (empty without __call__). variables / trainable: {name:
  Tensor} of the `variables` / `trainable_variables` lists.
  """
  tag_sets: tuple
  signatures: Mapping[str, Mapping[str, Signature]]
  attributes: tuple
  parameters: tuple
  traces: tuple
  variables: Mapping[str, Tensor]
  trainable: Mapping[str, Tensor]
  regularization_losses: int

  @property
  def image_specs(self):
    """The TensorSpecs of __call__'s first parameter, one per trace."""
    name = self.parameters[0] if self.parameters else None
    return [trace.arguments[name] for trace in self.traces
            if isinstance(trace.arguments.get(name), Tensor)]


@dataclasses.dataclass(frozen=True)
class Module:
  """A module directory: its format, parsed content and slimhub metadata.

  metadata is None when assets.extra/slimhub_metadata.json is absent;
  metadata_error says why it could not be read, if it could not.
  """
  directory: str
  format: str
  saved_model: Any
  module_def: Optional[bytes]
  variants: tuple = ()
  saved_object: Optional[SavedObject] = None
  metadata: Optional[dict] = None
  metadata_error: Optional[str] = None

  @property
  def variables_prefix(self):
    return os.path.join(self.directory, tf1_hub.VARIABLES_PREFIX)

  def variant(self, *tags):
    """The graph variant with exactly these tags, or None."""
    for variant in self.variants:
      if set(variant.tags) == set(tags):
        return variant
    return None


def _dtype_name(enum):
  if not enum:
    return "none"  # DT_INVALID: ops without outputs, such as init ops.
  try:
    return tf.as_dtype(enum).name
  except TypeError:
    return f"dtype{enum}"


def _shape(shape_proto):
  if shape_proto.unknown_rank:
    return None
  return tuple(None if dim.size < 0 else dim.size for dim in shape_proto.dim)


def _tensor_info(info):
  encoding = info.WhichOneof("encoding")
  if encoding != "name":
    return Tensor(_dtype_name(info.dtype), None, f"<{encoding}>")
  return Tensor(_dtype_name(info.dtype), _shape(info.tensor_shape), info.name)


def _signatures(meta_graph):
  return {
      name: Signature(
          method_name=signature.method_name,
          inputs={k: _tensor_info(v) for k, v in signature.inputs.items()},
          outputs={k: _tensor_info(v) for k, v in signature.outputs.items()})
      for name, signature in meta_graph.signature_def.items()}


def _collection_size(collection):
  kind = collection.WhichOneof("kind")
  return len(getattr(collection, kind).value) if kind else 0


def _graph_variables(meta_graph, key, nodes):
  """{op name: Tensor} of the VariableDefs in collection `key`."""
  collection = meta_graph.collection_def.get(key)
  variables = {}
  for value in collection.bytes_list.value if collection is not None else ():
    name = variable_pb2.VariableDef.FromString(value).variable_name
    op_name = name.split(":")[0]
    node = nodes.get(op_name)
    if node is None:
      variables[op_name] = Tensor("<no op>", None)
    else:
      variables[op_name] = Tensor(_dtype_name(node.attr["dtype"].type),
                                  _shape(node.attr["shape"].shape))
  return variables


def graph_variant(meta_graph):
  nodes = {node.name: node for node in meta_graph.graph_def.node}
  return GraphVariant(
      tags=tuple(sorted(meta_graph.meta_info_def.tags)),
      signatures=_signatures(meta_graph),
      collections={key: _collection_size(collection)
                   for key, collection in meta_graph.collection_def.items()},
      attachments=hub_protos.attachments_of(meta_graph),
      variables=_graph_variables(meta_graph, "variables", nodes),
      trainable=_graph_variables(meta_graph, "trainable_variables", nodes),
      meta_graph=meta_graph)


def _structure(value):
  """A StructuredValue proto as Python: Tensors for specs, lists, dicts."""
  kind = value.WhichOneof("kind")
  if kind in ("tensor_spec_value", "bounded_tensor_spec_value"):
    spec = getattr(value, kind)
    return Tensor(_dtype_name(spec.dtype), _shape(spec.shape))
  if kind in ("tuple_value", "list_value"):
    return [_structure(item) for item in getattr(value, kind).values]
  if kind == "dict_value":
    return {key: _structure(item)
            for key, item in sorted(value.dict_value.fields.items())}
  if kind == "named_tuple_value":
    return {pair.key: _structure(pair.value)
            for pair in value.named_tuple_value.values}
  if kind in ("bool_value", "int64_value", "float64_value", "string_value"):
    return getattr(value, kind)
  if kind == "none_value":
    return None
  return f"<{kind}>"


def _parameters(function_spec):
  """Parameter names of a saved tf.function, without `self`."""
  spec = _structure(function_spec.fullargspec) or {}
  names = list(spec.get("args") or []) + list(spec.get("kwonlyargs") or [])
  return tuple(names[1:] if function_spec.is_method else names)


def _trace(concrete_function, parameters):
  args, kwargs = _structure(concrete_function.canonicalized_input_signature)
  arguments = dict(zip(parameters, args))
  arguments.update(kwargs)
  return Trace(arguments=arguments,
               output=_structure(concrete_function.output_signature))


def _list_children(object_graph, node_id):
  return [child.node_id for child in object_graph.nodes[node_id].children]


def _saved_variables(object_graph, node_ids):
  variables = {}
  for node_id in node_ids:
    node = object_graph.nodes[node_id]
    if node.WhichOneof("kind") == "variable":
      variable = node.variable
      variables[variable.name] = Tensor(_dtype_name(variable.dtype),
                                        _shape(variable.shape))
  return variables


def _children(object_graph):
  return ({child.local_name: child.node_id
           for child in object_graph.nodes[0].children}
          if object_graph.nodes else {})


def _call_traces(object_graph):
  """(__call__'s parameters, {concrete function name: Trace})."""
  children = _children(object_graph)
  call_node = (object_graph.nodes[children["__call__"]]
               if "__call__" in children else None)
  if call_node is None or call_node.WhichOneof("kind") != "function":
    return (), {}
  parameters = _parameters(call_node.function.function_spec)
  return parameters, {
      name: _trace(object_graph.concrete_functions[name], parameters)
      for name in call_node.function.concrete_functions}


def call_trace_names(saved_model):
  """The concrete functions of __call__."""
  _, traces = _call_traces(saved_model.meta_graphs[0].object_graph_def)
  return set(traces)


def training_trace_names(saved_model):
  """The concrete functions of __call__ traced with training=True."""
  _, traces = _call_traces(saved_model.meta_graphs[0].object_graph_def)
  return {name for name, trace in traces.items()
          if trace.arguments.get("training") is True}


def _saved_object(saved_model):
  object_graph = saved_model.meta_graphs[0].object_graph_def
  children = _children(object_graph)
  parameters, traces = _call_traces(object_graph)
  traces = list(traces.values())

  def listed(name):
    if name not in children:
      return []
    return _list_children(object_graph, children[name])

  return SavedObject(
      tag_sets=tuple(tuple(sorted(m.meta_info_def.tags))
                     for m in saved_model.meta_graphs),
      signatures={",".join(sorted(m.meta_info_def.tags)): _signatures(m)
                  for m in saved_model.meta_graphs},
      attributes=tuple(sorted(children)),
      parameters=parameters,
      traces=tuple(traces),
      variables=_saved_variables(object_graph, listed("variables")),
      trainable=_saved_variables(object_graph, listed("trainable_variables")),
      regularization_losses=len(listed("regularization_losses")))


def _read_metadata(directory):
  try:
    return metadata_format.read(directory), None
  except metadata_format.MetadataError as error:
    return None, str(error)


def _listing(directory):
  names = sorted(os.listdir(directory))
  shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
  return shown or "nothing"


def read(directory):
  """The Module in `directory`; NotAModule says why there is none."""
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise NotAModule(f"{directory} is not a directory")
  path = os.path.join(directory, SAVED_MODEL_FILE)
  if not os.path.exists(path):
    raise NotAModule(f"{directory} holds no {SAVED_MODEL_FILE} (found "
                     f"{_listing(directory)}); it is neither a TF1 Hub "
                     "module nor a SavedModel")
  try:
    with open(path, "rb") as f:
      saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  except (OSError, protobuf_message.DecodeError) as error:
    raise NotAModule(f"{path} is not a SavedModel proto: {error}") from None
  if not saved_model.meta_graphs:
    raise NotAModule(f"{path} holds no MetaGraphDef")
  metadata, metadata_error = _read_metadata(directory)
  module_def_path = os.path.join(directory, hub_protos.MODULE_DEF_FILENAME)
  if os.path.exists(module_def_path):
    with open(module_def_path, "rb") as f:
      module_def = f.read()
    return Module(directory=directory, format=TF1_HUB,
                  saved_model=saved_model, module_def=module_def,
                  variants=tuple(graph_variant(meta_graph)
                                 for meta_graph in saved_model.meta_graphs),
                  metadata=metadata, metadata_error=metadata_error)
  return Module(directory=directory, format=TF2_SAVED_MODEL,
                saved_model=saved_model, module_def=None,
                saved_object=_saved_object(saved_model),
                metadata=metadata, metadata_error=metadata_error)
