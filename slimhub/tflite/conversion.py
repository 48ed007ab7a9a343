"""TFLite models of image modules: float, uint8 (quantops) or int8.

    info = convert("out/mobilenet_v1_025_128/classification/3",
                   "mobilenet.int8.tflite", model_type="int8",
                   calibration=Calibration(directory="photos"))

Types (docs/tflite.md):

* ``float``: the module's inference graph in float32 (the default for float
  modules).
* ``uint8``: the all-integer uint8 model toco made of a quantops module
  (``tf.compat.v1.lite.TFLiteConverter``, ``inference_type=tf.uint8``, input
  statistics for images in [0, 1]: ``real = q / 255``); the default for
  quantops modules. Small, not fast (docs/tflite.md).
* ``int8``: all-integer signed int8, run by XNNPACK. From a
  float module by full-integer post-training quantization (weights per
  channel, activations calibrated on `calibration` images). From a
  quantops module with the checkpoint's trained activation ranges; its
  weights, fake-quantized over an asymmetric range, are requantized to the
  symmetric grid the int8 kernels require (zero point 0, the range
  [-m, m] with m the larger bound), which moves the outputs by what the
  deviation report says. Input and output are int8 (images: ``real = (q +
  128) / 255``) or, with ``io_type="float32"``, float with a (de)quantize op
  at each end.

A TF1 Hub module is read through its frozen inference graph (the ``set()``
variant's ``default`` signature); a TF2 SavedModel through
``__call__(images, training=False)``. `batch` is 1 (mobile), N, or
``"dynamic"`` (``shape_signature`` -1, resizable). Every conversion measures
its deviation from the module on the calibration and held-out images and
stores it, with what the model expects, in the model's metadata
(tflite_runtime.read_metadata). Only TF graphs are read, never Python from
the module; the model file is written atomically.
"""

import dataclasses
import json
import os

import numpy as np

from slimhub.formats import image_size
from slimhub.tflite import rewrites
from slimhub.tflite import runtime as tflite_runtime
from slimhub.formats import atomic
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub
from slimhub.tflite.calibration import Calibration  # pylint: disable=unused-import
from slimhub.tflite.calibration import CalibrationError
from slimhub.tflite.calibration import SYNTHETIC_WARNING
from slimhub.tflite.calibration import held_out_images

FLOAT, UINT8, INT8 = "float", "uint8", "int8"
TYPES = (FLOAT, UINT8, INT8)
FLOAT32 = "float32"
IO_TYPES = (INT8, FLOAT32)
DYNAMIC = "dynamic"
METADATA_SCHEMA = "slimhub-tflite-metadata/1"
LABELS_FILE = "ImageNetLabels.txt"
LABELS_URL = ("https://storage.googleapis.com/download.tensorflow.org/data/"
              "ImageNetLabels.txt")
# quantized_input_stats (mean, std) of images in [0, 1]: real = (q - 0) / 255.
IMAGE_INPUT_STATS = (0.0, 255.0)
_SIGNATURE = "default"
_IMAGES = "images"
_CHUNK = 8  # images per call when computing reference outputs


class TFLiteError(ValueError):
  """A module that cannot be converted; the message names the problem."""


class CalibrationRequired(TFLiteError):
  """int8 from a float module without calibration images."""


@dataclasses.dataclass(frozen=True)
class TFLiteInfo:
  """What convert wrote: where, how big, its types, and its metadata."""
  path: str
  bytes: int
  inference_type: str
  image_size: tuple
  output_dim: int
  io_type: str = FLOAT32
  batch: object = 1
  metadata: dict = dataclasses.field(default_factory=dict)

  @property
  def deviation(self):
    return self.metadata.get("deviation")

  @property
  def warnings(self):
    return self.metadata.get("warnings", [])


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _fail_if_missing(module_dir):
  if not os.path.isdir(module_dir):
    raise TFLiteError(f"Module directory {module_dir} does not exist")
  if not os.path.exists(os.path.join(module_dir, "saved_model.pb")):
    raise TFLiteError(f"{module_dir} is not a module (no saved_model.pb)")


