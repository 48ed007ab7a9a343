"""slimhub.hub_module: hub.Module's consumer API on TF 2.21, against the real
hub.Module of tensorflow-hub 0.15 on TF 2.15 (tests/hub015_env.py)."""

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import hub015_env
from slimhub import catalog
from slimhub import hub_module
from slimhub.formats import tf1_hub

PROBE = os.path.join(os.path.dirname(__file__), "hub_module_probe.py")
INFERENCE_TOLERANCE = 1e-6
TRAINING_TOLERANCE = 1e-5
CLASSIFICATION = catalog.CLASSIFICATION
SMALL = ("mobilenet_v1_025_128", 3)
DIFFERENTIAL = [
    pytest.param("mobilenet_v1_025_128", 1, False, id="mobilenet_v1_025_128-1"),
    pytest.param("mobilenet_v2_035_96", 2, False, id="mobilenet_v2_035_96-2"),
    # The bigger nets exceed the default tier's time budget.
    pytest.param("inception_v2", 3, False, id="inception_v2-3",
                 marks=pytest.mark.slow),
    pytest.param("resnet_v2_50", 3, False, id="resnet_v2_50-3",
                 marks=pytest.mark.slow),
    pytest.param("nasnet_mobile", 1, True, id="nasnet_mobile-1",
                 marks=pytest.mark.slow),
]
# The fine-tuning code of the seed pnasnet_large classification v3 model
# card; only its import line changes.
SEED_URL = "https://tfhub.dev/google/imagenet/pnasnet_large/classification/3"
SEED_CARD_CODE = textwrap.dedent(f"""\
    import tensorflow as tf
    import tensorflow_hub as hub
    tf.compat.v1.disable_eager_execution()

    module = hub.Module("{SEED_URL}",
                        trainable=True, tags={{"train"}})
    height, width = hub.get_expected_image_size(module)
    images = tf.random.uniform([2, height, width, 3])
    logits = module(dict(images=images, batch_norm_momentum=0.997),
                    signature="image_classification_with_bn_hparams")
    labels = tf.constant([1, 2])
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
    update_ops = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
      train_op = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
          loss)
    moving_mean = [v for v in tf.compat.v1.global_variables()
                   if v.op.name.endswith("moving_mean")][0]
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      before = session.run(moving_mean)
      session.run(train_op)
      change = abs(session.run(moving_mean) - before).sum()
    print("RESULT", height, width, logits.shape[-1], len(update_ops), change)
    """)


def _environment(**extra):
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _start_probe(python, which, module_dir, images_file, out_file,
                 inference_only):
  command = [python, PROBE, which, module_dir, str(images_file),
             str(out_file)] + (["--inference_only"] if inference_only else [])
  # The hub 0.15 side must not see this checkout's packages.
  env = _environment(PYTHONPATH="") if which == "tensorflow_hub" else (
      _environment())
  return subprocess.Popen(command, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env)


def _finish(process):
  _, stderr = process.communicate()
  assert process.returncode == 0, stderr[-3000:]


def _relative(actual, expected):
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  if not expected.size:
    return 0.0
  return float(np.max(np.abs(actual - expected))
               / max(1.0, float(np.max(np.abs(expected)))))


@pytest.mark.hub015
@pytest.mark.parametrize("stem,version,inference_only", DIFFERENTIAL)
def test_same_as_hub015(stem, version, inference_only, exported_module,
                        tmp_path):
  """One consumer script, run by hub 0.15 on TF 2.15 and by slimhub on
  TF 2.21 (in parallel), gives the same outputs, collections and trained
  variables."""
  module_dir = exported_module(stem, CLASSIFICATION, version)
  size = catalog.find(stem).image_size
  images_file = tmp_path / "images.npy"
  np.save(images_file, np.random.default_rng(0).uniform(
      0, 1, (2, size, size, 3)).astype(np.float32))
  outs = {which: tmp_path / f"{which}.npz"
          for which in ("tensorflow_hub", "slimhub")}
  processes = [
      _start_probe(hub015_env.python(), "tensorflow_hub", module_dir,
                   images_file, outs["tensorflow_hub"], inference_only),
      _start_probe(sys.executable, "slimhub", module_dir, images_file,
                   outs["slimhub"], inference_only)]
  for process in processes:
    _finish(process)
  hub, ours = np.load(outs["tensorflow_hub"]), np.load(outs["slimhub"])
  assert sorted(ours.files) == sorted(hub.files)
  assert list(ours["expected_image_size"]) == list(hub["expected_image_size"])
  inference = [key for key in hub.files if key.startswith("infer/")]
  assert any(key.startswith("infer/image_feature_vector/") and
             not key.endswith("/default") for key in inference)  # End points.
  for key in inference:
    assert _relative(ours[key], hub[key]) <= INFERENCE_TOLERANCE, key
  if inference_only:
    return
  assert int(ours["train/num_update_ops"]) == int(hub["train/num_update_ops"])
  assert int(hub["train/num_update_ops"]) > 0
  assert int(ours["train/num_trainable"]) == int(hub["train/num_trainable"])
  np.testing.assert_allclose(ours["train/regularization"],
                             hub["train/regularization"],
                             rtol=TRAINING_TOLERANCE)
  variables = [key for key in hub.files if key.startswith("variable/")]
  assert any(key.endswith("moving_mean") for key in variables)
  for key in variables:
    assert _relative(ours[key], hub[key]) <= TRAINING_TOLERANCE, key


