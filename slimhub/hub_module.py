"""hub.Module of tensorflow-hub 0.15, the consumer half, on TensorFlow 2.21.

tensorflow-hub 0.16 dropped the TF1 API and 0.15 does not import on
TF >= 2.16, so TF1 training code that loads TF1 Hub modules has no consumer
on current TensorFlow. ``import slimhub.hub_module as hub`` runs it
unchanged in ``tf.compat.v1`` graph mode:

    module = hub.Module(handle, trainable=True, tags={"train"})
    logits = module(images)            # signature "default", output "default"
    ...  # UPDATE_OPS, REGULARIZATION_LOSSES, global_variables_initializer()

Semantics follow hub 0.15 as observed in tests/test_hub_module.py's
differential test against it:

* the module's variables live under a fresh variable scope ``name``
  (``module``, ``module_1``, ... under the current variable scope) and are
  initialized from the module's ``variables/`` by
  ``global_variables_initializer()``; ``variable_map`` is keyed by their
  names inside the module;
* only ``trainable=True`` adds them to TRAINABLE_VARIABLES and the module's
  REGULARIZATION_LOSSES (once per Module), and each call's UPDATE_OPS;
* each call imports the signature's graph under ``{name}_apply_{signature}``
  and shares the Module's variables.

Trust model: a module is a program. Before anything is imported,
``load_module_spec`` refuses a module whose graphs reach an op outside the
image-module allowlist (slimhub/verify/op_allowlist.py: no file, network or
Python ops) or whose files link out of its directory. That bounds what the
graphs can do; it does not make an untrusted module's outputs trustworthy.

Not provided: building or exporting modules (``create_module_spec``,
``Module.export``, ``add_signature``, ``attach_message``), text/image
feature columns, ``LatestModuleExporter``, ``eval_function_for_module`` and
modules with sparse or partitioned tensors.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub
from slimhub.verify import security

__all__ = ["Module", "ModuleSpec", "ParsedTensorInfo", "UntrustedModuleError",
           "get_expected_image_size", "get_num_image_channels",
           "load_module_spec", "resolve"]

_KEYS = tf.compat.v1.GraphKeys
# Collections the state import keeps: the variables, and with
# trainable=True the trainable set and the weight decay.
_STATE_COLLECTIONS = (_KEYS.GLOBAL_VARIABLES, _KEYS.MODEL_VARIABLES)
_TRAINABLE_STATE_COLLECTIONS = (_KEYS.TRAINABLE_VARIABLES,
                                _KEYS.REGULARIZATION_LOSSES)
_STATE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})


class UntrustedModuleError(ValueError):
  """The module's graphs can run ops no image module needs."""


def resolve(handle):
  """The local directory of `handle`: a path, or whatever
  tensorflow_hub.resolve (0.16) makes of it (TFHUB_CACHE_DIR, http(s)
  mirrors, compressed archives)."""
  handle = os.fspath(handle)
  if os.path.isdir(handle):
    return handle
  if "://" not in handle:
    raise OSError(f"Module handle {handle!r} is not a directory and not a "
                  "URL")
  try:
    import tensorflow_hub  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(f"Resolving {handle!r} needs tensorflow_hub (>= 0.16); "
                      "pip install tensorflow-hub, or pass a local "
                      "directory") from None
  return tensorflow_hub.resolve(handle)


class ParsedTensorInfo:
  """dtype and shape of a signature input or output (hub's class of the
  same name)."""

  def __init__(self, info):
    self.dtype = tf.as_dtype(info.dtype)
    self._shape = tf.TensorShape(info.tensor_shape)
    self.is_sparse = info.WhichOneof("encoding") == "coo_sparse"
    self.name = info.name

  def get_shape(self):
    return self._shape

  def __repr__(self):
    return (f"<ParsedTensorInfo shape={self._shape} dtype={self.dtype.name} "
            f"is_sparse={self.is_sparse}>")


