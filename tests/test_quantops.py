"""Quantops modules: the fake-quantized net, its consumers, and its TFLite.

The module outputs are compared with the folded, fake-quantized MobileNet v1
computed here from the checkpoint values with plain TF ops; hub.load (TF
2.21) and hub.Module (tensorflow-hub 0.15) load the modules; the uint8
TFLite model is checked op by op and against the module.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

import conftest
import hub015_env
import reference_data
import test_hub015
from slimhub import catalog
from slimhub.build import checkpoints
from slimhub.reference import deterministic
from slimhub.formats import image_size
from slimhub.reference import quant_calibration
from slimhub import slim_nets
from slimhub import tflite
from slimhub.tflite import runtime as tflite_runtime
from slimhub.reference import untrained as make_checkpoint
from slimhub.formats import tf1_hub
from slimhub.verify import verifier

STEMS = ("mobilenet_v1_025_128/quantops", "mobilenet_v1_100_128/quantops")
MODULES = [pytest.param(stem, kind, version,
                        id=f"{stem.split('/')[0]}-{kind}-{version}")
           for stem in STEMS for kind in catalog.KINDS for version in (1, 3)]
# The input quantization each version carries (README: quantops modules).
INPUT_RANGE = {1: (-1.0, 1.0), 3: (-1.0005, 1.0005)}
# Strides of Conv2d_0 and of the 13 depthwise layers (Howard et al. 2017).
STRIDES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
BN_EPSILON = 0.001
PARITY_TOLERANCE = 1e-5
TFLITE_TOLERANCE = 0.05
FLOAT_TFLITE_TOLERANCE = 1e-4
SEED = 1


def _images(size, count):
  """`count` deterministic images in [0, 1] (two per seed)."""
  return np.concatenate([deterministic.images(size, SEED + i)
                         for i in range(count // 2)])


@pytest.fixture(scope="module")
def quant_checkpoint(tmp_path_factory):
  cache = {}
  root = tmp_path_factory.mktemp("quant_checkpoints")

  def checkpoint(stem):
    if stem not in cache:
      cache[stem] = make_checkpoint.make_checkpoint(
          stem, SEED, prefix=str(root / stem / "model.ckpt"))
    return cache[stem]

  return checkpoint


@pytest.fixture(scope="module")
def quant_module(tmp_path_factory, quant_checkpoint):
  return conftest.export_once(tmp_path_factory.mktemp("quant_modules"),
                              quant_checkpoint)


def _fake_quant(x, reader, scope, kind, narrow_range):
  return tf.quantization.fake_quant_with_min_max_vars(
      x, reader.get_tensor(f"{scope}/{kind}/min"),
      reader.get_tensor(f"{scope}/{kind}/max"), num_bits=8,
      narrow_range=narrow_range)


def _conv_layer(x, reader, layer, stride, depthwise):
  """Folded BN conv + ReLU6 with fake-quantized weights and output."""
  base = f"MobilenetV1/{layer}"
  ranges = f"MobilenetV1/MobilenetV1/{layer}"
  bn = {name: tf.constant(reader.get_tensor(f"{base}/BatchNorm/{name}"))
        for name in ("gamma", "beta", "moving_mean", "moving_variance")}
  multiplier = bn["gamma"] * tf.math.rsqrt(bn["moving_variance"] + BN_EPSILON)
  bias = bn["beta"] - bn["moving_mean"] * multiplier
  strides = [1, stride, stride, 1]
  if depthwise:
    weights = reader.get_tensor(f"{base}/depthwise_weights")
    weights = weights * tf.reshape(multiplier, [-1, 1])
    weights = _fake_quant(weights, reader, ranges, "weights_quant", True)
    x = tf.nn.depthwise_conv2d(x, weights, strides, "SAME")
  else:
    weights = reader.get_tensor(f"{base}/weights") * multiplier
    weights = _fake_quant(weights, reader, ranges, "weights_quant", True)
    x = tf.nn.conv2d(x, weights, strides, "SAME")
  x = tf.nn.relu6(x + bias)
  return _fake_quant(x, reader, ranges, "act_quant", False)


def folded_fake_quant_net(checkpoint, images, kind, version):
  """The quantops module's default output, from the checkpoint values."""
  reader = tf.train.load_checkpoint(checkpoint)
  x = tf.quantization.fake_quant_with_min_max_args(
      tf.constant(images) * 2.0, 0.0, 2.0, num_bits=8)
  x = tf.quantization.fake_quant_with_min_max_args(
      x - 1.0, *INPUT_RANGE[version], num_bits=8)
  x = _conv_layer(x, reader, "Conv2d_0", STRIDES[0], depthwise=False)
  for index, stride in enumerate(STRIDES[1:], start=1):
    x = _conv_layer(x, reader, f"Conv2d_{index}_depthwise", stride, True)
    x = _conv_layer(x, reader, f"Conv2d_{index}_pointwise", 1, False)
  pooled = tf.nn.avg_pool2d(x, x.shape[1:3], 1, "VALID")
  if kind == catalog.FEATURE_VECTOR:
    return tf.squeeze(pooled, [1, 2]).numpy()
  scope = "MobilenetV1/Logits/Conv2d_1c_1x1"
  weights = _fake_quant(reader.get_tensor(f"{scope}/weights"), reader, scope,
                        "weights_quant", True)
  logits = tf.nn.conv2d(pooled, weights, 1, "SAME")
  logits += reader.get_tensor(f"{scope}/biases")
  logits = _fake_quant(logits, reader, scope, "act_quant", False)
  return tf.squeeze(logits, [1, 2]).numpy()


