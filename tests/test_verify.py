"""slimhub-verify: good modules of every version pass, broken ones fail with
the named check, modules slimhub did not make get sensible reports, and the
binary's exit codes and --json are stable.

Broken modules are good exports copied into a temporary directory and
mutated the way real modules break (hub#85/#86 lost UPDATE_OPS, a stripped
attachment, a renamed input, a wrong width, a v5 saved without signatures,
a cut-off variables file).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from slimhub import catalog
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub
from slimhub.verify import checks
from slimhub.verify import golden
from slimhub.verify import layout
from slimhub.verify import reading
from slimhub.verify import verifier
from slimhub.verify import verify

FV, CLS = catalog.FEATURE_VECTOR, catalog.CLASSIFICATION
V1_NET = "mobilenet_v1_025_128"  # variable size from v3
V2_NET = "mobilenet_v2_035_96"  # fixed size; the only family with a v2
GOOD = [(V1_NET, FV, 1), (V2_NET, FV, 2), (V1_NET, CLS, 3), (V1_NET, FV, 4),
        (V2_NET, CLS, 5)]
DOCS = pathlib.Path(__file__).parent.parent / "docs" / "verify.md"


def _handle(stem, kind, version):
  return f"imagenet/{stem}/{kind}@{version}"


def _failed(report):
  return {r.id for r in report.results if r.status == checks.FAIL}


def _status(report):
  return {r.id: r.status for r in report.results}


def _copy(exported_module, tmp_path, stem, kind, version):
  target = tmp_path / "module"
  shutil.copytree(exported_module(stem, kind, version), target)
  return target


def each_meta_graph(mutate):
  """A mutation of a module directory that applies mutate(meta_graph) to
  every MetaGraphDef of its saved_model.pb."""
  def rewrite(directory):
    saved_model = tf1_hub.read_saved_model(directory)
    for meta_graph in saved_model.meta_graphs:
      mutate(meta_graph)
    with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
      f.write(saved_model.SerializeToString())
  return rewrite


@pytest.mark.parametrize("stem,kind,version", GOOD,
                         ids=[f"{s}-{k}-{v}" for s, k, v in GOOD])
def test_good_modules_pass_every_check(stem, kind, version, exported_module,
                                       reference_checkpoint):
  options = tf.config.optimizer.get_experimental_options()
  report = verify(exported_module(stem, kind, version),
                  expect=_handle(stem, kind, version),
                  checkpoint=reference_checkpoint(stem))
  assert report.passed, [r for r in report.results if r.status != "pass"]
  # The checks run without Grappler; the caller's settings are put back.
  assert tf.config.optimizer.get_experimental_options() == options
  status = _status(report)
  assert status["golden_layout"] == status["checkpoint_parity"] == "pass"
  prefix = "tf1" if version <= 3 else "tf2"
  momentum = f"{prefix}.batch_norm_momentum"
  assert status[momentum] == ("skip" if version < 3 else "pass")
  moved = ("tf1.update_ops_move_statistics" if prefix == "tf1"
           else "tf2.training_moves_statistics")
  assert status[moved] == "pass"
  assert list(status) == ["format.detect"] + [
      check.id for check in verifier.all_checks(report.format)]


def test_reference_cache_serves_the_other_modules_of_a_net(
    exported_module, reference_checkpoint, tmp_path, monkeypatch):
  """The Slim net's outputs computed for one module (v3 classification)
  serve the feature vector at v4 without rebuilding the net; the cached
  values are what the check compares with (poisoned, parity fails)."""
  cache = tmp_path / "slim-outputs"
  checkpoint = reference_checkpoint(V1_NET)
  first = verify(exported_module(V1_NET, CLS, 3), checkpoint=checkpoint,
                 reference_cache=str(cache))
  assert _status(first)["checkpoint_parity"] == "pass"
  (stored,) = cache.iterdir()

  from slimhub.reference import net_graph  # pylint: disable=g-import-not-at-top
  def no_rebuild(*unused_args, **unused_kwargs):
    raise AssertionError("the Slim net was rebuilt despite the cache")
  monkeypatch.setattr(net_graph, "build", no_rebuild)
  fv4 = exported_module(V1_NET, FV, 4)
  second = verify(fv4, checkpoint=checkpoint, reference_cache=str(cache))
  assert _status(second)["checkpoint_parity"] == "pass"

  with np.load(stored) as values:
    poisoned = {name: values[name] + 1.0 for name in values.files}
  np.savez(stored, **poisoned)
  third = verify(fv4, checkpoint=checkpoint, reference_cache=str(cache))
  assert "checkpoint_parity" in _failed(third)


def _drop_train_update_ops(meta_graph):
  if "train" in meta_graph.meta_info_def.tags:
    del meta_graph.collection_def["update_ops"]


def _inert_update_ops(meta_graph):
  """UPDATE_OPS that run but only read the moving means (hub#85)."""
  if "train" in meta_graph.meta_info_def.tags:
    reads = [node.name for node in meta_graph.graph_def.node
             if node.name.endswith("moving_mean/Read/ReadVariableOp")]
    meta_graph.collection_def["update_ops"].node_list.value[:] = reads


def _drop_attachments(meta_graph):
  del meta_graph.collection_def[hub_protos.ATTACHMENTS_COLLECTION]


def _rename_images_input(meta_graph):
  inputs = meta_graph.signature_def["image_feature_vector"].inputs
  inputs["image"].CopyFrom(inputs["images"])
  del inputs["images"]


def _wrong_feature_dim(meta_graph):
  for name in ("image_feature_vector", "image_feature_vector_with_bn_hparams"):
    output = meta_graph.signature_def[name].outputs["default"]
    output.tensor_shape.dim[1].size = 255


def _truncate_variables(directory):
  data = os.path.join(directory, "variables",
                      "variables.data-00000-of-00001")
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)