def refuse_untrusted(directory, saved_model, handle):
  """Raises UntrustedModuleError if running the module (TF1 or TF2) could
  execute an op outside the image-module allowlist, or its files or assets
  lead out of `directory`. Reads protos and the listing only."""
  problems = security.leaving_paths(directory) + (
      security.asset_path_problems(saved_model))
  if problems:
    raise UntrustedModuleError(f"Refusing module {handle}: {problems[0]}")
  findings = security.scan_ops(saved_model).findings
  if findings:
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    raise UntrustedModuleError(f"Refusing module {handle}: untrusted op "
                               f"{findings[0].describe()}{more}")


class ModuleSpec:
  """A TF1 Hub module on disk: its graph variants, signatures and
  attachments. Make one with load_module_spec."""

  def __init__(self, path):
    self._path = path
    self._saved_model = tf1_hub.read_saved_model(path)
    self._variables_prefix = os.path.join(path, tf1_hub.VARIABLES_PREFIX)

  def get_tags(self):
    """The tag sets of the graph variants, as frozensets."""
    return [frozenset(m.meta_info_def.tags)
            for m in self._saved_model.meta_graphs]

  def _meta_graph(self, tags):
    tags = set(tags or ())
    try:
      return tf1_hub.meta_graph_for(self._saved_model, tags)
    except KeyError:
      raise ValueError(
          f"Module {self._path} has no graph variant with tags "
          f"{sorted(tags)}; it has "
          f"{[sorted(t) for t in self.get_tags()]}") from None

  def _signature_def(self, signature, tags):
    signature = signature or "default"
    signatures = self._meta_graph(tags).signature_def
    if signature not in signatures:
      raise ValueError(f"Module {self._path} has no signature "
                       f"{signature!r}; it has {sorted(signatures)}")
    return signatures[signature]

  def get_signature_names(self, tags=None):
    return list(self._meta_graph(tags).signature_def)

  def get_input_info_dict(self, signature=None, tags=None):
    """{input name: ParsedTensorInfo} of `signature` (default "default")."""
    return {key: ParsedTensorInfo(info) for key, info in
            self._signature_def(signature, tags).inputs.items()}

  def get_output_info_dict(self, signature=None, tags=None):
    return {key: ParsedTensorInfo(info) for key, info in
            self._signature_def(signature, tags).outputs.items()}

  def get_attached_message(self, key, message_type, tags=None,
                           required=False):
    """The attachment `key` parsed as `message_type`, or None."""
    value = hub_protos.attachments_of(self._meta_graph(tags)).get(key)
    if value is None:
      if required:
        raise KeyError(f"Module {self._path} has no attached message {key!r}")
      return None
    return message_type.FromString(value)

  def _image_size(self, tags=None):
    return hub_protos.image_size_of(self._meta_graph(tags))


def load_module_spec(path):
  """The ModuleSpec of a TF1 Hub module at `path` (a handle: see resolve).

  Refuses TF2 SavedModels and modules outside the trust model (see the
  module docstring) with ValueError.
  """
  directory = resolve(path)
  if not tf1_hub.is_tf1_module(directory):
    if os.path.exists(os.path.join(directory, "saved_model.pb")):
      raise ValueError(
          f"{path} is a TF2 SavedModel, not a TF1 Hub module: load it with "
          "hub.load or hub.KerasLayer, or slimhub.keras.KerasLayer")
    raise ValueError(f"{path} is not a TF1 Hub module: no "
                     f"{hub_protos.MODULE_DEF_FILENAME} or saved_model.pb")
  with open(os.path.join(directory, hub_protos.MODULE_DEF_FILENAME),
            "rb") as f:
    module_def = hub_protos.ModuleDef.FromString(f.read())
  if module_def.format != hub_protos.FORMAT_V3:
    raise ValueError(f"{path}: unsupported TF1 Hub module format "
                     f"{module_def.format}")
  if module_def.required_features:
    raise ValueError(f"{path} requires features "
                     f"{list(module_def.required_features)}")
  spec = ModuleSpec(directory)
  refuse_untrusted(directory, spec._saved_model, path)  # pylint: disable=protected-access
  return spec


