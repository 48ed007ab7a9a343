"""Writer of TF2 reusable SavedModels (tfhub.dev "format: saved_model_2").

The object it saves (tf2-reusable-savedmodel.md §4):

  obj.__call__(inputs, training=False, return_endpoints=False,
               batch_norm_momentum=0.99)
      traced for the four (training, return_endpoints) combinations, each
      with TensorSpecs for inputs and batch_norm_momentum;
  obj.variables, obj.trainable_variables, obj.regularization_losses;
  obj.default_image_size   int32 [height, width] (a slimhub extension);
  signatures["serving_default"] (v5 only): inputs -> {"default": ...}.

The graph comes from a TF1-style body built twice with
``tf.compat.v1.wrap_function``: once in training mode, which creates the
variables, and once in inference mode, whose custom getter hands back the
same variables. Both traces share one set of variables.
"""

import tensorflow as tf

from slimhub import compat

DEFAULT_MOMENTUM = 0.99
INPUTS = "inputs"
MOMENTUM = "batch_norm_momentum"


class _SharedVariables:
  """A custom getter that creates each variable once and then reuses it.

  Variables start at zero: their values come from the checkpoint, and
  running the nets' random initializers eagerly would cost seconds for the
  large nets.
  """

  def __init__(self):
    self.by_name = {}

  def getter(self, getter, name, *args, **kwargs):
    if name not in self.by_name:
      kwargs["initializer"] = tf.compat.v1.zeros_initializer()
      self.by_name[name] = getter(name, *args, **kwargs)
    return self.by_name[name]


class _Traces:
  """The wrapped train and inference graphs of one body."""

  def __init__(self, body, input_shape):
    self.shared = _SharedVariables()
    self.input_spec = tf.TensorSpec(input_shape, tf.float32, name=INPUTS)
    self.momentum_spec = tf.TensorSpec([], tf.float32, name=MOMENTUM)
    self.train = self._wrap(body, is_training=True)
    self.infer = self._wrap(body, is_training=False)
    graph = self.train.graph
    self.trainable_names = {
        v.name for v in graph.get_collection(
            tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)}
    with graph.as_default():
      # get_variable(regularizer=...) collects lazily evaluated tensors.
      losses = [tf.convert_to_tensor(loss) for loss in graph.get_collection(
          tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)]
    self.regularization = (self.train.prune(feeds=[], fetches=losses)
                           if losses else None)

  def _wrap(self, body, is_training):
    def traced(images, momentum):
      with tf.compat.v1.variable_scope("", use_resource=True,
                                       custom_getter=self.shared.getter):
        outputs = body(images, momentum, is_training)
      if is_training:
        # wrap_function adds no automatic control dependencies. One group op
        # keeps the graph small: each output depends on it, not on every
        # update op.
        updates = tf.group(*tf.compat.v1.get_collection(
            tf.compat.v1.GraphKeys.UPDATE_OPS), name="update_ops")
        with tf.control_dependencies([updates]):
          outputs = {key: tf.identity(value) for key, value in outputs.items()}
      return outputs
    return tf.compat.v1.wrap_function(
        traced, [self.input_spec, self.momentum_spec])

  @property
  def variables(self):
    return list(self.shared.by_name.values())


class ReusableModule(tf.train.Checkpoint):
  """The saved root object; attributes are assigned by `build`."""


def build(body, input_shape, image_size, assign_values):
  """Builds the reusable object.

  body(images, momentum, is_training) -> {"default": tensor, end points...}
  assign_values(variables) loads the weights into the created variables.
  """
  with compat.graph_building():
    traces = _Traces(body, input_shape)
  variables = traces.variables
  assign_values(variables)
  module = ReusableModule()
  module.variables = variables
  module.trainable_variables = [v for v in variables
                                if v.name in traces.trainable_names]
  module.regularization_losses = []
  if traces.regularization is not None:
    module.regularization_losses.append(tf.function(
        lambda: tf.add_n(traces.regularization()), input_signature=[],
        autograph=False))
  module.default_image_size = tf.Variable(
      [image_size, image_size], dtype=tf.int32, trainable=False,
      name="default_image_size")

  # No Python control flow depends on tensors here: AutoGraph would only
  # spend time converting the source of each function.
  @tf.function(autograph=False)
  def call(inputs, training=False, return_endpoints=False,
           batch_norm_momentum=DEFAULT_MOMENTUM):
    trace = traces.train if training else traces.infer
    outputs = trace(inputs, batch_norm_momentum)
    return outputs if return_endpoints else outputs["default"]

  for training in (False, True):
    for return_endpoints in (False, True):
      call.get_concrete_function(traces.input_spec, training,
                                 return_endpoints, traces.momentum_spec)
  module.__call__ = call
  return module, traces.input_spec


def serving_signature(module, input_spec):
  """The v5 serving_default: inference on `inputs`, output key "default"."""
  @tf.function(input_signature=[input_spec], autograph=False)
  def serve(inputs):
    # A tensor momentum reuses the traced inference function; the Python
    # default would trace a fifth, fixed-momentum __call__ (§4 forbids it).
    momentum = tf.constant(DEFAULT_MOMENTUM, tf.float32)
    return {"default": module.__call__(inputs, training=False,
                                       batch_norm_momentum=momentum)}
  return serve


def save(module, directory, serving=None):
  """Saves `module` (with `serving` as serving_default, if given)."""
  signatures = {"serving_default": serving} if serving is not None else {}
  tf.saved_model.save(module, directory, signatures=signatures)
