"""TF2 reusable SavedModels (v4, v5) in their real consumers: golden parity,
the reusable-SavedModel API, fine-tuning under hub.KerasLayer (tf-keras),
serving, persistent tapes, and Keras 3."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

import reference_data
import slimhub
from slimhub import catalog
from slimhub.reference import net_graph

TOLERANCE = 1e-4
STEMS = ("inception_v2", "mobilenet_v1_050_160", "mobilenet_v2_035_96")
MODULES = [pytest.param(stem, kind, version, id=f"{stem}-{kind}-{version}")
           for stem in STEMS for kind in catalog.KINDS for version in (4, 5)]


def _golden(stem, kind):
  _, golden = reference_data.load(stem)
  return golden["images"], golden["logits" if kind == catalog.CLASSIFICATION
                                  else "feature_vector"]


def _moving_statistics(variables):
  return {v.name: v.numpy() for v in variables
          if "moving_mean" in v.name or "moving_variance" in v.name}


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_saved_model_api_and_golden_parity(stem, kind, version,
                                           exported_module):
  path = exported_module(stem, kind, version)
  images, expected = _golden(stem, kind)
  entry = catalog.find(stem)
  obj = tf.saved_model.load(path)
  assert reference_data.relative_error(obj(images), expected) < TOLERANCE
  # Exactly the four (training, return_endpoints) traces, all TensorSpecs.
  size = None if catalog.version_spec(entry, version).variable_size else (
      entry.image_size)
  traces = set()
  for function in obj.__call__.concrete_functions:
    args, kwargs = function.structured_input_signature
    assert not kwargs
    inputs, training, return_endpoints, momentum = args
    assert inputs.shape.as_list() == [None, size, size, 3]
    assert inputs.dtype == tf.float32
    assert momentum.shape.as_list() == [] and momentum.dtype == tf.float32
    traces.add((training, return_endpoints))
  assert traces == {(False, False), (False, True), (True, False),
                    (True, True)}
  assert len(obj.__call__.concrete_functions) == 4
  # One set of variables; moving statistics are not trainable.
  names = {v.name for v in obj.variables}
  trainable = {v.name for v in obj.trainable_variables}
  assert len(names) == len(obj.variables) and trainable < names
  assert not any("moving_" in name for name in trainable)
  losses = [float(fn()) for fn in obj.regularization_losses]
  assert len(losses) == 1 and np.isfinite(losses[0]) and losses[0] > 0
  assert slimhub.get_expected_image_size(obj) == [entry.image_size] * 2
  # return_endpoints gives the TF1 named signature's outputs.
  end_points = obj(images, return_endpoints=True)
  tf1 = tf1_signature_keys(exported_module, stem, kind)
  assert set(end_points) == tf1
  if version == 5:
    assert list(obj.signatures) == ["serving_default"]
  else:
    assert not obj.signatures


def tf1_signature_keys(exported_module, stem, kind):
  module = hub.load(exported_module(stem, kind, 3))
  name = ("image_classification" if kind == catalog.CLASSIFICATION
          else "image_feature_vector")
  return set(module.signatures[name].structured_outputs)


@pytest.mark.parametrize("stem", STEMS)
def test_regularization_loss_equals_slim_sum(stem, exported_module,
                                             reference_checkpoint):
  obj = tf.saved_model.load(exported_module(stem, catalog.CLASSIFICATION, 5))
  meta, _ = reference_data.load(stem)
  graph = net_graph.build(catalog.find(stem).net,
                          num_classes=meta["num_classes"], is_training=True,
                          image_size=meta["image_size"])
  with graph.graph.as_default():
    total = tf.add_n(tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES))
  with net_graph.restored_session(graph, reference_checkpoint(stem)) as sess:
    slim_sum = sess.run(total)
  assert float(obj.regularization_losses[0]()) == pytest.approx(
      float(slim_sum), rel=1e-5)


@pytest.mark.parametrize("stem", STEMS)
def test_batch_norm_semantics(stem, exported_module):
  path = exported_module(stem, catalog.FEATURE_VECTOR, 5)
  images, _ = _golden(stem, catalog.FEATURE_VECTOR)
  changes = {}
  for momentum in (0.5, 0.99):
    obj = tf.saved_model.load(path)
    before = _moving_statistics(obj.variables)
    obj(images, training=False, batch_norm_momentum=momentum)
    unchanged = _moving_statistics(obj.variables)
    for name, value in before.items():
      np.testing.assert_array_equal(unchanged[name], value)
    obj(images, training=True, batch_norm_momentum=momentum)
    after = _moving_statistics(obj.variables)
    changes[momentum] = {name: after[name] - before[name] for name in before}
  for name, slow in changes[0.99].items():
    assert np.abs(slow).sum() > 0, name
    np.testing.assert_allclose(changes[0.5][name], 50.0 * slow, rtol=1e-2,
                               atol=1e-3 * np.abs(50.0 * slow).max())


def _fine_tune_once(path, images, momentum):
  """One tf-keras fit step; returns (layer, model, stats before, after)."""
  layer = hub.KerasLayer(path, trainable=True,
                         arguments=dict(batch_norm_momentum=momentum))
  model = tf_keras.Sequential([
      tf_keras.Input(images.shape[1:]), layer, tf_keras.layers.Dense(3)])
  model.compile(
      optimizer=tf_keras.optimizers.SGD(0.01),
      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  before = _moving_statistics(layer.weights)
  kernel = layer.trainable_weights[0].numpy()
  model.fit(images, np.array([0, 1]), batch_size=len(images), epochs=1,
            shuffle=False, verbose=0)
  assert not np.array_equal(kernel, layer.trainable_weights[0].numpy())
  return layer, model, before, _moving_statistics(layer.weights)


@pytest.mark.parametrize("stem", STEMS)
def test_keras_layer_fine_tuning(stem, exported_module):
  path = exported_module(stem, catalog.FEATURE_VECTOR, 5)
  images, expected = _golden(stem, catalog.FEATURE_VECTOR)
  frozen = hub.KerasLayer(path)
  assert reference_data.relative_error(frozen(images), expected) < TOLERANCE
  steps = {}
  for momentum in (0.9, 0.99):
    layer, model, before, after = _fine_tune_once(path, images, momentum)
    steps[momentum] = {name: after[name] - before[name] for name in before}
  # The regularization losses count while the layer trains.
  assert model.losses and float(tf.add_n(model.losses)) > 0
  # predict() runs with training=False: the statistics stay put.
  model.predict(images, verbose=0)
  for name, value in _moving_statistics(layer.weights).items():
    np.testing.assert_array_equal(value, after[name])
  # Gradients reach every trainable weight of the module.
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(images, training=True))
  gradients = tape.gradient(loss, layer.trainable_weights)
  assert gradients and all(g is not None for g in gradients)
  # One step at momentum m moves the statistics by (1 - m) x the same amount.
  for name, slow in steps[0.99].items():
    assert np.abs(slow).sum() > 0, name
    np.testing.assert_allclose(steps[0.9][name], 10.0 * slow, rtol=1e-2,
                               atol=1e-3 * np.abs(10.0 * slow).max())


def test_frozen_keras_layer_never_moves_statistics(exported_module):
  stem = "mobilenet_v1_050_160"
  images, _ = _golden(stem, catalog.FEATURE_VECTOR)
  layer = hub.KerasLayer(exported_module(stem, catalog.FEATURE_VECTOR, 5),
                         trainable=False)
  model = tf_keras.Sequential([tf_keras.Input(images.shape[1:]), layer,
                               tf_keras.layers.Dense(3)])
  model.compile(optimizer="sgd", loss="mse")
  before = _moving_statistics(layer.weights)
  model.fit(images, np.zeros([2, 3]), epochs=1, verbose=0)
  for name, value in _moving_statistics(layer.weights).items():
    np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("stem", STEMS)
def test_v5_serving_and_persistent_tape(stem, exported_module):
  path = exported_module(stem, catalog.CLASSIFICATION, 5)
  images, expected = _golden(stem, catalog.CLASSIFICATION)
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--dir", path, "--all"],
                         capture_output=True, text=True, check=True).stdout
  assert "signature_def['serving_default']" in shown
  assert "tag-set: 'serve'" in shown or "serve" in shown
  obj = tf.saved_model.load(path)
  served = obj.signatures["serving_default"](inputs=tf.constant(images))
  assert set(served) == {"default"}
  np.testing.assert_allclose(served["default"], obj(images), rtol=1e-6,
                             atol=1e-6)
  assert reference_data.relative_error(served["default"], expected) < TOLERANCE
  with tf.GradientTape(persistent=True) as tape:
    first = tf.reduce_sum(obj(images, training=True))
    second = tf.reduce_sum(obj(images, training=True) ** 2)
  for target in (first, second):
    gradients = tape.gradient(target, obj.trainable_variables)
    assert all(g is not None for g in gradients)
  del tape


def test_fixed_size_nets_trace_their_size(exported_module):
  obj = tf.saved_model.load(
      exported_module("mobilenet_v2_035_96", catalog.FEATURE_VECTOR, 5))
  with pytest.raises((ValueError, TypeError)):
    obj(tf.zeros([1, 128, 128, 3]))
  serving = obj.signatures["serving_default"].structured_input_signature
  assert serving[1]["inputs"].shape.as_list() == [None, 96, 96, 3]


_KERAS_SCRIPTS = {
    "keras3_tfsmlayer": (
        {}, "import keras\n"
        "layer = keras.layers.TFSMLayer(PATH, call_endpoint='serving_default')\n"
        "out = layer(IMAGES)['default']\n"),
    "legacy_keras_layer": (
        {"TF_USE_LEGACY_KERAS": "1"},
        "import tensorflow as tf, tensorflow_hub as hub\n"
        "model = tf.keras.Sequential([hub.KerasLayer(PATH)])\n"
        "assert 'tf_keras' in type(model).__module__, type(model).__module__\n"
        "out = model(IMAGES)\n"),
}


@pytest.mark.parametrize("case", sorted(_KERAS_SCRIPTS))
def test_same_bytes_under_keras3_and_tf_keras(case, exported_module,
                                              tmp_path):
  stem = "mobilenet_v1_050_160"
  images, expected = _golden(stem, catalog.FEATURE_VECTOR)
  np.save(tmp_path / "images.npy", images)
  env_extra, body = _KERAS_SCRIPTS[case]
  script = (
      "import json, sys, numpy as np\n"
      f"PATH = {exported_module(stem, catalog.FEATURE_VECTOR, 5)!r}\n"
      f"IMAGES = np.load({str(tmp_path / 'images.npy')!r})\n"
      + body + "print(json.dumps(np.asarray(out).tolist()))\n")
  env = {key: value for key, value in os.environ.items()
         if key != "TF_USE_LEGACY_KERAS"}
  env.update(TF_CPP_MIN_LOG_LEVEL="3", **env_extra)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, env=env, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert reference_data.relative_error(out, expected) < TOLERANCE