def _resave_without_signatures(directory):
  """Re-saves the SavedModel from its loaded object, with no signatures."""
  resaved = f"{directory}.resaved"
  tf.saved_model.save(tf.saved_model.load(str(directory)), resaved,
                      signatures={})
  shutil.copytree(os.path.join(directory, "assets.extra"),
                  os.path.join(resaved, "assets.extra"))
  shutil.rmtree(directory)
  os.rename(resaved, directory)


TF1_V3 = (V1_NET, CLS, 3)
# case: (module, mutation, with --expect, failed checks, (check, detail part));
# golden_layout (of the metadata's catalogue module by default) fails too
# wherever the mutation changes the layout.
BROKEN = {
    "update_ops_missing": (
        TF1_V3, each_meta_graph(_drop_train_update_ops), False,
        {"tf1.update_ops_present", "golden_layout"},
        ("tf1.update_ops_present", "the [train] variant has no UPDATE_OPS, "
         "so fine-tuning never updates its 27 moving_mean variables")),
    "update_ops_inert": (
        TF1_V3, each_meta_graph(_inert_update_ops), False,
        {"tf1.update_ops_move_statistics", "golden_layout"},
        ("tf1.update_ops_move_statistics", "27 of 27 moving_mean variables "
         "did not change after one run of the 27 UPDATE_OPS of [train]")),
    "no_image_module_info": (
        TF1_V3, each_meta_graph(_drop_attachments), False,
        {"tf1.image_module_info", "golden_layout"},
        ("tf1.image_module_info", "no image_module_info attachment (the "
         "input size is variable) (in [] and [train])")),
    "renamed_input": (
        TF1_V3, each_meta_graph(_rename_images_input), False,
        {"tf1.signature_inputs", "golden_layout"},
        ("tf1.signature_inputs", "signature image_feature_vector: input "
         "'images' missing (found 'image') (in [] and [train])")),
    "wrong_feature_dim": (
        TF1_V3, each_meta_graph(_wrong_feature_dim), True,
        {"tf1.default_output", "golden_layout"},
        ("tf1.default_output", "signature image_feature_vector: output "
         "'default' is float32 [?,255], expected float32 [?,256] "
         "(num_features, --expect)")),
    "v5_without_serving_default": (
        (V2_NET, CLS, 5), _resave_without_signatures, False,
        {"tf2.serving_default", "golden_layout"},
        ("tf2.serving_default", "no serving_default signature in the serve "
         "tag set (version 5 rules, slimhub metadata)")),
    "tf1_truncated_variables": (
        TF1_V3, _truncate_variables, False, {"variables.readable"},
        ("variables.readable", "tensors of variables/variables cannot be "
         "read")),
    "tf2_truncated_variables": (
        (V1_NET, FV, 4), _truncate_variables, False, {"variables.readable"},
        ("variables.readable", "tensors of variables/variables cannot be "
         "read")),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_module_fails_the_named_check(case, exported_module,
                                             tmp_path):
  module, mutate, with_expect, expected, (check_id, fragment) = BROKEN[case]
  directory = _copy(exported_module, tmp_path, *module)
  mutate(directory)
  report = verify(directory, expect=_handle(*module) if with_expect else None)
  assert _failed(report) == expected, [
      r for r in report.results if r.status == "fail"]
  detail = next(r.detail for r in report.results if r.id == check_id)
  assert fragment in detail


@pytest.mark.parametrize("make", ["empty", "checkpoint", "missing"])
def test_a_directory_that_is_no_module_fails_format_detect(
    make, tmp_path, reference_checkpoint):
  if make == "empty":
    directory = tmp_path / "notes"
    directory.mkdir()
    (directory / "README.txt").write_text("not a module")
    fragment = "holds no saved_model.pb (found README.txt)"
  elif make == "checkpoint":
    directory = os.path.dirname(reference_checkpoint(V1_NET))
    fragment = "holds no saved_model.pb"
  else:
    directory = tmp_path / "nowhere"
    fragment = "is not a directory"
  report = verify(directory)
  assert [(r.id, r.status) for r in report.results] == [
      ("format.detect", "fail")]
  assert fragment in report.results[0].detail
  assert not report.passed


def test_expect_of_the_wrong_module_fails_identity(exported_module):
  report = verify(exported_module(V1_NET, CLS, 3),
                  expect=_handle(V1_NET, CLS, 1))
  assert {"module.identity", "golden_layout"} <= _failed(report)
  identity = next(r for r in report.results if r.id == "module.identity")
  assert ("--expect says google/imagenet/mobilenet_v1_025_128/"
          "classification/1 but the module's metadata says "
          "google/imagenet/mobilenet_v1_025_128/classification/3"
          in identity.detail)


@pytest.mark.parametrize("stem,kind,version", [
    (V1_NET, FV, 1), (V1_NET, CLS, 3), (V1_NET, FV, 4), (V2_NET, CLS, 5)])
def test_exported_layouts_equal_their_golden_files(stem, kind, version,
                                                   exported_module):
  """An export whose layout drifts from the reviewed golden file fails here;
  regenerate with tools/make_golden_layouts.py and review the diff."""
  entry = catalog.find(stem)
  stored = golden.load(entry, kind)
  assert version in stored, f"no golden layout for {stem} {kind} {version}"
  exported = layout.of_module(reading.read(exported_module(stem, kind,
                                                           version)))
  assert not layout.summarize(layout.differences(stored[version], exported))


def test_golden_file_round_trip_factors_repeated_outputs():
  entry = catalog.find(V1_NET)
  with open(golden.path_for(entry, CLS)) as f:
    content = json.load(f)
  layouts = golden.decode(content)
  assert golden.encode(entry.handle(CLS), layouts) == content
  assert set(layouts) == set(entry.versions)
  assert any(value.startswith("@output_sets/")
             for value in json.dumps(content).split('"'))


def _tiny_image_graph(is_training, images_shape=(None, 32, 32, 3)):
  """A conv + hand-written batch norm image net in plain TF1 graph code."""
  images = tf.compat.v1.placeholder(tf.float32, images_shape, name="images")
  kernel = tf.compat.v1.get_variable(
      "conv/kernel", [3, 3, 3, 8],
      initializer=tf.compat.v1.random_normal_initializer(seed=1))
  tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES,
                                 1e-4 * tf.nn.l2_loss(kernel))
  net = tf.nn.conv2d(images, kernel, 2, "SAME")
  moving_mean = tf.compat.v1.get_variable(
      "bn/moving_mean", [8], initializer=tf.compat.v1.zeros_initializer(),
      trainable=False)
  if is_training:
    mean, _ = tf.nn.moments(net, [0, 1, 2])
    update = moving_mean.assign_sub((moving_mean - mean) * 0.01)
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)
  else:
    mean = moving_mean
  features = tf.reduce_mean(tf.nn.relu(net - mean), [1, 2])
  info = tf.compat.v1.saved_model.utils.build_tensor_info
  signature = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
      inputs={"images": info(images)}, outputs={"default": info(features)})
  return {"default": signature, "image_feature_vector": signature}