def _module_outputs(module_dir, images):
  module = hub.load(module_dir)
  return module.signatures["default"](images=tf.constant(images))[
      "default"].numpy()


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_module_equals_folded_fake_quant_net(stem, kind, version,
                                             quant_module, quant_checkpoint):
  entry = catalog.find(stem)
  module_dir = quant_module(stem, kind, version)
  images = _images(entry.image_size, 2)
  expected = folded_fake_quant_net(quant_checkpoint(stem), images, kind,
                                   version)
  actual = _module_outputs(module_dir, images)
  assert actual.shape == expected.shape
  assert reference_data.relative_error(actual, expected) < PARITY_TOLERANCE
  size = entry.image_size
  assert image_size.get_expected_image_size(module_dir) == [size, size]


@pytest.mark.hub015
@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_hub_module_loads_inference_only(stem, kind, version, quant_module,
                                         quant_checkpoint, tmp_path):
  entry = catalog.find(stem)
  images = _images(entry.image_size, 2)
  seen = test_hub015.probe(hub015_env.python(),
                           quant_module(stem, kind, version), images,
                           tmp_path, bn_hparams=False, inference_only=True)
  size = entry.image_size
  assert seen["expected_image_size"] == [size, size]
  assert seen["tags"] == [[]]
  assert "image_feature_vector_with_bn_hparams" not in seen["signatures"]
  expected = folded_fake_quant_net(quant_checkpoint(stem), images, kind,
                                   version)
  for loading in ("inference", "inference_trainable"):
    assert reference_data.relative_error(
        seen[loading]["default"], expected) < PARITY_TOLERANCE
    assert seen[loading]["num_update_ops"] == 0
    # Not fine-tunable: even trainable=True trains no variable.
    assert seen[loading]["num_trainable"] == 0


def _interpreter(path):
  interpreter = tflite_runtime.interpreter(path)  # LiteRT
  interpreter.allocate_tensors()
  return interpreter


def _conv_input_types(path):
  return [(name, inputs[0]) for name, inputs, _ in
          tflite_runtime.operators(path)
          if name in ("CONV_2D", "DEPTHWISE_CONV_2D")]


def _run_uint8(interpreter, images):
  """Dequantized outputs of the uint8 model on images in [0, 1], and the
  output's quantization step."""
  inputs = interpreter.get_input_details()[0]
  output = interpreter.get_output_details()[0]
  scale, zero_point = inputs["quantization"]
  results = []
  for image in images:
    quantized = np.round(image / scale + zero_point).astype(np.uint8)
    interpreter.set_tensor(inputs["index"], quantized[None])
    interpreter.invoke()
    values = interpreter.get_tensor(output["index"]).astype(np.float32)
    out_scale, out_zero = output["quantization"]
    results.append((values - out_zero) * out_scale)
  return np.concatenate(results), out_scale


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_uint8_tflite_agrees_with_module(stem, kind, version, quant_module,
                                         tmp_path):
  module_dir = quant_module(stem, kind, version)
  info = tflite.convert(module_dir, tmp_path / "model.tflite")
  assert info.inference_type == tflite.UINT8
  interpreter = _interpreter(info.path)
  conv_types = _conv_input_types(info.path)
  assert len(conv_types) == 27 + (kind == catalog.CLASSIFICATION)
  assert all(dtype == "uint8" for _, dtype in conv_types), conv_types
  # All-integer: no op converts to or from float.
  ops = {name for name, _, _ in tflite_runtime.operators(info.path)}
  assert not ops & {"QUANTIZE", "DEQUANTIZE"}, ops
  inputs = interpreter.get_input_details()[0]
  assert inputs["dtype"] == np.uint8
  assert inputs["quantization"] == pytest.approx((1 / 255, 0))
  images = np.round(_images(catalog.find(stem).image_size, 8) * 255) / 255
  expected = _module_outputs(module_dir, images.astype(np.float32))
  actual, step = _run_uint8(interpreter, images)
  assert reference_data.relative_error(actual, expected) < TFLITE_TOLERANCE
  if kind == catalog.CLASSIFICATION:
    # The module's top-1 wherever it leads by more than one step of the
    # 8-bit logits; else a class the module scores within that step (the
    # integer kernels match fake quantization to one step, and an
    # untrained net often ties its top logits).
    chosen = expected[np.arange(len(images)), actual.argmax(-1)]
    assert np.all(chosen >= expected.max(-1) - step * 1.001), (
        actual.argmax(-1), expected.argmax(-1))


