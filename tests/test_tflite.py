"""int8 TFLite models, run on LiteRT: their ops, their agreement with the
module, their batch, their metadata, and slimhub-tflite's refusals.

The bounds are measured on the deterministic (untrained) checkpoints with
synthetic calibration and documented in docs/tflite.md; a real checkpoint
calibrated on photos is what deployments should measure again.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import conftest
import reference_data
from slimhub import catalog
from slimhub import tflite
from slimhub.tflite import calibration as tflite_calibration
from slimhub.tflite import conversion as tflite_conversion
from slimhub.tflite import rewrites as tflite_rewrites
from slimhub.tflite import runtime as tflite_runtime
from slimhub.reference import untrained as make_checkpoint

BIN = os.path.dirname(sys.executable)
INTEGER_KERNELS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
CALIBRATION_COUNT = 8
# Relative L2 of int8 vs the module on held-out images (docs/tflite.md),
# measured: mobilenet_v1_025_128 0.026, mobilenet_v2_035_96 0.20 (its
# untrained residual sums spread widely), mobilenet_v3_small 0.098,
# inception_v1 0.026, resnet_v2_50 0.029, vgg_16 0.035, nasnet_mobile 0.044,
# quantops 0.25 0.044 and 1.0 0.074 (most of it from the symmetric weights).
INT8_BOUND = {"mobilenet_v1": 0.06, "mobilenet_v2": 0.35, "mobilenet_v3": 0.15,
              "inception": 0.06, "resnet": 0.06, "vgg": 0.08, "nasnet": 0.08,
              "quantops": 0.11}
# Op types that LiteRT 2.3's XNNPACK leaves to the builtin kernels in the
# int8 models of the slow nets (measured; docs/tflite.md): 6 of resnet_v2's
# ADDs, whose input and output scales are too far apart; NASNet's 3x3
# average pools and some RELU, STRIDED_SLICE, CONCATENATION and ADD of its
# cells. Every other int8 model is one XNNPACK partition.
UNDELEGATED = {"resnet": ("ADD",),
               "nasnet": ("AVERAGE_POOL_2D", "RELU", "STRIDED_SLICE",
                          "CONCATENATION", "ADD")}
FLOAT_NETS = [
    pytest.param("mobilenet_v1_025_128", 3, "int8", id="mobilenet_v1-v3"),
    pytest.param("mobilenet_v2_035_96", 5, "float32", id="mobilenet_v2-v5"),
    *[pytest.param(stem, 5, "int8", id=stem, marks=pytest.mark.slow)
      for stem in ("inception_v1", "resnet_v2_50", "vgg_16", "nasnet_mobile",
                   "mobilenet_v3_small_100_224")],
]
QUANTOPS = [
    pytest.param("mobilenet_v1_025_128/quantops", id="quantops-025"),
    pytest.param("mobilenet_v1_100_128/quantops", id="quantops-100",
                 marks=pytest.mark.slow),
]


def _bound(stem):
  if stem.endswith("/quantops"):
    return INT8_BOUND["quantops"]
  return next(bound for prefix, bound in INT8_BOUND.items()
              if stem.startswith(prefix))


@pytest.fixture(scope="module")
def quant_module(tmp_path_factory):
  root = tmp_path_factory.mktemp("quant")
  return conftest.export_once(
      root, lambda stem: make_checkpoint.make_checkpoint(
          stem, 1, prefix=str(root / stem / "ckpt" / "model.ckpt")))


@pytest.fixture(scope="module")
def int8_model(exported_module, tmp_path_factory):
  """(stem, version, io_type) -> (module dir, TFLiteInfo) of a dynamic-batch
  int8 model calibrated on synthetic images, converted once."""
  root = tmp_path_factory.mktemp("int8")
  cache = {}

  def model(stem, version, io_type):
    key = (stem, version, io_type)
    if key not in cache:
      module_dir = exported_module(stem, catalog.CLASSIFICATION, version)
      cache[key] = module_dir, tflite.convert(
          module_dir, root / f"{stem}-{version}.int8.tflite",
          model_type=tflite.INT8, io_type=io_type, batch=tflite.DYNAMIC,
          calibration=tflite.Calibration(synthetic=True,
                                         count=CALIBRATION_COUNT))
    return cache[key]

  return model


def _module_outputs(module_dir, images):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  loaded = hub.load(module_dir)
  if "default" in getattr(loaded, "signatures", {}):
    return loaded.signatures["default"](images=tf.constant(images))[
        "default"].numpy()
  return loaded(tf.constant(images), training=False).numpy()


def assert_all_integer(path, io_type):
  """Every conv / fully connected op reads int8 data and weights; no op
  between input and output computes in float, except the (de)quantize of
  a float32 input and output."""
  ops = tflite_runtime.operators(path)
  kernels = [op for op in ops if op[0] in INTEGER_KERNELS]
  assert kernels
  for name, inputs, _ in kernels:
    assert inputs[:2] == ["int8", "int8"], (name, inputs)
  inner = ops
  if io_type == "float32":
    assert ops[0] == ("QUANTIZE", ["float32"], ["int8"]), ops[0]
    assert ops[-1] == ("DEQUANTIZE", ["int8"], ["float32"]), ops[-1]
    inner = ops[1:-1]
  floats = [op for op in inner if "float32" in op[1] + op[2]]
  assert not floats, floats


def assert_all_delegated(path, allowed=()):
  """LiteRT's XNNPACK delegate takes the whole model in one partition: no
  op is left to the builtin kernels (issue #21), except ops of the types
  `allowed`."""
  delegation = tflite_runtime.delegation(path)
  left = {name for _, name in delegation["undelegated"]}
  assert left <= set(allowed), delegation
  if not allowed:
    assert delegation["partitions"] == 1, delegation


def _held_out(size):
  return tflite_calibration.held_out_images(size, size)


def test_litert_is_the_runtime():
  assert tflite_runtime.RUNTIME == "ai_edge_litert"


@pytest.mark.parametrize("stem,version,io_type", FLOAT_NETS)
def test_int8_from_a_float_module(stem, version, io_type, int8_model):
  module_dir, info = int8_model(stem, version, io_type)
  assert info.inference_type == "int8" and info.io_type == io_type
  assert_all_integer(info.path, io_type)
  assert_all_delegated(info.path, next(
      (ops for prefix, ops in UNDELEGATED.items() if stem.startswith(prefix)),
      ()))
  images = _held_out(catalog.find(stem).image_size)
  actual = tflite_runtime.run(tflite_runtime.interpreter(info.path), images)
  expected = _module_outputs(module_dir, images)
  error = reference_data.relative_error(actual, expected)
  assert error < _bound(stem), error
  # The report stored in the model says what the test measured.
  assert info.deviation["held_out"]["relative_l2"] == pytest.approx(
      error, rel=1e-3, abs=1e-6)
  assert info.deviation["calibration"]["images"] == CALIBRATION_COUNT
  assert info.warnings == [tflite_calibration.SYNTHETIC_WARNING]


@pytest.mark.parametrize("stem", QUANTOPS)
def test_int8_from_a_quantops_module(stem, quant_module, tmp_path):
  module_dir = quant_module(stem, catalog.CLASSIFICATION, 3)
  info = tflite.convert(module_dir, tmp_path / "model.tflite",
                        model_type=tflite.INT8)
  assert_all_integer(info.path, "int8")
  assert_all_delegated(info.path)
  requantized = info.metadata["quantops"]["weights_requantized_symmetric"]
  assert requantized == 28  # 27 conv layers and the logits
  images = _held_out(catalog.find(stem).image_size)
  actual = tflite_runtime.run_each(tflite_runtime.interpreter(info.path),
                                   images)
  expected = _module_outputs(module_dir, images)
  error = reference_data.relative_error(actual, expected)
  assert error < _bound(stem), error
  assert info.deviation["held_out"]["relative_l2"] == pytest.approx(
      error, rel=1e-3)
  assert "calibration" not in info.deviation  # the trained ranges stay


def test_delegation_names_the_ops_xnnpack_declines():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  function = tf.function(
      lambda x: tf.nn.relu(tf.math.cumsum(x * 2.0, axis=1)))
  model = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function(tf.TensorSpec([1, 8], tf.float32))],
  ).convert()
  assert [op[0] for op in tflite_runtime.operators(model)] == [
      "MUL", "CUMSUM", "RELU"]
  assert tflite_runtime.delegation(model) == {
      "ops": 3, "partitions": 2, "undelegated": [(1, "CUMSUM")]}


def _frozen_graph(build, shape):
  """(GraphDef of output = build(images), run(graph_def) on random images)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, [None] + shape[1:],
                                      "images")
    tf.identity(build(images), name="output")
  value = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
  run = lambda g: tflite_conversion._graph_function(g, "images", "output")(
      tf.constant(value)).numpy()
  return graph.as_graph_def(), run