@pytest.fixture(scope="module")
def foreign_tf1_module(tmp_path_factory):
  """A TF1 Hub image module written with SavedModelBuilder, not slimhub."""
  directory = str(tmp_path_factory.mktemp("foreign") / "tf1")
  builder = tf.compat.v1.saved_model.Builder(directory)
  for tags, is_training in ((["train"], True), ([], False)):
    with tf.Graph().as_default() as graph:
      with tf.compat.v1.variable_scope("", use_resource=True):
        signatures = _tiny_image_graph(is_training)
      with tf.compat.v1.Session(graph=graph) as session:
        session.run(tf.compat.v1.global_variables_initializer())
        if is_training:
          builder.add_meta_graph_and_variables(session, tags, signatures)
        else:
          builder.add_meta_graph(tags, signatures)
  builder.save()
  with open(os.path.join(directory, "tfhub_module.pb"), "wb") as f:
    f.write(b"\x08\x03")
  return directory


def test_foreign_tf1_module_is_verified_from_its_graphs(foreign_tf1_module):
  report = verify(foreign_tf1_module)
  assert report.passed, [r for r in report.results if r.status != "pass"]
  assert report.expectation.source == "the module itself"
  status = _status(report)
  for check_id in ("tf1.update_ops_move_statistics", "tf1.inference",
                   "tf1.regularization_losses", "tf1.variables"):
    assert status[check_id] == "pass", check_id
  details = {r.id: r.detail for r in report.results}
  assert "version 1 rules" in details["module.identity"]
  assert details["tf1.end_points"].startswith("no end points")
  assert "version 1 rules" in details["tf1.batch_norm_momentum"]


