"""slimhub.keras.KerasLayer in Keras 3 (tf.keras on TF 2.21): fine-tuning of
TF2 modules under fit, inference of TF1 modules, saving to .keras."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import keras
from slimhub import catalog
from slimhub import hub_module
from slimhub.formats import tf1_hub
from slimhub.keras import KerasLayer

STEM = "mobilenet_v1_025_128"
SIZE = 128
CLASSES = 3


def _data(batch=4, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.uniform(0, 1, (batch, SIZE, SIZE, 3)).astype(np.float32),
          np.arange(batch) % CLASSES)


def _model(handle, momentum=None, trainable=True):
  arguments = {} if momentum is None else {"batch_norm_momentum": momentum}
  model = keras.Sequential([
      keras.Input((SIZE, SIZE, 3)),
      KerasLayer(handle, trainable=trainable, arguments=arguments),
      keras.layers.Dense(CLASSES)])
  model.compile(optimizer=keras.optimizers.SGD(0.01),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  return model


def _weights(layer, moving):
  return {w.path: w.numpy().copy() for w in layer.weights
          if ("moving_" in w.name) == moving}


def _changes(before, layer, moving=True):
  after = _weights(layer, moving)
  return {name: float(np.abs(after[name] - before[name]).sum())
          for name in before}


@pytest.fixture(scope="module", name="v5")
def fixture_v5(exported_module):
  return exported_module(STEM, catalog.FEATURE_VECTOR, 5)


@pytest.fixture(scope="module", name="fitted")
def fixture_fitted(v5):
  """Models at momentum 0.9 and 0.99, each fitted one step on one batch;
  the 0.9 one also predicted before its fit."""
  images, labels = _data()
  result = {}
  for momentum in (0.9, 0.99):
    model = _model(v5, momentum)
    layer = model.layers[0]
    moving, weights = _weights(layer, True), _weights(layer, False)
    if momentum == 0.9:
      model.predict(images, verbose=0)
      result["predict_changes"] = _changes(moving, layer)
    model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    result[momentum] = dict(model=model, moving=_changes(moving, layer),
                            weights=_changes(weights, layer, moving=False))
  return result


def test_fit_updates_moving_averages_at_the_momentum(fitted):
  slow, fast = fitted[0.99]["moving"], fitted[0.9]["moving"]
  first = next(name for name in slow if name.endswith("moving_mean"))
  assert slow[first] > 0
  assert fast[first] / slow[first] == pytest.approx(10.0, rel=1e-3)
  assert all(change > 0 for change in fast.values())


def test_predict_changes_no_moving_statistic(fitted):
  changes = fitted["predict_changes"]
  assert changes and not any(changes.values())


def test_fit_changes_module_weights(fitted):
  layer = fitted[0.9]["model"].layers[0]
  assert len(layer.trainable_weights) > 0
  assert any(fitted[0.9]["weights"].values())


def test_losses_include_the_weight_decay(fitted):
  model = fitted[0.9]["model"]
  images, labels = _data()
  model(images)
  decay = float(model.layers[0]._module.regularization_losses[0]())  # pylint: disable=protected-access
  assert decay > 0
  assert [float(loss) for loss in model.losses] == pytest.approx([decay])
  logits = model.predict(images, verbose=0)
  cross_entropy = float(keras.losses.SparseCategoricalCrossentropy(
      from_logits=True)(labels, logits))
  assert model.evaluate(images, labels, verbose=0) == pytest.approx(
      cross_entropy + decay, rel=1e-5)


def test_keras_file_reloads_with_weights(fitted, tmp_path):
  model = fitted[0.9]["model"]
  images, _ = _data(seed=1)
  path = str(tmp_path / "m.keras")
  model.save(path)
  reloaded = keras.models.load_model(path)
  assert isinstance(reloaded.layers[0], KerasLayer)
  assert reloaded.layers[0].arguments == {"batch_norm_momentum": 0.9}
  np.testing.assert_allclose(reloaded.predict(images, verbose=0),
                             model.predict(images, verbose=0), atol=1e-6)
  fresh = _model(reloaded.layers[0].handle, 0.9)
  assert not np.allclose(fresh.predict(images, verbose=0),
                         model.predict(images, verbose=0), atol=1e-4)


def test_frozen_layer_runs_in_inference_mode_under_fit(v5):
  model = _model(v5, trainable=False)
  layer = model.layers[0]
  assert not layer.trainable_weights and layer.non_trainable_weights
  images, labels = _data()
  moving, weights = _weights(layer, True), _weights(layer, False)
  inference = tf.saved_model.load(v5)(tf.constant(images), training=False)
  model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
  assert not any(_changes(moving, layer).values())
  assert not any(_changes(weights, layer, moving=False).values())
  np.testing.assert_allclose(layer(images, training=True), inference,
                             atol=1e-6)
  assert not model.losses


def test_functional_model_with_end_points(v5):
  inputs = keras.Input((SIZE, SIZE, 3))
  end_points = KerasLayer(v5, return_endpoints=True)(inputs)
  assert "default" in end_points and len(end_points) > 1
  model = keras.Model(inputs, keras.layers.Dense(CLASSES)(
      end_points["default"]))
  images, _ = _data()
  assert model.predict(images, verbose=0).shape == (4, CLASSES)


def test_tf1_module_inference(exported_module):
  v3 = exported_module(STEM, catalog.FEATURE_VECTOR, 3)
  images, _ = _data()
  signature = tf.saved_model.load(v3, tags=[]).signatures["default"]
  expected = signature(images=tf.constant(images))["default"]
  model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), KerasLayer(v3)])
  np.testing.assert_allclose(model.predict(images, verbose=0), expected,
                             atol=1e-6)
  end_point = KerasLayer(v3, signature="image_feature_vector",
                         output_key="MobilenetV1/Conv2d_13_pointwise")
  assert end_point(images).shape[:3] == (4, 4, 4)
  assert not end_point.trainable_weights


def _untrusted_copy(module_dir, target):
  """A copy of the TF2 module one of whose functions reads a file."""
  shutil.copytree(module_dir, target)
  saved_model = tf1_hub.read_saved_model(target)
  function = saved_model.meta_graphs[0].graph_def.library.function[0]
  path = function.node_def.add(name="path", op="Const")
  path.attr["dtype"].type = tf.string.as_datatype_enum
  path.attr["value"].tensor.CopyFrom(tf.make_tensor_proto("/etc/passwd"))
  function.node_def.add(name="steal", op="ReadFile", input=["path:output:0"])
  with open(os.path.join(target, "saved_model.pb"), "wb") as f:
    f.write(saved_model.SerializeToString())
  return str(target)


def test_bad_inputs(v5, exported_module, tmp_path):
  with pytest.raises(hub_module.UntrustedModuleError,
                     match="untrusted op ReadFile"):
    KerasLayer(_untrusted_copy(v5, tmp_path / "evil"))
  v3 = exported_module(STEM, catalog.FEATURE_VECTOR, 3)
  with pytest.raises(ValueError, match="TF1 Hub module.*Use its TF2 version"):
    KerasLayer(v3, trainable=True)
  with pytest.raises(ValueError, match="no output 'logits'"):
    KerasLayer(v3, output_key="logits")
  with pytest.raises(ValueError, match="no signature 'nope'"):
    KerasLayer(v3, signature="nope")
  with pytest.raises(ValueError, match="unknown arguments.*momentum"):
    KerasLayer(v5, arguments={"momentum": 0.9})
  with pytest.raises(ValueError, match="signature= and output_key= are for "
                     "TF1"):
    KerasLayer(v5, signature="default")
  with pytest.raises(OSError, match="not a directory"):
    KerasLayer(str(tmp_path / "missing"))
  with pytest.raises(ValueError):
    KerasLayer(v5)(np.zeros((1, SIZE, SIZE), np.float32))