def _read_saved_model(module_dir):
  try:
    return tf1_hub.read_saved_model(module_dir)
  except Exception:  # pylint: disable=broad-except
    # A DecodeError or OSError, depending on how the bytes are broken.
    raise TFLiteError(f"{os.path.join(module_dir, 'saved_model.pb')} is not "
                      "a SavedModel (it does not parse)") from None


def _inference_meta_graph(module_dir):
  saved_model = _read_saved_model(module_dir)
  try:
    return tf1_hub.meta_graph_for(saved_model, set())
  except KeyError:
    raise TFLiteError(f"{module_dir} has no inference graph (tag set "
                      "set())") from None


def _op_error_message(error):
  """The first line that says something of a TF error: its message often
  starts with headings ("Restoring from checkpoint failed. ... Original
  error:", "Graph execution error:") and the trace of the node, the cause
  below them."""
  lines = [line.strip() for line in
           getattr(error, "message", str(error)).splitlines()]
  lines = [line for line in lines if line and not line.endswith(":")
           and not line.startswith(("Detected at node", "File ", "Op:",
                                    "Node:", "[["))]
  return lines[0] if lines else type(error).__name__


def _batch_dim(batch):
  return None if batch == DYNAMIC else int(batch)


def frozen_inference_graph(module_dir, height, width, batch=1):
  """(GraphDef, input name, output name) of the module's default signature
  at `batch` (None: any) and [height, width], its variables turned into
  constants."""
  tf = _tf()
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
    images = tf.compat.v1.placeholder(tf.float32, [batch, height, width, 3],
                                      name="images")
    tf.compat.v1.train.import_meta_graph(
        meta_graph, import_scope="module", input_map={images_name: images},
        clear_devices=True)
    tf.identity(graph.get_tensor_by_name(f"module/{output_name}"),
                name="output")
    variables = graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    saver = tf.compat.v1.train.Saver(
        {v.op.name[len("module/"):]: v for v in variables})
    with tf.compat.v1.Session(graph=graph) as session:
      try:
        saver.restore(session, os.path.join(module_dir,
                                            tf1_hub.VARIABLES_PREFIX))
      except (tf.errors.OpError, ValueError) as error:
        raise TFLiteError(
            f"Cannot restore the variables of {module_dir}: "
            f"{_op_error_message(error)}") from None
      frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
          session, graph.as_graph_def(), ["output"])
  return frozen, images.op.name, "output"


