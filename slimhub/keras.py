"""KerasLayer: image modules as a Keras 3 layer (TensorFlow backend).

hub.KerasLayer is a tf-keras layer, which Keras 3 models refuse, and
keras.layers.TFSMLayer never passes ``training``, returns dicts and drops
the weight decay. This layer:

* TF2 modules (v4/v5, reusable SavedModels): calls ``__call__`` with
  Keras's ``training`` (only when the layer is trainable, as hub.KerasLayer
  does), ``return_endpoints`` and ``arguments`` such as
  ``batch_norm_momentum``; tracks the module's variables as the layer's
  weights (trainable as the module declares, if the layer is trainable) and
  adds its ``regularization_losses`` to ``layer.losses`` when trainable.
* TF1 Hub modules (v1-v3): inference through ``signature=`` and
  ``output_key=`` of their ``set()`` graph. Fine-tuning them is refused:
  hub.load exposes no UPDATE_OPS for their {"train"} graph; use the
  module's TF2 version, or slimhub.hub_module in graph mode.

The layer is registered as ``slimhub>KerasLayer``, so a model saved to
``.keras`` reloads (safe_mode included) with its weights; the config keeps
the handle, which must still resolve when the model is loaded. A module
is a program: like slimhub.hub_module, the layer refuses modules whose
graphs reach ops outside the image-module allowlist; see the trust model
there.
"""

import keras
import tensorflow as tf

from slimhub import hub_module
from slimhub.formats import tf1_hub

_MOMENTUM = "batch_norm_momentum"


@keras.saving.register_keras_serializable(package="slimhub")
class KerasLayer(keras.layers.Layer):
  """A module as a Keras 3 layer.

  Args:
    handle: a module directory or a handle tensorflow_hub.resolve resolves.
    trainable: whether the module's trainable weights train and the module
      runs in training mode under fit.
    arguments: extra keyword arguments of a TF2 module's __call__, e.g.
      dict(batch_norm_momentum=0.997).
    return_endpoints: TF2 modules: return the dict of end points.
    signature, output_key: TF1 modules: the signature (default "default")
      and its output (default "default"; None returns the dict).
  """

  def __init__(self, handle, trainable=False, arguments=None,
               return_endpoints=False, signature=None, output_key="default",
               **kwargs):
    super().__init__(trainable=trainable, **kwargs)
    self.handle = handle
    self.arguments = dict(arguments or {})
    self.return_endpoints = bool(return_endpoints)
    self.signature = signature
    self.output_key = output_key
    directory = hub_module.resolve(handle)
    self._tf1 = tf1_hub.is_tf1_module(directory)
    if self._tf1:
      self._function = self._load_tf1(directory)
      trainable_ids = set()
    else:
      self._function = self._load_tf2(directory)
      trainable_ids = {id(v) for v in self._module.trainable_variables}
    for variable in self._module.variables:
      self._track_variable(keras.Variable(
          initializer=variable, trainable=id(variable) in trainable_ids,
          dtype=variable.dtype, shape=variable.shape,
          name=variable.name.split(":")[0].replace("/", "_")))
    self.built = True

  def _load_tf1(self, directory):
    if self.trainable:
      raise ValueError(
          f"KerasLayer(trainable=True): {self.handle} is a TF1 Hub module, "
          "which cannot be fine-tuned in Keras. Use its TF2 version (v4 or "
          "v5 of the same model), or slimhub.hub_module.Module in graph "
          "mode")
    if self.arguments or self.return_endpoints:
      raise ValueError("KerasLayer: arguments= and return_endpoints= are for "
                       "TF2 modules; for a TF1 Hub module choose signature= "
                       "and output_key=")
    spec = hub_module.load_module_spec(directory)
    signature = self.signature or "default"
    outputs = spec.get_output_info_dict(signature)
    if len(spec.get_input_info_dict(signature)) != 1:
      raise ValueError(f"KerasLayer: signature {signature!r} of "
                       f"{self.handle} takes several inputs; choose a "
                       "one-input signature")
    if self.output_key is not None and self.output_key not in outputs:
      raise ValueError(f"KerasLayer: signature {signature!r} has no output "
                       f"{self.output_key!r}; it has {sorted(outputs)}")
    self._module = tf.saved_model.load(directory, tags=[])
    return self._module.signatures[signature]

  def _load_tf2(self, directory):
    if self.signature is not None or self.output_key != "default":
      raise ValueError("KerasLayer: signature= and output_key= are for TF1 "
                       "Hub modules; a TF2 module is called through "
                       "__call__ (use return_endpoints=)")
    hub_module.refuse_untrusted(
        directory, tf1_hub.read_saved_model(directory), self.handle)
    self._module = tf.saved_model.load(directory)
    if not callable(getattr(self._module, "__call__", None)):
      raise ValueError(f"KerasLayer: {self.handle} has no __call__; it is "
                       "not a reusable SavedModel")
    unknown = set(self.arguments) - {_MOMENTUM}
    if unknown:
      raise ValueError(f"KerasLayer: unknown arguments {sorted(unknown)}; "
                       f"an image module takes {_MOMENTUM!r}")
    return self._module.__call__

  def call(self, inputs, training=None):
    if self._tf1:
      (name,) = self._function.structured_input_signature[1]
      outputs = self._function(**{name: inputs})
      return outputs if self.output_key is None else outputs[self.output_key]
    kwargs = {"training": bool(training) and self.trainable,
              "return_endpoints": self.return_endpoints}
    if _MOMENTUM in self.arguments:
      kwargs[_MOMENTUM] = tf.constant(self.arguments[_MOMENTUM], tf.float32)
    outputs = self._function(inputs, **kwargs)
    if self.trainable:
      for loss in getattr(self._module, "regularization_losses", []):
        self.add_loss(loss())
    return outputs

  def get_config(self):
    return {**super().get_config(), "handle": self.handle,
            "arguments": self.arguments,
            "return_endpoints": self.return_endpoints,
            "signature": self.signature, "output_key": self.output_key}