def _filtered(meta_graph, keep, shared_name_prefix):
  """A copy of meta_graph with only the collections `keep`, its resources'
  shared names prefixed so two Modules never share a variable."""
  copy = meta_graph_pb2.MetaGraphDef()
  copy.CopyFrom(meta_graph)
  for key in list(copy.collection_def):
    if key not in keep:
      del copy.collection_def[key]
  for node in copy.graph_def.node:
    if "shared_name" in node.attr and node.op in _STATE_OPS:
      node.attr["shared_name"].s = (
          f"{shared_name_prefix}/".encode()
          + (node.attr["shared_name"].s or node.name.encode()))
  return copy


def _state_scope(graph, name):
  """The absolute scope of a new Module: a variable scope not used yet
  under the current one, whose name scope is free too."""
  with tf.compat.v1.variable_scope(None, default_name=name,
                                   auxiliary_name_scope=False) as scope:
    absolute = scope.name
  parent, _, leaf = absolute.rpartition("/")
  with graph.name_scope(parent + "/" if parent else None):
    if graph.unique_name(leaf, mark_as_used=False) != absolute:
      raise RuntimeError(f"Variable scope {absolute} is unused but its name "
                         "scope is taken; pass another name=")
  return parent, leaf


def _to_input_dict(inputs, infos, signature):
  if not isinstance(inputs, dict):
    if len(infos) != 1:
      raise TypeError(f"Signature {signature!r} has inputs {sorted(infos)}: "
                      "pass a dict")
    inputs = {next(iter(infos)): inputs}
  missing, extra = sorted(set(infos) - set(inputs)), sorted(
      set(inputs) - set(infos))
  if missing or extra:
    raise TypeError(f"Inputs of signature {signature!r}: missing {missing}, "
                    f"unexpected {extra}")
  tensors = {}
  for key, value in inputs.items():
    info = infos[key]
    try:
      tensor = tf.convert_to_tensor(value, dtype=info.dtype)
    except (TypeError, ValueError) as error:
      raise TypeError(f"Input {key!r} of signature {signature!r} must be "
                      f"{info.dtype.name}: {error}") from None
    if not tensor.shape.is_compatible_with(info.get_shape()):
      raise TypeError(f"Input {key!r} of signature {signature!r} must have "
                      f"shape {info.get_shape()}, got {tensor.shape}")
    tensors[key] = tensor
  return tensors