def _float_tflite_error(module_dir, images, tmp_path):
  info = tflite.convert(module_dir, tmp_path / "float.tflite")
  assert info.inference_type == tflite.FLOAT32
  interpreter = _interpreter(info.path)
  inputs = interpreter.get_input_details()[0]
  output = interpreter.get_output_details()[0]
  actual = []
  for image in images:
    interpreter.set_tensor(inputs["index"], image[None])
    interpreter.invoke()
    actual.append(interpreter.get_tensor(output["index"]))
  if tf1_hub.is_tf1_module(module_dir):
    expected = _module_outputs(module_dir, images)
  else:
    expected = tf.saved_model.load(module_dir)(images, training=False)
  return reference_data.relative_error(np.concatenate(actual), expected)


FLOAT_FAMILIES = [
    pytest.param("mobilenet_v1_025_128", catalog.CLASSIFICATION, 5),
    pytest.param("mobilenet_v1_025_128", catalog.FEATURE_VECTOR, 1),
    *[pytest.param(stem, catalog.CLASSIFICATION, 5, marks=pytest.mark.slow)
      for stem in ("inception_v1", "resnet_v2_50", "vgg_16",
                   "mobilenet_v2_035_96", "mobilenet_v3_small_100_224",
                   "nasnet_mobile")],
]


@pytest.mark.parametrize("stem,kind,version", FLOAT_FAMILIES)
def test_float_tflite_agrees_with_module(stem, kind, version, exported_module,
                                         tmp_path):
  _, golden = reference_data.load(stem)
  error = _float_tflite_error(exported_module(stem, kind, version),
                              golden["images"], tmp_path)
  assert error < FLOAT_TFLITE_TOLERANCE


def _run(*args):
  return subprocess.run([sys.executable, "-m", *args], capture_output=True,
                        text=True, check=False)


def _export(net, checkpoint, target):
  return _run("slimhub.exporters.export", f"--net={net}", "--kind=classification",
              "--version=3", f"--checkpoint={checkpoint}",
              f"--export_dir={target}")


def test_float_checkpoint_for_quantops_refused(reference_checkpoint,
                                               tmp_path):
  target = tmp_path / "module"
  result = _export(STEMS[0], reference_checkpoint("mobilenet_v1_025_128"),
                   target)
  assert result.returncode != 0
  assert "is a float checkpoint" in result.stderr
  assert "quantops module" in result.stderr
  # Where the checkpoint really is: the tarball holds the file at its top,
  # a checkpoint directory holds it in the tarball's folder.
  entry = catalog.find(STEMS[0])
  assert (f"{entry.tarball_url} (at mobilenet_v1_0.25_128_quant/"
          "mobilenet_v1_0.25_128_quant.ckpt in a checkpoint directory)"
          ) in result.stderr
  assert entry.tarball_url.endswith(
      "/mobilenet_v1_2018_02_22/mobilenet_v1_0.25_128_quant.tgz")
  assert not target.exists()


def test_restore_summary_counts_in_the_plural():
  plan = checkpoints.RestorePlan(
      prefix="model.ckpt", keys={"a/weights": "a/weights", "b": "b"},
      ignored=("a/act_quant/a/act_quant/max/biased",
               "a/act_quant/a/act_quant/max/local_step", "global_step",
               "Logits/biases"), used_ema=False)
  assert plan.summary() == (
      "Using 2 checkpoint variables; ignoring 4 not needed by the module: "
      "1 global_step, 1 not in the module (Logits/biases), "
      "2 quantization range EMA helpers.")


def test_quant_checkpoint_for_float_module_refused(quant_checkpoint,
                                                   tmp_path):
  target = tmp_path / "module"
  result = _export("mobilenet_v1_025_128", quant_checkpoint(STEMS[0]), target)
  assert result.returncode != 0
  assert "quantization-aware (quant) checkpoint" in result.stderr
  assert "--net=mobilenet_v1_025_128/quantops" in result.stderr
  assert not target.exists()


