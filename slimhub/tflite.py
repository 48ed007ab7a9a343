"""TFLite models of image modules: all-integer for quantops, float otherwise.

    info = convert("out/mobilenet_v1_025_128/quantops/classification/3",
                   "mobilenet.tflite")

A TF1 Hub module is converted through its frozen inference graph (the
``set()`` variant's ``default`` signature, batch 1, the expected image
size): if that graph holds ``FakeQuantWithMinMaxVars`` ops (a quantops
module) the model is all-integer uint8 as toco produced it
(``tf.compat.v1.lite.TFLiteConverter``, ``inference_type=tf.uint8``, input
statistics for images in [0, 1]: ``real = q / 255``); otherwise it is float.
A TF2 SavedModel is converted as float from ``__call__(images,
training=False)``. Only TF graphs are read, never Python from the module;
the model file is written atomically.
"""

import dataclasses
import os

import tensorflow as tf

from slimhub import image_size
from slimhub.formats import atomic
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub

UINT8 = "uint8"
FLOAT32 = "float32"
# quantized_input_stats (mean, std) of images in [0, 1]: real = (q - 0) / 255.
IMAGE_INPUT_STATS = (0.0, 255.0)
_SIGNATURE = "default"
_IMAGES = "images"


class TFLiteError(ValueError):
  """A module that cannot be converted; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class TFLiteInfo:
  """What convert wrote: where, how big, and its input/output types."""
  path: str
  bytes: int
  inference_type: str
  image_size: tuple
  output_dim: int


def _fail_if_missing(module_dir):
  if not os.path.isdir(module_dir):
    raise TFLiteError(f"Module directory {module_dir} does not exist")
  if not os.path.exists(os.path.join(module_dir, "saved_model.pb")):
    raise TFLiteError(f"{module_dir} is not a module (no saved_model.pb)")


def _inference_meta_graph(module_dir):
  try:
    return tf1_hub.meta_graph_for(tf1_hub.read_saved_model(module_dir), set())
  except KeyError:
    raise TFLiteError(f"{module_dir} has no inference graph (tag set "
                      "set())") from None


def frozen_inference_graph(module_dir, height, width):
  """(GraphDef, input name, output name) of the module's default signature
  at batch 1 and [height, width], its variables turned into constants."""
  meta_graph = _inference_meta_graph(module_dir)
  signature = meta_graph.signature_def.get(_SIGNATURE)
  if signature is None or _IMAGES not in signature.inputs:
    raise TFLiteError(f"{module_dir} has no '{_SIGNATURE}' signature with "
                      f"an '{_IMAGES}' input")
  images_name = signature.inputs[_IMAGES].name
  # Attachments are serialized protos that import_meta_graph cannot read.
  meta_graph.collection_def.pop(hub_protos.ATTACHMENTS_COLLECTION, None)
  output_name = signature.outputs[_SIGNATURE].name
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, [1, height, width, 3],
                                      name="images")
    tf.compat.v1.train.import_meta_graph(
        meta_graph, import_scope="module", input_map={images_name: images},
        clear_devices=True)
    output = tf.identity(graph.get_tensor_by_name(f"module/{output_name}"),
                         name="output")
    variables = graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    saver = tf.compat.v1.train.Saver(
        {v.op.name[len("module/"):]: v for v in variables})
    with tf.compat.v1.Session(graph=graph) as session:
      try:
        saver.restore(session, os.path.join(module_dir,
                                            tf1_hub.VARIABLES_PREFIX))
      except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise TFLiteError(
            f"Cannot restore the variables of {module_dir}: {message}"
        ) from None
      frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
          session, graph.as_graph_def(), ["output"])
  return frozen, images.op.name, "output"


def _tf1_model(module_dir, height, width):
  """(model bytes, inference type) of a TF1 Hub module."""
  quantized = tf1_hub.has_fake_quant(_inference_meta_graph(module_dir))
  frozen, input_name, output_name = frozen_inference_graph(
      module_dir, height, width)
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(frozen, name="")
  converter = tf.compat.v1.lite.TFLiteConverter(
      frozen, [graph.get_tensor_by_name(f"{input_name}:0")],
      [graph.get_tensor_by_name(f"{output_name}:0")])
  if quantized:
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {input_name: IMAGE_INPUT_STATS}
  return converter.convert(), UINT8 if quantized else FLOAT32


def _tf2_model(module_dir, height, width):
  """Model bytes of a TF2 SavedModel's __call__(images, training=False)."""
  obj = tf.saved_model.load(module_dir)
  if not callable(obj):
    raise TFLiteError(f"{module_dir} is a SavedModel without __call__")
  call = tf.function(lambda images: obj(images, training=False))
  function = call.get_concrete_function(
      tf.TensorSpec([1, height, width, 3], tf.float32))
  converter = tf.lite.TFLiteConverter.from_concrete_functions([function],
                                                              obj)
  return converter.convert()


def convert(module_dir, output_path):
  """Writes the TFLite model of the module at `module_dir`; a TFLiteInfo.

  Raises TFLiteError (not a module, unreadable variables, a converter
  failure); nothing is written then.
  """
  module_dir = os.fspath(module_dir)
  output_path = os.path.abspath(output_path)
  _fail_if_missing(module_dir)
  if os.path.isdir(output_path):
    raise TFLiteError(f"Output {output_path} is a directory")
  try:
    height, width = image_size.get_expected_image_size(module_dir)
  except (ValueError, KeyError) as error:
    raise TFLiteError(f"Cannot tell the image size of {module_dir}: "
                      f"{error}") from None
  try:
    if tf1_hub.is_tf1_module(module_dir):
      model, inference_type = _tf1_model(module_dir, height, width)
    else:
      model, inference_type = _tf2_model(module_dir, height, width), FLOAT32
  except TFLiteError:
    raise
  except Exception as error:  # pylint: disable=broad-except
    # The converter raises ConverterError, ValueError or TF op errors.
    message = str(error).strip().splitlines()
    raise TFLiteError(f"Converting {module_dir} failed: "
                      f"{message[0] if message else type(error).__name__}"
                      ) from None
  atomic.write_file(output_path, model)
  interpreter = tf.lite.Interpreter(model_content=model)
  return TFLiteInfo(path=output_path, bytes=len(model),
                    inference_type=inference_type,
                    image_size=(height, width),
                    output_dim=int(interpreter.get_output_details()[0]
                                   ["shape"][-1]))