def _seed_cache(cache_dir, module_dir):
  """Lays out TFHUB_CACHE_DIR as tensorflow_hub does: one directory per
  handle, named by the sha1 of the handle."""
  name = hashlib.sha1(SEED_URL.encode("utf8")).hexdigest()
  shutil.copytree(module_dir, os.path.join(cache_dir, name))


def _run_seed_card(module_dir, tmp_path):
  cache_dir = tmp_path / "tfhub_cache"
  _seed_cache(cache_dir, module_dir)
  code = SEED_CARD_CODE.replace("import tensorflow_hub as hub",
                                "import slimhub.hub_module as hub")
  assert code.count("\n") == SEED_CARD_CODE.count("\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=False,
                          env=_environment(TFHUB_CACHE_DIR=str(cache_dir)))
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith("RESULT")][-1]
  height, width, classes, num_updates, change = line.split()[1:]
  return int(height), int(width), int(classes), int(num_updates), float(change)


def test_seed_card_code_small_net(exported_module, tmp_path):
  """The seed card's code, its URL resolved offline through a seeded
  TFHUB_CACHE_DIR; a small net stands in for pnasnet_large."""
  stem, version = SMALL
  size = catalog.find(stem).image_size
  height, width, classes, num_updates, change = _run_seed_card(
      exported_module(stem, CLASSIFICATION, version), tmp_path)
  assert (height, width, classes) == (size, size, 1001)
  assert num_updates > 0 and change > 0


@pytest.mark.slow
def test_seed_card_code_pnasnet_large(exported_module, tmp_path):
  height, width, classes, num_updates, change = _run_seed_card(
      exported_module("pnasnet_large", CLASSIFICATION, 3), tmp_path)
  assert (height, width, classes) == (331, 331, 1001)
  assert num_updates > 0 and change > 0


@pytest.fixture(name="small_module")
def fixture_small_module(exported_module):
  return exported_module(SMALL[0], CLASSIFICATION, SMALL[1])


def test_scopes_variables_and_collections(small_module):
  """What hub 0.15 does, as observed in its venv: fresh scopes under the
  current variable scope, variable_map keyed inside the module, trainable
  and REGULARIZATION_LOSSES only with trainable=True, UPDATE_OPS per call
  of a trainable {"train"} module."""
  keys = tf.compat.v1.GraphKeys
  with tf.Graph().as_default() as graph:
    with tf.compat.v1.variable_scope("outer"):
      first = hub_module.Module(small_module)
      second = hub_module.Module(small_module, trainable=True,
                                 tags={"train"})
    assert first.variables[0].name.startswith("outer/module/MobilenetV1/")
    assert second.variables[0].name.startswith("outer/module_1/MobilenetV1/")
    assert "MobilenetV1/Conv2d_0/weights" in first.variable_map
    assert [v.name for v in first.variables] == [
        first.variable_map[k].name for k in sorted(first.variable_map)]
    trainable = graph.get_collection(keys.TRAINABLE_VARIABLES)
    assert trainable and all(v.name.startswith("outer/module_1/")
                             for v in trainable)
    losses = graph.get_collection(keys.REGULARIZATION_LOSSES)
    assert losses and all(t.name.startswith("outer/module_1/")
                          for t in losses)
    images = tf.zeros([1, 128, 128, 3])
    assert first(images).name.startswith("module_apply_default/")
    assert not graph.get_collection(keys.UPDATE_OPS)
    outputs = second({"images": images}, signature="image_feature_vector",
                     as_dict=True)
    assert "default" in outputs and "MobilenetV1/Conv2d_0" in outputs
    num_updates = len(graph.get_collection(keys.UPDATE_OPS))
    second(images)
    assert len(graph.get_collection(keys.UPDATE_OPS)) == 2 * num_updates > 0
    # Shared variables: initialized from the module, not the initializers.
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      a, b = session.run([first.variable_map["MobilenetV1/Conv2d_0/weights"],
                          second.variable_map["MobilenetV1/Conv2d_0/weights"]])
    np.testing.assert_array_equal(a, b)
    reader = tf.train.load_checkpoint(
        os.path.join(small_module, tf1_hub.VARIABLES_PREFIX))
    np.testing.assert_array_equal(
        a, reader.get_tensor("MobilenetV1/Conv2d_0/weights"))


