"""NASNet-A / PNASNet-5 modules: what their model pages promise.

No aux head and no global step in either graph; in the {"train"} graph the
drop-path keep probability is pinned at its final value (read from the
exported module); dropout/drop-path make training passes random while
inference passes repeat exactly; fine-tuning moves the BN statistics at the
momentum given (hub.Module in the hub 0.15 venv, hub.KerasLayer for v5).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

import hub015_env
import reference_data
from slimhub import catalog
from slimhub.formats import tf1_hub
from slimhub.slim_nets import nasnet
from test_hub015 import probe
from test_nasnet_nets import FINAL_KEEP_PROB

LARGE = pytest.mark.slow(sample=True)
# Batch norms ahead of the first drop path see the same batch statistics in
# every training step; their updates can be compared across momenta. In
# PNASNet's first cell only comb_iter_3/left lies behind one: its input is
# comb_iter_2's output, whose paths are dropped at random.
DETERMINISTIC_SCOPES = ("conv0/", "cell_stem_0/")
BEHIND_DROP_PATH = ("cell_stem_0/comb_iter_3/left/",)


@pytest.mark.parametrize("stem", [
    "nasnet_mobile", "pnasnet_mobile",
    pytest.param("pnasnet_large", marks=LARGE),
    pytest.param("nasnet_large", marks=pytest.mark.slow(sample=False))])
def test_train_graph_pins_drop_path_and_has_no_global_step(
    stem, exported_module):
  saved_model = tf1_hub.read_saved_model(
      exported_module(stem, catalog.CLASSIFICATION, 3))
  for meta_graph in saved_model.meta_graphs:
    train = "train" in meta_graph.meta_info_def.tags
    nodes = meta_graph.graph_def.node
    assert not [n.name for n in nodes if "global_step" in n.name]
    assert not [n.name for n in nodes if n.name.startswith("aux_")]
    assert "global_step" not in meta_graph.collection_def
    keep_probs = [float(tf.make_ndarray(n.attr["value"].tensor))
                  for n in nodes
                  if n.name.endswith("/" + nasnet.DROP_PATH_KEEP_PROB)]
    if train and FINAL_KEEP_PROB[stem] < 1.0:
      assert keep_probs[-1] == pytest.approx(FINAL_KEEP_PROB[stem], abs=1e-6)
      assert all(1.0 > p >= FINAL_KEEP_PROB[stem] for p in keep_probs)
    else:
      assert not keep_probs


@pytest.mark.parametrize("stem", ["nasnet_mobile",
                                  pytest.param("pnasnet_large", marks=LARGE)])
def test_training_passes_are_random_inference_passes_repeat(
    stem, exported_module):
  _, golden = reference_data.load(stem)
  obj = tf.saved_model.load(exported_module(stem, catalog.CLASSIFICATION, 5))
  images = tf.constant(golden["images"])
  first, second = obj(images), obj(images)
  np.testing.assert_array_equal(first, second)
  assert reference_data.relative_error(first, golden["logits"]) < 1e-4
  trained = [obj(images, training=True).numpy() for _ in range(2)]
  assert not np.array_equal(trained[0], trained[1])


def _deterministic(changes):
  def deterministic(name):
    name = name.removeprefix("module/")
    return (name.startswith(DETERMINISTIC_SCOPES)
            and not name.startswith(BEHIND_DROP_PATH))
  return {name: change for name, change in changes.items()
          if deterministic(name)}


@pytest.mark.hub015
@pytest.mark.slow(sample=True)
def test_pnasnet_large_v3_fine_tunes_under_hub_module(exported_module,
                                                      tmp_path):
  stem = "pnasnet_large"
  _, golden = reference_data.load(stem)
  # The classification module (the one the other large-net tests export)
  # also has the image_feature_vector(_with_bn_hparams) signatures.
  seen = probe(hub015_env.python(),
               exported_module(stem, catalog.CLASSIFICATION, 3),
               golden["images"], tmp_path, bn_hparams=True)
  assert seen["expected_image_size"] == [331, 331]
  assert reference_data.relative_error(
      seen["inference"]["default"], golden["logits"]) < 1e-4
  train = seen["train"]
  assert train["num_update_ops"] == 2 * len(train["moving_mean_change"])
  assert all(change > 0 for change in train["moving_mean_change"].values())
  slow = _deterministic(seen["train_momentum_0.99"]["moving_mean_change"])
  fast = _deterministic(seen["train_momentum_0.5"]["moving_mean_change"])
  assert len(slow) > 10
  for name, change in slow.items():
    assert fast[name] / change == pytest.approx(50.0, rel=1e-2), name


@pytest.mark.slow(sample=True)
def test_pnasnet_large_v5_fine_tunes_under_keras_layer(exported_module):
  stem = "pnasnet_large"
  _, golden = reference_data.load(stem)
  images = golden["images"]
  steps = {}
  for momentum in (0.9, 0.99):
    layer = hub.KerasLayer(exported_module(stem, catalog.CLASSIFICATION, 5),
                           trainable=True,
                           arguments=dict(batch_norm_momentum=momentum))
    model = tf_keras.Sequential([tf_keras.Input(images.shape[1:]), layer,
                                 tf_keras.layers.Dense(2)])
    model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse")
    means = [w for w in layer.weights if "moving_mean" in w.name]
    before = {w.name: w.numpy() for w in means}
    model.fit(images, np.zeros([2, 2]), batch_size=2, epochs=1, verbose=0)
    steps[momentum] = {w.name: np.abs(w.numpy() - before[w.name]).sum()
                       for w in means}
  assert all(change > 0 for change in steps[0.99].values())
  slow, fast = _deterministic(steps[0.99]), _deterministic(steps[0.9])
  assert len(slow) > 10
  for name, change in slow.items():
    assert fast[name] / change == pytest.approx(10.0, rel=1e-2), name