class _TinyReusableModel(tf.train.Checkpoint):
  """A reusable image SavedModel in plain TF2 code (not slimhub's writer)."""

  def __init__(self, update_statistics):
    super().__init__()
    rng = np.random.default_rng(0)
    self.kernel = tf.Variable(rng.normal(size=(3, 3, 3, 8)),
                              dtype=tf.float32, name="conv/kernel")
    self.moving_mean = tf.Variable(tf.zeros([8]), trainable=False,
                                   name="bn/moving_mean")
    self.update_statistics = update_statistics
    self.variables = [self.kernel, self.moving_mean]
    self.trainable_variables = [self.kernel]
    self.regularization_losses = [tf.function(
        lambda: 1e-4 * tf.nn.l2_loss(self.kernel), input_signature=[])]

  @tf.function
  def __call__(self, inputs, training=False):
    net = tf.nn.conv2d(inputs, self.kernel, 2, "SAME")
    mean = self.moving_mean
    if training:
      mean, _ = tf.nn.moments(net, [0, 1, 2])
      if self.update_statistics:
        self.moving_mean.assign_sub((self.moving_mean - mean) * 0.01)
    return tf.reduce_mean(tf.nn.relu(net - mean), [1, 2])


@pytest.fixture(scope="module")
def foreign_tf2_modules(tmp_path_factory):
  """{updates statistics: directory} of two plain-TF2 SavedModels."""
  root = tmp_path_factory.mktemp("foreign_tf2")
  directories = {}
  for update_statistics in (True, False):
    model = _TinyReusableModel(update_statistics)
    spec = tf.TensorSpec([None, 32, 32, 3], tf.float32)
    for training in (False, True):
      model.__call__.get_concrete_function(spec, training)
    directories[update_statistics] = str(root / str(update_statistics))
    tf.saved_model.save(model, directories[update_statistics])
  return directories


def test_foreign_tf2_module_is_verified_from_its_graphs(foreign_tf2_modules):
  report = verify(foreign_tf2_modules[True])
  assert report.passed, [r for r in report.results if r.status != "pass"]
  status = _status(report)
  assert status["tf2.traces"] == status["tf2.training_moves_statistics"] == (
      "pass")
  assert status["tf2.end_points"] == status["tf2.batch_norm_momentum"] == (
      "skip")
  details = {r.id: r.detail for r in report.results}
  assert details["tf2.traces"] == "2 traces: training"
  assert "version 4 rules" in details["tf2.serving_default"]


def test_foreign_tf2_module_that_never_updates_its_statistics(
    foreign_tf2_modules):
  report = verify(foreign_tf2_modules[False])
  assert _failed(report) == {"tf2.training_moves_statistics"}
  detail = next(r.detail for r in report.results
                if r.id == "tf2.training_moves_statistics")
  assert detail == ("1 of 1 moving_mean variables did not change after one "
                    "__call__(training=True): bn/moving_mean:0")