def test_missing_ranges_named(tmp_path):
  entry = catalog.find(STEMS[0])
  values = quant_calibration.calibrated_values(
      slim_nets.get(entry.net), entry.image_size, SEED)
  dropped = ("MobilenetV1/MobilenetV1/Conv2d_5_pointwise/act_quant/max",
             "MobilenetV1/Logits/Conv2d_1c_1x1/weights_quant/min")
  names = sorted(set(values) - set(dropped))
  prefix = str(tmp_path / "model.ckpt")
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(values[name]) for name in names])
  target = tmp_path / "module"
  result = _export(STEMS[0], prefix, target)
  assert result.returncode != 0
  assert "2 variable(s) missing" in result.stderr
  for name in dropped:
    assert name in result.stderr
  assert not target.exists()


def test_checkpoint_has_calibrated_ranges_and_ignored_ema_helpers(
    quant_module, quant_checkpoint):
  reader = tf.train.load_checkpoint(quant_checkpoint(STEMS[0]))
  keys = set(reader.get_variable_to_shape_map())
  scope = "MobilenetV1/MobilenetV1/Conv2d_1_depthwise/act_quant"
  for bound in ("min", "max"):
    assert f"{scope}/{scope}/{bound}/biased" in keys
    assert f"{scope}/{scope}/{bound}/local_step" in keys
  assert reader.get_tensor(f"{scope}/min") == 0
  assert reader.get_tensor(f"{scope}/max") > 0
  weights = "MobilenetV1/MobilenetV1/Conv2d_1_depthwise/weights_quant"
  assert reader.get_tensor(f"{weights}/min") < 0 < reader.get_tensor(
      f"{weights}/max")
  module_dir = quant_module(STEMS[0], catalog.FEATURE_VECTOR, 1)
  saved = {name for name, _ in tf.train.list_variables(
      os.path.join(module_dir, "variables", "variables"))}
  assert not [n for n in saved if n.endswith(("/biased", "/local_step"))]
  assert f"{scope}/min" in saved


def test_tflite_cli_refuses_bad_modules(quant_module, tmp_path):
  output = tmp_path / "out" / "model.tflite"
  result = _run("slimhub.exporters.tflite", f"--module_dir={tmp_path}",
                f"--output={output}")
  assert result.returncode != 0
  assert "is not a module (no saved_model.pb)" in result.stderr
  broken = tmp_path / "broken"
  shutil.copytree(quant_module(STEMS[0], catalog.FEATURE_VECTOR, 3), broken)
  for name in os.listdir(broken / "variables"):
    if name.startswith("variables.data"):
      os.remove(broken / "variables" / name)
  result = _run("slimhub.exporters.tflite", f"--module_dir={broken}",
                f"--output={output}")
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"slimhub-tflite: error: Cannot restore the variables of {broken}: "
      f"{broken}/variables/variables.data-00000-of-00001; No such file or "
      "directory"], (
          result.stderr)
  assert not output.parent.exists()


def test_verify_passes_quantops_and_finds_a_missing_fake_quant(
    quant_module, quant_checkpoint, tmp_path):
  stem, kind, version = STEMS[0], catalog.CLASSIFICATION, 3
  module_dir = quant_module(stem, kind, version)
  report = verifier.verify(
      module_dir, expect=f"imagenet/{stem}/{kind}@{version}",
      checkpoint=quant_checkpoint(stem))
  status = {result.id: result.status for result in report.results}
  assert report.passed, [r for r in report.results if r.status == "fail"]
  for check_id in ("tf1.tags", "tf1.update_ops_present", "tf1.fake_quant",
                   "golden_layout", "checkpoint_parity"):
    assert status[check_id] == "pass", check_id
  broken = tmp_path / "broken"
  shutil.copytree(module_dir, broken)
  saved_model = tf1_hub.read_saved_model(broken)
  (graph,) = saved_model.meta_graphs
  conv_name = "MobilenetV1/Conv2d_3_pointwise/Conv2D"
  conv = next(n for n in graph.graph_def.node if n.name == conv_name)
  conv.input[1] = "MobilenetV1/Conv2d_3_pointwise/mul_fold"
  (broken / "saved_model.pb").write_bytes(saved_model.SerializeToString())
  report = verifier.verify(str(broken))
  (failed,) = [r for r in report.results if r.status == "fail"]
  assert failed.id == "tf1.fake_quant"
  assert f"{conv_name} reads weights that are not fake-quantized" in (
      failed.detail)