def _op_types(graph_def):
  return sorted(node.op for node in graph_def.node)


def test_global_average_pools_become_means():
  """Only whole-input VALID pools: XNNPACK takes their int8 MEAN, not an
  int8 AVERAGE_POOL_2D; a 3x3 pool stays."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph_def, run = _frozen_graph(
      lambda images: tf.nn.avg_pool2d(
          tf.nn.avg_pool2d(images, 3, 1, "SAME", name="Local"), [4, 4], 1,
          "VALID", name="Global"), [2, 4, 4, 8])
  before = run(graph_def)
  assert tflite.global_average_pools_as_means(graph_def) == 1
  ops = _op_types(graph_def)
  assert ops.count("AvgPool") == 1 and ops.count("Mean") == 1, ops
  np.testing.assert_allclose(run(graph_def), before, rtol=1e-6)


@pytest.mark.parametrize("size,stride,padding", [
    (8, 2, "SAME"), (7, 2, "SAME"), (7, 2, "VALID"), (9, 3, "SAME")])
def test_subsampling_max_pools_become_slices(size, stride, padding):
  """resnet's 1x1 MaxPool shortcuts, which XNNPACK declines in float and
  int8, become ops it takes, picking exactly the same values, at any
  batch; a 3x3 pool stays."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph_def, run = _frozen_graph(
      lambda images: tf.nn.max_pool2d(tf.nn.max_pool2d(
          images, 1, stride, padding), 3, 1, "SAME"),
      [3, size, size, 5])
  before = run(graph_def)
  assert tflite.subsampling_max_pools_as_slices(graph_def) == 1
  assert _op_types(graph_def).count("MaxPool") == 1
  np.testing.assert_array_equal(run(graph_def), before)
  for int8 in (False, True):
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tflite_conversion._graph_function(graph_def, "images", "output")])
    if int8:
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
      converter.representative_dataset = lambda: (
          [np.full((1, size, size, 5), v, np.float32)] for v in (0.0, 1.0))
      converter.target_spec.supported_ops = [
          tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    model = converter.convert()
    assert tflite_runtime.delegation(model)["undelegated"] == [], int8


def test_hard_swishes_become_ops_xnnpack_takes_in_int8():
  """Slim's hard swish, which the converter fuses into a HARD_SWISH that
  XNNPACK declines in int8, becomes relu6(x + 3) * (x / 6): the same values,
  and an int8 model that XNNPACK takes whole. A float model keeps its
  HARD_SWISH (XNNPACK's float kernel is the fast one)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from slimhub.slim_nets import mobilenet_blocks  # pylint: disable=g-import-not-at-top
  weights = np.random.default_rng(1).normal(0, 0.5, [1, 1, 5, 5]).astype(
      np.float32)
  graph_def, run = _frozen_graph(
      lambda images: tf.nn.conv2d(mobilenet_blocks.hard_swish(
          tf.nn.conv2d(images * 8.0 - 4.0, weights, 1, "SAME")), weights, 1,
          "SAME"), [2, 6, 6, 5])
  before = run(graph_def)
  float_model = tf.lite.TFLiteConverter.from_concrete_functions(
      [tflite_conversion._graph_function(graph_def, "images", "output")]
  ).convert()
  assert "HARD_SWISH" in [op[0] for op in tflite_runtime.operators(
      float_model)]
  assert tflite.hard_swishes_for_int8(graph_def) == 1
  np.testing.assert_allclose(run(graph_def), before, rtol=1e-5, atol=1e-6)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [tflite_conversion._graph_function(graph_def, "images", "output")])
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: (
      [np.random.default_rng(i).uniform(size=(1, 6, 6, 5)).astype(
          np.float32)] for i in range(4))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  model = converter.convert()
  assert "HARD_SWISH" not in [op[0] for op in tflite_runtime.operators(model)]
  assert tflite_runtime.delegation(model)["undelegated"] == []


@pytest.mark.slow
def test_the_hard_swish_rewrite_is_kept_only_where_it_costs_no_accuracy(
    int8_model):
  """On mobilenet_v3_small the rewritten hard swishes are as accurate as
  HARD_SWISH, and the model is one XNNPACK partition; on the untrained
  mobilenet_v3_large, whose wide activations the rewrite quantizes badly,
  the model keeps HARD_SWISH and says why."""
  _, small = int8_model("mobilenet_v3_small_100_224", 5, "int8")
  assert small.metadata["xnnpack_rewrites"] == {
      tflite_rewrites.HARD_SWISH: 19}
  assert "HARD_SWISH" not in [op[0] for op in tflite_runtime.operators(
      small.path)]
  _, large = int8_model("mobilenet_v3_large_100_224", 5, "int8")
  assert tflite_rewrites.HARD_SWISH not in large.metadata.get(
      "xnnpack_rewrites", {})
  assert "with HARD_SWISH" in large.metadata["xnnpack_rewrites_declined"][
      tflite_rewrites.HARD_SWISH]
  assert "HARD_SWISH" in [op[0] for op in tflite_runtime.operators(
      large.path)]


def test_single_op_model_computes_what_the_op_does_in_the_model(int8_model):
  _, info = int8_model("mobilenet_v1_025_128", 3, "int8")
  ops = tflite_runtime.operators(info.path)
  first_conv = next(i for i, op in enumerate(ops) if op[0] == "CONV_2D")
  whole = tflite_runtime.interpreter(info.path,
                                     experimental_preserve_all_tensors=True)
  whole.allocate_tensors()
  images = tflite_runtime.quantize_input(whole.get_input_details()[0],
                                         _held_out(128)[:1])
  whole.set_tensor(whole.get_input_details()[0]["index"], images)
  whole.invoke()
  details = whole._get_ops_details()[first_conv]  # pylint: disable=protected-access
  alone = tflite_runtime.interpreter(
      tflite_runtime.single_op_model(info.path, first_conv))
  alone.allocate_tensors()
  assert [op[0] for op in tflite_runtime.operators(
      tflite_runtime.single_op_model(info.path, first_conv))] == ["CONV_2D"]
  alone.set_tensor(alone.get_input_details()[0]["index"],
                   whole.get_tensor(int(details["inputs"][0])))
  alone.invoke()
  np.testing.assert_array_equal(
      alone.get_tensor(alone.get_output_details()[0]["index"]),
      whole.get_tensor(int(details["outputs"][0])))


def test_dynamic_batch_equals_single_calls(int8_model):
  _, info = int8_model("mobilenet_v1_025_128", 3, "int8")
  details = tflite_runtime.interpreter(info.path).get_input_details()[0]
  assert list(details["shape_signature"]) == [-1, 128, 128, 3]
  images = _held_out(128)[:4]
  batched = tflite_runtime.run(tflite_runtime.interpreter(info.path), images)
  single = tflite_runtime.run_each(tflite_runtime.interpreter(info.path),
                                   images)
  assert batched.shape == (4, 1001)
  np.testing.assert_array_equal(batched, single)


def _tflite(*args):
  return subprocess.run([os.path.join(BIN, "slimhub-tflite"), *args],
                        capture_output=True, text=True, check=False)


def test_cli_writes_metadata_that_reads_back(exported_module, tmp_path):
  """slimhub-tflite --type=int8 --calibration=synthetic: a warning, the
  deviation report, and metadata (with an embedded labels file) in the
  model's flatbuffer."""
  module_dir = exported_module("mobilenet_v1_025_128", catalog.CLASSIFICATION,
                               3)
  labels = tmp_path / "labels.txt"
  labels.write_text("".join(f"class {i}\n" for i in range(1001)))
  output = tmp_path / "model.int8.tflite"
  result = _tflite(f"--module_dir={module_dir}", f"--output={output}",
                   "--type=int8", "--calibration=synthetic",
                   f"--calibration_count={CALIBRATION_COUNT}",
                   f"--labels={labels}", "--batch=2")
  assert result.returncode == 0, result.stderr
  assert (f"slimhub-tflite: warning: {tflite_calibration.SYNTHETIC_WARNING}"
          in result.stderr)
  assert "Wrote an int8 TFLite model" in result.stdout
  assert "vs the module on held-out images (8): relative L2" in result.stdout
  assert "vs the module on calibration images (8)" in result.stdout
  metadata = tflite_runtime.read_metadata(output)
  assert metadata["module"]["handle"] == (
      "google/imagenet/mobilenet_v1_025_128/classification/3")
  assert metadata["module"]["version"] == 3
  assert metadata["input"]["image_size"] == [128, 128]
  assert metadata["input"]["range"] == [0.0, 1.0]
  assert metadata["input"]["tensor"]["quantization"]["zero_point"] == -128
  assert metadata["input"]["tensor"]["shape_signature"] == [2, 128, 128, 3]
  assert metadata["output"]["label_offset"] == 0
  assert metadata["output"]["labels_file"] == "labels.txt"
  assert metadata["calibration"] == {"source": "synthetic",
                                     "count": CALIBRATION_COUNT}
  assert set(metadata["deviation"]) == {"calibration", "held_out"}
  entries = tflite_runtime.metadata_entries(output)
  assert entries["labels.txt"] == labels.read_bytes()
  # The flatbuffer with its metadata still runs.
  images = _held_out(128)[:2]
  outputs = tflite_runtime.run(tflite_runtime.interpreter(output), images)
  assert outputs.shape == (2, 1001)


def test_calibration_directory(exported_module, tmp_path):
  """JPEG and PNG photos of any size: the first calibrate, the next are
  held out; the report counts both."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  photos = tmp_path / "photos"
  photos.mkdir()
  images = tflite_calibration.synthetic_images(150, 200, 4, seed=5)
  for index, image in enumerate(images):
    pixels = tf.constant(np.round(image * 255).astype(np.uint8))
    data = (tf.io.encode_png(pixels) if index % 2 else
            tf.io.encode_jpeg(pixels, quality=95))
    (photos / f"{index}.{'png' if index % 2 else 'jpg'}").write_bytes(
        data.numpy())
  (photos / "notes.txt").write_text("not an image, not read")
  info = tflite.convert(
      exported_module("mobilenet_v1_025_128", catalog.CLASSIFICATION, 3),
      tmp_path / "model.tflite", model_type=tflite.INT8,
      calibration=tflite.Calibration(directory=str(photos), count=2))
  assert info.metadata["held_out_source"] == "directory"
  assert info.deviation["calibration"]["images"] == 2
  assert info.deviation["held_out"]["images"] == 2
  assert info.warnings == []
  assert_all_integer(info.path, "int8")


def _assert_refused(result, message, output):
  assert result.returncode == 1, result.stdout + result.stderr
  lines = result.stderr.strip().splitlines()
  assert lines == [f"slimhub-tflite: error: {message}"], result.stderr
  assert not output.parent.exists()


def test_bad_calibration_inputs_are_refused(exported_module, tmp_path):
  """No calibration choice (the binary), an empty, a missing or an
  undecodable calibration directory (the library): one clear error each,
  nothing written."""
  module_dir = exported_module("mobilenet_v1_025_128", catalog.CLASSIFICATION,
                               3)
  output = tmp_path / "out" / "model.tflite"
  _assert_refused(_tflite(f"--module_dir={module_dir}", f"--output={output}",
                          "--type=int8"),
                  "--type=int8 from a float module needs "
                  "--calibration_images=DIR or --calibration=synthetic",
                  output)
  empty = tmp_path / "empty"
  empty.mkdir()
  broken = tmp_path / "broken"
  broken.mkdir()
  (broken / "a.png").write_bytes(b"not a png")
  cases = [
      (empty, 1, f"Calibration directory {empty} holds no JPEG or PNG file"),
      (tmp_path / "missing", 1, "Cannot read the calibration directory "
       f"{tmp_path / 'missing'}: No such file or directory"),
      (broken, 2, f"Calibration directory {broken} holds 1 JPEG or PNG "
       "file(s), fewer than the 2 asked for"),
      (broken, 1, f"Calibration image {broken / 'a.png'} does not decode as "
       "JPEG or PNG"),
  ]
  for directory, count, message in cases:
    with pytest.raises(tflite.TFLiteError) as raised:
      tflite.convert(module_dir, output, model_type=tflite.INT8,
                     calibration=tflite.Calibration(directory=str(directory),
                                                    count=count))
    assert str(raised.value) == message
    assert not output.parent.exists()


def test_broken_modules_get_one_line(exported_module, tmp_path):
  """A garbage saved_model.pb and truncated variables (TF1 and TF2): one
  line that names the problem, and nothing written."""
  output = tmp_path / "out" / "model.tflite"
  garbage = tmp_path / "garbage"
  shutil.copytree(exported_module("mobilenet_v1_025_128",
                                  catalog.CLASSIFICATION, 3), garbage)
  (garbage / "saved_model.pb").write_bytes(b"garbage")
  _assert_refused(_tflite(f"--module_dir={garbage}", f"--output={output}"),
                  f"{garbage}/saved_model.pb is not a SavedModel (it does "
                  "not parse)", output)
  for version in (3, 5):
    truncated = tmp_path / f"truncated{version}"
    shutil.copytree(exported_module("mobilenet_v1_025_128",
                                    catalog.CLASSIFICATION, version),
                    truncated)
    (data,) = (truncated / "variables").glob("variables.data-*")
    data.write_bytes(data.read_bytes()[:1000])
    _assert_refused(
        _tflite(f"--module_dir={truncated}", f"--output={output}"),
        f"Cannot restore the variables of {truncated}: Read less bytes than "
        "requested", output)