def _run_binary(*flags):
  command = [sys.executable, "-m", "slimhub.exporters.verify", *flags]
  return subprocess.run(command, capture_output=True, text=True, check=False)


def test_binary_table_and_exit_code(exported_module):
  result = _run_binary(
      f"--module_dir={exported_module(V1_NET, CLS, 3)}",
      f"--expect={_handle(V1_NET, CLS, 3)}")
  assert result.returncode == 0, result.stdout + result.stderr
  lines = result.stdout.splitlines()
  assert lines[1] == ("expecting google/imagenet/mobilenet_v1_025_128/"
                      "classification/3, per --expect")
  assert any(line.startswith("pass  tf1.batch_norm_momentum") for line in
             lines)
  assert lines[-1] == "PASSED: 23 of 25 checks passed; 2 skipped."


JSON_KEYS = {"schema", "module_dir", "format", "passed", "counts",
             "expectation", "checks", "against"}


def test_binary_json_of_a_broken_module_and_against(exported_module,
                                                    tmp_path):
  directory = _copy(exported_module, tmp_path, *TF1_V3)
  each_meta_graph(_drop_attachments)(directory)
  v1 = exported_module(V1_NET, CLS, 1)
  result = _run_binary(f"--module_dir={directory}", f"--against={v1}",
                       "--json")
  assert result.returncode == 1, result.stderr
  data = json.loads(result.stdout)
  assert set(data) == JSON_KEYS
  assert data["schema"] == "slimhub-verify/1" and data["passed"] is False
  assert data["format"] == "tf1_hub"
  # The golden layout (named by the metadata) is checked by default.
  assert data["counts"] == {"pass": 21, "fail": 2, "skip": 2}
  for item in data["checks"]:
    assert set(item) == {"id", "status", "detail", "lines", "seconds"}
    assert item["seconds"] >= 0
  failed = [item for item in data["checks"] if item["status"] == "fail"]
  assert [item["id"] for item in failed] == ["tf1.image_module_info",
                                             "golden_layout"]
  assert data["expectation"]["handle"] == (
      "google/imagenet/mobilenet_v1_025_128/classification/3")
  against = data["against"]
  assert against["module_dir"] == v1 and against["identical"] is False
  by_path = {d["path"]: d for d in against["differences"]}
  bn = "layout.variants.[].signatures.image_classification_with_bn_hparams"
  assert by_path[bn]["change"] == "removed"
  assert by_path["metadata.version"] == {
      "path": "metadata.version", "change": "changed", "left": 3, "right": 1}
  images = "layout.variants.[train].signatures.default.inputs.images"
  assert by_path[images]["left"].startswith("float32 [?,?,?,3]")
  assert by_path[images]["right"].startswith("float32 [?,128,128,3]")


def test_binary_usage_errors(tmp_path):
  result = _run_binary(f"--module_dir={tmp_path}",
                       "--expect=imagenet/mobilenet_v1_025_128/feature_vector")
  assert result.returncode == 1
  assert "slimhub-verify: error: --expect=" in result.stderr
  assert "needs a version" in result.stderr
  result = _run_binary(f"--module_dir={tmp_path}", f"--against={tmp_path}")
  assert result.returncode == 1
  assert "--against: " in result.stderr and "holds no saved_model.pb" in (
      result.stderr)


def test_docs_list_every_check_and_json_key():
  text = DOCS.read_text()
  ids = {"format.detect"} | {
      check.id for module_format in (reading.TF1_HUB, reading.TF2_SAVED_MODEL)
      for check in verifier.all_checks(module_format)}
  assert not [check_id for check_id in ids if f"`{check_id}`" not in text]
  assert not [key for key in JSON_KEYS if f"`{key}`" not in text]


def test_golden_tool_check_mode_agrees_with_the_stored_files():
  tool = pathlib.Path(__file__).parent.parent / "tools" / (
      "make_golden_layouts.py")
  result = subprocess.run(
      [sys.executable, str(tool), f"--handles=imagenet/{V1_NET}/{FV}",
       "--versions=1", "--check"], capture_output=True, text=True,
      check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  assert f"google/imagenet/{V1_NET}/{FV}/1: " in result.stdout
  assert "1 layouts built; 0 differ from the stored ones" in result.stdout