class Module:
  """A TF1 Hub module applied in the current graph (hub.Module's API).

  Module(spec_or_handle, trainable=False, tags=None, name="module"):
  creates the module's variables in the default graph; each call applies
  one signature to inputs and shares those variables.
  """

  def __init__(self, spec, trainable=False, name="module", tags=None):
    if tf.executing_eagerly():
      raise RuntimeError(
          "slimhub.hub_module.Module builds TF1 graphs: call "
          "tf.compat.v1.disable_eager_execution() or build inside "
          "tf.Graph().as_default()")
    self._spec = spec if isinstance(spec, ModuleSpec) else load_module_spec(
        spec)
    self._trainable = bool(trainable)
    self._tags = set(tags or ())
    self._meta_graph = self._spec._meta_graph(self._tags)  # pylint: disable=protected-access
    self._graph = tf.compat.v1.get_default_graph()
    parent, self._name = _state_scope(self._graph, name)
    self._scope = f"{parent}/{self._name}" if parent else self._name
    self._variable_map, self._state_map = self._create_state(parent)

  def _create_state(self, parent):
    keep = _STATE_COLLECTIONS + (_TRAINABLE_STATE_COLLECTIONS
                                 if self._trainable else ())
    meta_graph = _filtered(self._meta_graph, keep, self._scope)
    with self._graph.name_scope(parent + "/" if parent else None):
      tf.compat.v1.train.import_meta_graph(meta_graph, import_scope=self._name,
                                           clear_devices=True)
    prefix = self._scope + "/"
    variables = {}
    for variable in self._graph.get_collection(_KEYS.GLOBAL_VARIABLES,
                                               scope=prefix):
      if variable.op.name.startswith(prefix):
        variables[variable.op.name[len(prefix):]] = variable
    state = {}
    for node in self._meta_graph.graph_def.node:
      if node.op in _STATE_OPS:
        state[f"{node.name}:0"] = self._graph.get_tensor_by_name(
            f"{prefix}{node.name}:0")
    if variables:
      tf.compat.v1.train.init_from_checkpoint(
          self._spec._variables_prefix, variables)  # pylint: disable=protected-access
    return variables, state

  def __call__(self, inputs=None, signature=None, as_dict=False):
    """Applies `signature` (default "default") to `inputs`, a tensor for a
    one-input signature or a dict; returns its "default" output, or with
    as_dict=True the dict of all outputs."""
    if tf.compat.v1.get_default_graph() is not self._graph:
      raise RuntimeError("A Module must be called in the graph it was "
                         "created in")
    signature = signature or "default"
    signature_def = self._spec._signature_def(signature, self._tags)  # pylint: disable=protected-access
    infos = {key: ParsedTensorInfo(info)
             for key, info in signature_def.inputs.items()}
    tensors = _to_input_dict(inputs, infos, signature)
    if not as_dict and "default" not in signature_def.outputs:
      raise ValueError(f"Signature {signature!r} has no output 'default': "
                       "call with as_dict=True")
    feed = dict(self._state_map)
    feed.update({infos[key].name: tensor for key, tensor in tensors.items()})
    absolute = self._graph.unique_name(f"{self._name}_apply_{signature}",
                                       mark_as_used=False)
    keep = (_KEYS.UPDATE_OPS,) if self._trainable else ()
    meta_graph = _filtered(self._meta_graph, keep, absolute)
    tf.compat.v1.train.import_meta_graph(
        meta_graph, input_map=feed, import_scope=absolute.split("/")[-1],
        clear_devices=True)

    def output(info):
      if info.name in feed:
        return feed[info.name]
      return self._graph.get_tensor_by_name(f"{absolute}/{info.name}")

    outputs = {key: output(info) for key, info in
               signature_def.outputs.items()}
    return outputs if as_dict else outputs["default"]

  def get_signature_names(self):
    return self._spec.get_signature_names(self._tags)

  def get_input_info_dict(self, signature=None):
    return self._spec.get_input_info_dict(signature, self._tags)

  def get_output_info_dict(self, signature=None):
    return self._spec.get_output_info_dict(signature, self._tags)

  def get_attached_message(self, key, message_type, required=False):
    return self._spec.get_attached_message(key, message_type, self._tags,
                                           required)

  @property
  def variable_map(self):
    """{variable name inside the module: tf.Variable}."""
    return dict(self._variable_map)

  @property
  def variables(self):
    """The module's variables, sorted by their names inside the module."""
    return [variable for _, variable in sorted(self._variable_map.items())]


def _spec_of(module_or_spec):
  if isinstance(module_or_spec, Module):
    return module_or_spec._spec, module_or_spec._tags  # pylint: disable=protected-access
  return module_or_spec, None


def _image_input_shape(module_or_spec, signature, input_name):
  spec, tags = _spec_of(module_or_spec)
  infos = spec.get_input_info_dict(signature, tags)
  input_name = input_name or "images"
  if input_name not in infos:
    raise ValueError(f"Signature {signature or 'default'!r} has no input "
                     f"{input_name!r}; it has {sorted(infos)}")
  shape = infos[input_name].get_shape()
  if shape.rank != 4:
    raise ValueError(f"Input {input_name!r} is not a batch of images: shape "
                     f"{shape}")
  return spec, tags, shape


def get_expected_image_size(module_or_spec, signature=None, input_name=None):
  """[height, width] the module expects: its ImageModuleInfo, else the
  static size of its image input."""
  spec, tags, shape = _image_input_shape(module_or_spec, signature,
                                         input_name)
  size = spec._image_size(tags)  # pylint: disable=protected-access
  if size:
    return list(size)
  height, width = shape[1], shape[2]
  if height is None or width is None:
    raise ValueError("The module declares no image size: no "
                     "ImageModuleInfo and no static input height and width")
  return [height, width]


def get_num_image_channels(module_or_spec, signature=None, input_name=None):
  """The number of channels of the module's image input."""
  _, _, shape = _image_input_shape(module_or_spec, signature, input_name)
  if shape[3] is None:
    raise ValueError("The module's image input has no static channel count")
  return shape[3]
