"""Running and reading TFLite models: LiteRT first, tf.lite as the fallback.

    interpreter = tflite_runtime.interpreter("model.int8.tflite")
    logits = tflite_runtime.run(interpreter, images)   # float, any batch
    print(tflite_runtime.read_metadata("model.int8.tflite"))

LiteRT (``ai-edge-litert``) is the maintained runtime; ``tf.lite.Interpreter``
is deprecated in its favour and only used where LiteRT is not installed.
The flatbuffer tools (model structure, metadata) are LiteRT's
``ai_edge_litert.tools.flatbuffer_utils`` over the schema it ships, else
TensorFlow's copy of the same module.
"""

import json

import numpy as np

METADATA_NAME = "slimhub_metadata"
LABELS_NAME = "labels.txt"

try:
  from ai_edge_litert import interpreter as _litert
  from ai_edge_litert import schema_py_generated as _schema
  from ai_edge_litert.tools import flatbuffer_utils as _flatbuffers
  RUNTIME = "ai_edge_litert"
  _INTERPRETER = _litert.Interpreter
except ImportError:  # LiteRT not installable here: TensorFlow's own copy.
  import tensorflow as _tf  # pylint: disable=g-import-not-at-top
  from tensorflow.lite.python import schema_py_generated as _schema  # pylint: disable=g-import-not-at-top
  from tensorflow.lite.tools import flatbuffer_utils as _flatbuffers  # pylint: disable=g-import-not-at-top
  RUNTIME = "tf.lite"
  _INTERPRETER = _tf.lite.Interpreter

_OP_NAMES = {code: name for name, code in vars(_schema.BuiltinOperator).items()
             if not name.startswith("_")}
_TYPE_NAMES = {code: name.lower()
               for name, code in vars(_schema.TensorType).items()
               if not name.startswith("_")}


def interpreter(model, num_threads=None, **options):
  """An interpreter of `model` (a path or the model's bytes); `options` go
  to the Interpreter (e.g. experimental_preserve_all_tensors=True)."""
  if isinstance(model, (bytes, bytearray)):
    return _INTERPRETER(model_content=bytes(model), num_threads=num_threads,
                        **options)
  return _INTERPRETER(model_path=str(model), num_threads=num_threads,
                      **options)


def quantize_input(details, images):
  """`images` (float, in [0, 1]) as the model's input type wants them."""
  if details["dtype"] == np.float32:
    return np.asarray(images, np.float32)
  scale, zero_point = details["quantization"]
  info = np.iinfo(details["dtype"])
  return np.clip(np.round(images / scale + zero_point), info.min,
                 info.max).astype(details["dtype"])


def dequantize_output(details, values):
  if details["dtype"] == np.float32:
    return values
  scale, zero_point = details["quantization"]
  return (values.astype(np.float32) - zero_point) * scale


def run(model_interpreter, images):
  """The model's float output on `images` [n, h, w, 3] in [0, 1], in one
  call of batch n (the input is resized when its batch differs)."""
  inputs = model_interpreter.get_input_details()[0]
  if list(inputs["shape"]) != list(images.shape):
    model_interpreter.resize_tensor_input(inputs["index"], list(images.shape))
  model_interpreter.allocate_tensors()
  inputs = model_interpreter.get_input_details()[0]
  model_interpreter.set_tensor(inputs["index"],
                               quantize_input(inputs, images))
  model_interpreter.invoke()
  output = model_interpreter.get_output_details()[0]
  return dequantize_output(output,
                           model_interpreter.get_tensor(output["index"]))


def run_each(model_interpreter, images):
  """run() on one image at a time, the results stacked."""
  return np.concatenate([run(model_interpreter, image[None])
                         for image in images])


def _model(model):
  if not isinstance(model, (bytes, bytearray)):
    with open(model, "rb") as f:
      model = f.read()
  return _flatbuffers.read_model_from_bytearray(bytearray(model))


