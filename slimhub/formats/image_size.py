"""get_expected_image_size for both module formats, without tensorflow_hub.

hub 0.16 dropped ``hub.get_expected_image_size`` and TF2 has no replacement;
this reads what slimhub (and Google) put into the modules:

* TF1 Hub module: the ImageModuleInfo attachment of the inference variant,
  else the static height/width of the ``images`` input (what hub 0.15 did);
* TF2 SavedModel: the ``default_image_size`` attribute slimhub saves, else
  the static height/width of the traced inputs of ``__call__``.
"""

import os

import tensorflow as tf

from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub


def _static_hw(shape):
  dims = [d.size for d in shape.dim] if hasattr(shape, "dim") else list(shape)
  if len(dims) == 4 and dims[1] and dims[2] and dims[1] > 0 and dims[2] > 0:
    return [int(dims[1]), int(dims[2])]
  return None


def _from_tf1(directory, signature, input_name):
  meta_graph = tf1_hub.meta_graph_for(tf1_hub.read_saved_model(directory),
                                      set())
  size = hub_protos.image_size_of(meta_graph)
  if size:
    return list(size)
  signature_def = meta_graph.signature_def[signature or "default"]
  size = _static_hw(signature_def.inputs[input_name or "images"].tensor_shape)
  if size:
    return size
  raise ValueError(f"{directory} has neither ImageModuleInfo nor a static "
                   "input size")


def _from_tf2(obj):
  size = getattr(obj, "default_image_size", None)
  if size is not None:
    return [int(v) for v in size.numpy()]
  call = getattr(obj, "__call__", None)
  for function in getattr(call, "concrete_functions", ()):
    spec = function.structured_input_signature[0][0]
    size = _static_hw(spec.shape.as_list())
    if size:
      return size
  raise ValueError("The SavedModel has no default_image_size attribute and "
                   "no fixed input size")


def get_expected_image_size(module, signature=None, input_name=None):
  """[height, width] a module expects, from a path or a loaded TF2 object."""
  if isinstance(module, (str, os.PathLike)):
    path = os.fspath(module)
    if tf1_hub.is_tf1_module(path):
      return _from_tf1(path, signature, input_name)
    module = tf.saved_model.load(path)
  return _from_tf2(module)