def test_fine_tunes_a_reference_variable_module(exported_reference_module):
  """A module with TF 1.x's reference variables (VariableV2, AssignSub), as
  Google's were built: it loads past the allowlist, restores its variables
  and one training step moves its weights and moving averages."""
  module_dir = exported_reference_module(SMALL[0], CLASSIFICATION, SMALL[1])
  keys = tf.compat.v1.GraphKeys
  with tf.Graph().as_default() as graph:
    module = hub_module.Module(module_dir, trainable=True, tags={"train"})
    assert all(v.dtype._is_ref_dtype for v in module.variables)  # pylint: disable=protected-access
    images = tf.constant(np.random.default_rng(0).uniform(
        0, 1, (2, 128, 128, 3)).astype(np.float32))
    logits = module({"images": images, "batch_norm_momentum": 0.5},
                    signature="image_classification_with_bn_hparams")
    inference = hub_module.Module(module_dir)(images)
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(
        tf.constant([1, 2]), logits)
    with tf.control_dependencies(graph.get_collection(keys.UPDATE_OPS)):
      train_op = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
          loss)
    names = ["MobilenetV1/Conv2d_0/weights",
             "MobilenetV1/Conv2d_0/BatchNorm/moving_mean"]
    watched = [module.variable_map[name] for name in names]
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      before = session.run(watched)
      first = session.run(inference)
      session.run(train_op)
      after = session.run(watched)
  reader = tf.train.load_checkpoint(
      os.path.join(module_dir, tf1_hub.VARIABLES_PREFIX))
  for name, value, moved in zip(names, before, after):
    np.testing.assert_array_equal(value, reader.get_tensor(name))
    assert np.abs(moved - value).sum() > 0, name
  assert first.shape == (2, 1001) and np.isfinite(first).all()


def _untrusted_copy(module_dir, target):
  """A copy of the module whose {"train"} UPDATE_OPS read a file."""
  shutil.copytree(module_dir, target)
  saved_model = tf1_hub.read_saved_model(target)
  meta_graph = tf1_hub.meta_graph_for(saved_model, {"train"})
  name = meta_graph.graph_def.node.add(name="path", op="Const")
  name.attr["dtype"].type = tf.string.as_datatype_enum
  name.attr["value"].tensor.CopyFrom(tf.make_tensor_proto("/etc/passwd"))
  meta_graph.graph_def.node.add(name="steal", op="ReadFile", input=["path"])
  meta_graph.collection_def["update_ops"].node_list.value.append("steal")
  with open(os.path.join(target, "saved_model.pb"), "wb") as f:
    f.write(saved_model.SerializeToString())
  return target


def test_bad_inputs(small_module, exported_module, tmp_path):
  tf2_module = exported_module(SMALL[0], CLASSIFICATION, 5)
  untrusted = _untrusted_copy(small_module, tmp_path / "evil")
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match="is a TF2 SavedModel"):
      hub_module.Module(tf2_module)
    with pytest.raises(ValueError, match=r"no graph variant with tags "
                       r"\['serve'\]; it has \[\[\], \['train'\]\]"):
      hub_module.Module(small_module, tags={"serve"})
    with pytest.raises(OSError, match="not a directory"):
      hub_module.Module(str(tmp_path / "missing"))
    with pytest.raises(hub_module.UntrustedModuleError,
                       match="untrusted op ReadFile"):
      hub_module.Module(untrusted)
    module = hub_module.Module(small_module)
    images = tf.zeros([1, 128, 128, 3])
    with pytest.raises(ValueError, match="no signature 'nope'"):
      module(images, signature="nope")
    with pytest.raises(TypeError, match=r"missing \['images'\], "
                       r"unexpected \['image'\]"):
      module({"image": images})
    with pytest.raises(TypeError, match="'images' .* must have shape "
                       r"\(None, None, None, 3\), got \(128, 128, 3\)"):
      module(tf.zeros([128, 128, 3]))
    with pytest.raises(TypeError, match="pass a dict"):
      module(images, signature="image_classification_with_bn_hparams")
  with pytest.raises(RuntimeError, match="disable_eager_execution"):
    hub_module.Module(small_module)


def test_spec_api(small_module):
  spec = hub_module.load_module_spec(small_module)
  assert spec.get_tags() == [frozenset(), frozenset({"train"})]
  assert "image_feature_vector_with_bn_hparams" in spec.get_signature_names()
  inputs = spec.get_input_info_dict("image_classification_with_bn_hparams")
  assert sorted(inputs) == ["batch_norm_momentum", "images"]
  assert inputs["images"].get_shape().as_list() == [None, None, None, 3]
  assert spec.get_output_info_dict()["default"].dtype == tf.float32
  assert hub_module.get_expected_image_size(spec) == [128, 128]
  assert hub_module.get_num_image_channels(spec) == 3