def _graph_function(graph_def, input_name, output_name):
  """A concrete function computing `output_name` from `input_name` of a
  frozen GraphDef."""
  tf = _tf()
  wrapped = tf.compat.v1.wrap_function(
      lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
  return wrapped.prune(wrapped.graph.get_tensor_by_name(f"{input_name}:0"),
                       wrapped.graph.get_tensor_by_name(f"{output_name}:0"))


def _node_map(graph_def):
  return {node.name: node for node in graph_def.node}


def _constant_behind(nodes, ref):
  node = nodes[ref.split(":")[0]]
  while node.op != "Const":
    node = nodes[node.input[0].split(":")[0]]
  return node


def symmetric_weight_ranges(graph_def):
  """Rewrites, in place, every weights fake quantization of a frozen
  quantops graph to the symmetric range [-m, m] (m = max(|min|, |max|)),
  so that the int8 weights have zero point 0; the number rewritten."""
  tf = _tf()
  nodes = _node_map(graph_def)
  count = 0
  for node in graph_def.node:
    if node.op != "FakeQuantWithMinMaxVars" or "/weights_quant/" not in (
        node.name):
      continue
    low, high = (_constant_behind(nodes, ref) for ref in node.input[1:3])
    bound = max(abs(float(tf.make_ndarray(c.attr["value"].tensor)))
                for c in (low, high))
    for constant, value in ((low, -bound), (high, bound)):
      constant.attr["value"].tensor.CopyFrom(
          tf.make_tensor_proto(np.float32(value)))
    count += 1
  return count


def quantize_input_images(graph_def, input_name):
  """Inserts, in place, an 8-bit fake quantization of the images over [0, 1]
  right after the input: the grid a quantops module's own first fake
  quantization (of 2x over [0, 2]) lands on, so the module computes the
  same, and the converter can give the model an int8 input."""
  node = graph_def.node.add()
  node.name = f"{input_name}_quant"
  node.op = "FakeQuantWithMinMaxArgs"
  node.input.append(input_name)
  for key, value in (("min", 0.0), ("max", 1.0)):
    node.attr[key].f = value
  node.attr["num_bits"].i = 8
  node.attr["narrow_range"].b = False
  for other in graph_def.node:
    if other is not node:
      for index, ref in enumerate(other.input):
        if ref == input_name or ref == f"{input_name}:0":
          other.input[index] = node.name


@dataclasses.dataclass
class _Module:
  """A module to convert: a function of images for the converter and
  another computing the module's own outputs."""
  directory: str
  height: int
  width: int
  quantops: bool
  metadata: dict
  reference: object  # images -> outputs of the module, as numpy
  saved_object: object = None  # a TF2 module's loaded SavedModel

  def outputs(self, images):
    return np.concatenate([np.asarray(self.reference(images[i:i + _CHUNK]))
                           for i in range(0, len(images), _CHUNK)])


def _read_metadata(module_dir):
  from slimhub import export  # pylint: disable=g-import-not-at-top
  try:
    with open(os.path.join(module_dir, export.METADATA_FILE)) as f:
      data = json.load(f)
    return data if isinstance(data, dict) else {}
  except (OSError, ValueError):
    return {}


def _tf1_converter(module, model_type, batch, rewrite_names):
  tf = _tf()
  if model_type == UINT8:
    frozen, input_name, output_name = frozen_inference_graph(
        module.directory, module.height, module.width, _batch_dim(batch))
    graph = tf.Graph()
    with graph.as_default():
      tf.graph_util.import_graph_def(frozen, name="")
    converter = tf.compat.v1.lite.TFLiteConverter(
        frozen, [graph.get_tensor_by_name(f"{input_name}:0")],
        [graph.get_tensor_by_name(f"{output_name}:0")])
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {input_name: IMAGE_INPUT_STATS}
    return converter, {}, {}
  frozen, input_name, output_name = frozen_inference_graph(
      module.directory, module.height, module.width, _batch_dim(batch))
  notes = {}
  rewritten = rewrites.for_xnnpack(frozen, rewrite_names)
  if model_type == INT8 and module.quantops:
    notes = {"weights_requantized_symmetric":
                 symmetric_weight_ranges(frozen),
             "activation_ranges": "the checkpoint's trained ranges"}
    quantize_input_images(frozen, input_name)
  function = _graph_function(frozen, input_name, output_name)
  return (tf.lite.TFLiteConverter.from_concrete_functions([function]), notes,
          rewritten)


def _image_size(module_dir, module):
  try:
    return image_size.get_expected_image_size(module)
  except (ValueError, KeyError) as error:
    raise TFLiteError(f"Cannot tell the image size of {module_dir}: "
                      f"{error}") from None


def _load(module_dir):
  """The _Module at `module_dir`."""
  tf = _tf()
  metadata = _read_metadata(module_dir)
  if tf1_hub.is_tf1_module(module_dir):
    height, width = _image_size(module_dir, module_dir)
    quantops = tf1_hub.has_fake_quant(_inference_meta_graph(module_dir))
    frozen, input_name, output_name = frozen_inference_graph(
        module_dir, height, width, None)
    reference = _graph_function(frozen, input_name, output_name)
    return _Module(module_dir, height, width, quantops, metadata,
                   lambda images: reference(tf.constant(images)).numpy())
  try:
    obj = tf.saved_model.load(module_dir)
  except Exception as error:  # pylint: disable=broad-except
    # Truncated variables raise OpError, IndexError, ValueError, ...
    raise TFLiteError(f"Cannot restore the variables of {module_dir}: "
                      f"{_op_error_message(error)}") from None
  if not callable(obj):
    raise TFLiteError(f"{module_dir} is a SavedModel without __call__")
  height, width = _image_size(module_dir, obj)
  return _Module(module_dir, height, width, False, metadata,
                 lambda images: obj(tf.constant(images),
                                    training=False).numpy(), obj)


def _tf2_converter(module, batch, rewrite_names):
  """The converter of the module's __call__, frozen and rewritten for
  XNNPACK, and {rewrite: count}."""
  tf = _tf()
  from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-import-not-at-top
  obj = module.saved_object
  call = tf.function(lambda images: obj(images, training=False))
  frozen = convert_to_constants.convert_variables_to_constants_v2(
      call.get_concrete_function(tf.TensorSpec(
          [_batch_dim(batch), module.height, module.width, 3], tf.float32)))
  graph_def = frozen.graph.as_graph_def()
  rewritten = rewrites.for_xnnpack(graph_def, rewrite_names)
  function = _graph_function(graph_def, frozen.inputs[0].op.name,
                             frozen.outputs[0].op.name)
  converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
  return converter, rewritten


def _check_options(model_type, io_type, batch):
  if model_type not in TYPES:
    raise TFLiteError(f"Unknown model type {model_type!r}; choose one of "
                      f"{', '.join(TYPES)}")
  if io_type is not None and io_type not in IO_TYPES:
    raise TFLiteError(f"Unknown io_type {io_type!r}; choose one of "
                      f"{', '.join(IO_TYPES)}")
  if io_type is not None and model_type != INT8:
    raise TFLiteError(f"io_type is for int8 models; a {model_type} model's "
                      "input and output are "
                      + (UINT8 if model_type == UINT8 else FLOAT32))
  if batch != DYNAMIC and not (isinstance(batch, int) and batch >= 1):
    raise TFLiteError(f"batch must be a positive integer or {DYNAMIC!r}, "
                      f"not {batch!r}")
  if batch == DYNAMIC and model_type == UINT8:
    raise TFLiteError("uint8 models have a fixed batch (toco's converter); "
                      "a dynamic batch needs model type int8 or float")


def _convert(module, model_type, io_type, batch, calibration_images,
             rewrite_names):
  """(model bytes, quantops notes, {XNNPACK rewrite: count})."""
  tf = _tf()
  if tf1_hub.is_tf1_module(module.directory):
    converter, notes, rewritten = _tf1_converter(module, model_type, batch,
                                                 rewrite_names)
  else:
    notes = {}
    converter, rewritten = _tf2_converter(module, batch, rewrite_names)
  if model_type == INT8:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if not module.quantops:
      step = 1 if batch == DYNAMIC else batch

      def representative_images():
        # Batches of the model's own size (a fixed batch cannot be resized).
        for start in range(0, len(calibration_images), step):
          chunk = calibration_images[start:start + step]
          yield [np.resize(chunk, (step,) + chunk.shape[1:])]
      converter.representative_dataset = representative_images
      converter.target_spec.supported_ops = [
          tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_dtype = tf.int8 if io_type == INT8 else tf.float32
    converter.inference_input_type = io_dtype
    converter.inference_output_type = io_dtype
  return converter.convert(), notes, rewritten


# How much more an int8 model with the hard swish rewrite may deviate from
# the module, relative to the model with HARD_SWISH, on the calibration
# images (relative L2): 10%, for about twice the speed (docs/tflite.md).
HARD_SWISH_TOLERANCE = 1.10


def _convert_for_xnnpack(module, model_type, io_type, batch,
                         calibration_images, calibration_expected):
  """(model, quantops notes, {rewrite: count}, {declined rewrite: why}).

  For int8, the hard swish rewrite moves the gate relu6(x + 3) into an ADD
  of its own, whose output range the quantizer takes from the calibration
  statistics. Where those are wide (the untrained mobilenet_v3_large), that
  costs accuracy that the fused HARD_SWISH kernel keeps. So the rewritten
  model is kept only if it deviates from the module on the calibration
  images (where the module gives `calibration_expected`) by at most
  HARD_SWISH_TOLERANCE times the model with HARD_SWISH.
  """
  names = rewrites.FOR_INT8 if model_type == INT8 else rewrites.FOR_FLOAT
  model, notes, rewritten = _convert(module, model_type, io_type, batch,
                                     calibration_images, names)
  if rewrites.HARD_SWISH not in rewritten or calibration_images is None:
    return model, notes, rewritten, {}
  fused, _, fused_rewritten = _convert(
      module, model_type, io_type, batch, calibration_images,
      tuple(name for name in names if name != rewrites.HARD_SWISH))
  error, fused_error = (
      deviation(_outputs(candidate, calibration_images, batch),
                calibration_expected)["relative_l2"]
      for candidate in (model, fused))
  if error <= HARD_SWISH_TOLERANCE * fused_error:
    return model, notes, rewritten, {}
  return fused, notes, fused_rewritten, {
      rewrites.HARD_SWISH: (
          f"relative L2 on the calibration images {error:.4f} against "
          f"{fused_error:.4f} with HARD_SWISH")}


def _outputs(model, images, batch):
  """The TFLite model's outputs on `images`, in calls of its batch."""
  interpreter = tflite_runtime.interpreter(model)
  if batch == 1:
    return tflite_runtime.run_each(interpreter, images)
  step = _CHUNK if batch == DYNAMIC else batch
  results = []
  for start in range(0, len(images), step):
    chunk = images[start:start + step]
    padded = np.concatenate(
        [chunk, np.zeros((step - len(chunk),) + chunk.shape[1:],
                         chunk.dtype)]) if batch != DYNAMIC else chunk
    results.append(tflite_runtime.run(interpreter, padded)[:len(chunk)])
  return np.concatenate(results)


def deviation(actual, expected):
  """How far outputs `actual` are from `expected` ([n, k] each): relative
  L2, top-1 agreement (the same argmax) and the largest absolute error."""
  actual = np.asarray(actual, np.float64).reshape(len(actual), -1)
  expected = np.asarray(expected, np.float64).reshape(len(expected), -1)
  norm = np.linalg.norm(expected)
  return {"images": len(actual),
          "relative_l2": float(np.linalg.norm(actual - expected)
                               / (norm if norm else 1.0)),
          "top1_agreement": float(np.mean(actual.argmax(-1)
                                          == expected.argmax(-1))),
          "max_abs_error": float(np.max(np.abs(actual - expected)))}


def _metadata(module, model_type, io_type, batch, calibration, held_out,
              notes, rewritten, declined, labels_path):
  """The model's metadata, without its deviation."""
  from slimhub import catalog  # pylint: disable=g-import-not-at-top
  import slimhub  # pylint: disable=g-import-not-at-top
  tf = _tf()
  source = module.metadata
  kind = source.get("kind")
  data = {
      "schema": METADATA_SCHEMA,
      "module": {key: source.get(key) for key in
                 ("handle", "version", "net", "kind", "format")},
      "type": model_type,
      "io_type": io_type,
      "batch": batch,
      "input": {"name": _IMAGES, "image_size": [module.height, module.width],
                "channels": "RGB", "range": [0.0, 1.0],
                "normalization": {"mean": [0.0], "std": [1.0]},
                "note": "images in [0, 1]; the model scales them itself"},
      "output": {"kind": kind},
      "slimhub_version": slimhub.__version__,
      "tensorflow_version": tf.__version__,
      "runtime_checked": tflite_runtime.RUNTIME,
      "warnings": [],
  }
  if kind == catalog.CLASSIFICATION:
    data["output"].update(
        num_classes=source.get("num_classes"),
        labels_file=(tflite_runtime.LABELS_NAME if labels_path
                     else LABELS_FILE),
        labels_embedded=bool(labels_path), labels_url=LABELS_URL,
        label_offset=source.get("label_offset"),
        label_note=source.get("label_note"))
  if calibration is not None:
    data["calibration"] = {"source": calibration.describe(),
                           "count": calibration.count}
    if calibration.synthetic:
      data["warnings"].append(SYNTHETIC_WARNING)
  data["held_out_source"] = held_out
  if notes:
    data["quantops"] = notes
  if rewritten:
    data["xnnpack_rewrites"] = rewritten
  if declined:
    data["xnnpack_rewrites_declined"] = declined
  return data


def _labels(labels_path):
  try:
    with open(labels_path, "rb") as f:
      return f.read()
  except OSError as error:
    raise TFLiteError(f"Cannot read the labels file {labels_path}: "
                      f"{error.strerror or error}") from None


def _io_details(model):
  interpreter = tflite_runtime.interpreter(model)
  inputs = interpreter.get_input_details()[0]
  output = interpreter.get_output_details()[0]
  quantization = lambda d: (None if d["dtype"] == np.float32 else
                            {"scale": float(d["quantization"][0]),
                             "zero_point": int(d["quantization"][1])})
  return ({"dtype": np.dtype(inputs["dtype"]).name,
           "shape_signature": [int(d) for d in inputs["shape_signature"]],
           "quantization": quantization(inputs)},
          {"dtype": np.dtype(output["dtype"]).name,
           "shape_signature": [int(d) for d in output["shape_signature"]],
           "quantization": quantization(output)})


def convert(module_dir, output_path, model_type=None, io_type=None, batch=1,
            calibration=None, labels_path=None):
  """Writes the TFLite model of the module at `module_dir`; a TFLiteInfo.

  model_type: float, uint8 or int8 (default: uint8 for quantops modules,
    float otherwise). io_type: int8 models only, int8 (default) or float32.
  batch: 1, N, or "dynamic". calibration: a tflite_calibration.Calibration,
    required for int8 from a float module. labels_path: a labels file to
    embed in a classification model's metadata.

  Raises TFLiteError (not a module, unreadable variables, bad calibration
  images, a converter failure); nothing is written then.
  """
  module_dir = os.fspath(module_dir)
  output_path = os.path.abspath(output_path)
  _fail_if_missing(module_dir)
  _read_saved_model(module_dir)
  if os.path.isdir(output_path):
    raise TFLiteError(f"Output {output_path} is a directory")
  if model_type is not None or io_type is not None:
    _check_options(model_type or FLOAT, io_type, batch)
  try:
    if calibration is not None:
      calibration.files()
  except CalibrationError as error:
    raise TFLiteError(str(error)) from None
  module = _load(module_dir)
  height, width = module.height, module.width
  if model_type is None:
    model_type = UINT8 if module.quantops else FLOAT
  if model_type == INT8 and io_type is None:
    io_type = INT8
  _check_options(model_type, io_type, batch)
  if model_type == UINT8 and not module.quantops:
    raise TFLiteError(f"{module_dir} is a float module: uint8 models come "
                      "from quantops modules; use model type int8")
  if model_type == INT8 and not module.quantops and calibration is None:
    raise CalibrationRequired(
        f"int8 from the float module {module_dir} needs calibration images "
        "(a directory of them, or synthetic ones)")
  try:
    if calibration is not None:
      calibration_images, held_out, held_out_source = calibration.images(
          height, width)
    else:
      calibration_images = None
      held_out, held_out_source = held_out_images(height, width), "synthetic"
  except CalibrationError as error:
    raise TFLiteError(str(error)) from None
  labels = _labels(labels_path) if labels_path else None
  calibration_expected = (None if calibration_images is None
                          else module.outputs(calibration_images))
  try:
    model, notes, rewritten, declined = _convert_for_xnnpack(
        module, model_type, io_type, batch, calibration_images,
        calibration_expected)
  except TFLiteError:
    raise
  except Exception as error:  # pylint: disable=broad-except
    # The converter raises ConverterError, ValueError or TF op errors.
    raise TFLiteError(f"Converting {module_dir} failed: "
                      f"{_op_error_message(error)}") from None
  metadata = _metadata(module, model_type, io_type or
                       (UINT8 if model_type == UINT8 else FLOAT32), batch,
                       calibration, held_out_source, notes, rewritten,
                       declined, labels_path)
  metadata["deviation"] = {"held_out": deviation(
      _outputs(model, held_out, batch), module.outputs(held_out))}
  if calibration_images is not None:
    metadata["deviation"]["calibration"] = deviation(
        _outputs(model, calibration_images, batch),
        calibration_expected)
  metadata["input"]["tensor"], metadata["output"]["tensor"] = _io_details(
      model)
  entries = {tflite_runtime.METADATA_NAME:
                 json.dumps(metadata, sort_keys=True).encode("utf-8")}
  if labels is not None:
    entries[tflite_runtime.LABELS_NAME] = labels
  model = tflite_runtime.with_metadata(model, entries)
  atomic.write_file(output_path, model)
  return TFLiteInfo(path=output_path, bytes=len(model),
                    inference_type=INT8 if model_type == INT8 else
                    (UINT8 if model_type == UINT8 else FLOAT32),
                    image_size=(height, width),
                    output_dim=int(metadata["output"]["tensor"]
                                   ["shape_signature"][-1]),
                    io_type=metadata["io_type"], batch=batch,
                    metadata=metadata)