def operators(model):
  """[(op name, [input tensor types], [output tensor types])] of the main
  subgraph of `model` (path or bytes), in execution order; types are names
  like 'int8', 'float32'. Read from the flatbuffer, before any delegate."""
  model = _model(model)
  graph = model.subgraphs[0]
  type_of = lambda index: _TYPE_NAMES[graph.tensors[index].type]
  result = []
  for op in graph.operators:
    code = model.operatorCodes[op.opcodeIndex]
    name = _OP_NAMES.get(
        max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
    result.append((name, [type_of(i) for i in op.inputs if i >= 0],
                   [type_of(i) for i in op.outputs]))
  return result


def delegation(model, num_threads=None):
  """How the runtime's default delegate (XNNPACK on CPU) takes the model
  (path or bytes): {"ops": number of ops, "partitions": number of delegate
  nodes, "undelegated": [(index, op name)] of the ops left to the builtin
  kernels}. An op is delegated when it lies between a delegate node's
  inputs and outputs."""
  count = len(_model(model).subgraphs[0].operators)
  model_interpreter = interpreter(model, num_threads)
  model_interpreter.allocate_tensors()
  nodes = model_interpreter._get_ops_details()  # pylint: disable=protected-access
  producer = {int(t): i for i, node in enumerate(nodes[:count])
              for t in node["outputs"]}
  delegated = set()
  delegates = [node for node in nodes[count:] if node["op_name"] == "DELEGATE"]
  for node in delegates:
    boundary = {int(t) for t in node["inputs"]}
    pending = [int(t) for t in node["outputs"]]
    while pending:
      index = producer.get(pending.pop())
      if index is None or index in delegated:
        continue
      delegated.add(index)
      pending.extend(int(t) for t in nodes[index]["inputs"]
                     if t >= 0 and int(t) not in boundary)
  return {"ops": count, "partitions": len(delegates),
          "undelegated": [(i, nodes[i]["op_name"]) for i in range(count)
                          if i not in delegated]}


def single_op_model(model, index):
  """The model (bytes) of the main subgraph's op `index` alone: its
  non-constant inputs are the inputs, its outputs the outputs, the batch
  fixed at the model's. For timing one op as the runtime runs it."""
  parsed = _model(model)
  parsed.metadata = None
  parsed.signatureDefs = None
  graph = parsed.subgraphs[0]
  op = graph.operators[index]
  constant = lambda t: (graph.tensors[t].buffer > 0 and parsed.buffers[
      graph.tensors[t].buffer].data is not None and len(
          parsed.buffers[graph.tensors[t].buffer].data))
  graph.operators = [op]
  graph.inputs = np.array([t for t in op.inputs if t >= 0 and not constant(t)],
                          np.int32)
  graph.outputs = np.array(list(op.outputs), np.int32)
  for tensor in graph.inputs:
    graph.tensors[tensor].shapeSignature = None
  return bytes(_flatbuffers.convert_object_to_bytearray(parsed))


def with_metadata(model, entries):
  """`model` bytes with {name: bytes} added as flatbuffer metadata entries
  (Model.metadata, each pointing at a buffer of its own)."""
  parsed = _model(model)
  parsed.metadata = list(parsed.metadata or [])
  for name, data in entries.items():
    buffer = _schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    parsed.buffers.append(buffer)
    entry = _schema.MetadataT()
    entry.name = name
    entry.buffer = len(parsed.buffers) - 1
    parsed.metadata.append(entry)
  return bytes(_flatbuffers.convert_object_to_bytearray(parsed))


def metadata_entries(model):
  """{name: bytes} of the model's flatbuffer metadata entries."""
  parsed = _model(model)
  return {(entry.name.decode() if isinstance(entry.name, bytes)
           else entry.name):
          bytes(np.asarray(parsed.buffers[entry.buffer].data, np.uint8))
          for entry in parsed.metadata or ()}


def read_metadata(model):
  """The slimhub metadata of a model (path or bytes), or None."""
  data = metadata_entries(model).get(METADATA_NAME)
  return json.loads(data.decode("utf-8")) if data is not None else None
