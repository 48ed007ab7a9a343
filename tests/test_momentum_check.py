"""slimhub-verify's batch-norm momentum check under dropout and drop path
(issue 23): correct modules pass every run, a module whose momentum input
misses some batch norms fails with exactly those named.

Drop path draws a mask per example in every training step, so two steps
see other batch statistics. The tiny modules here put such masks in front
of batch norms: without identical randomness per step the check measured
the masks and failed (or passed) by chance.
"""

import functools
import shutil
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim

import test_regenerate
from slimhub import catalog
from slimhub.build import module_fn
from slimhub.reference import untrained as make_checkpoint
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub
from slimhub.formats import tf2_saved_model
from slimhub.verify import batch_norm
from slimhub.verify import checks
from slimhub.verify import expectations
from slimhub.verify import reading
from slimhub.verify import runtime
from slimhub.verify import tf1_checks
from slimhub.verify import tf2_checks
from slimhub.verify import verify
from slimhub.verify.context import Context

SIZE = 32
PATHS = 3
KEEP_PROB = 0.5
MOMENTUM = "hub_input/batch_norm_momentum"
RUNS = 20
# TF 1.x's reference variables, as Google's TF1 Hub modules hold them.
REFERENCE_VARIABLE_OPS = ("VariableV2", "Assign", "AssignSub")


def _drop_path(net):
  """Zeroes whole examples with probability 1 - KEEP_PROB, as NASNet's
  drop path does."""
  noise = tf.random.uniform([tf.shape(net)[0], 1, 1, 1])
  return net * tf.floor(KEEP_PROB + noise) / KEEP_PROB


def _tiny_net(images, momentum, is_training, random_inference=False):
  """conv, batch norm, then PATHS branches of conv, drop path, batch norm:
  those batch norms see new masks in every training step (with
  `random_inference`, in inference too: a broken module)."""
  def conv(net, scope):
    with tf.compat.v1.variable_scope(scope):
      kernel = tf.compat.v1.get_variable("weights", [3, 3, int(net.shape[3]),
                                                     8])
      return tf.nn.conv2d(net, kernel, 1, "SAME")

  with slim.arg_scope(
      [slim.batch_norm], decay=momentum, is_training=is_training, fused=True,
      scale=True, updates_collections=[tf.compat.v1.GraphKeys.UPDATE_OPS]):
    net = slim.batch_norm(conv(images, "stem"), scope="stem_bn")
    for index in range(PATHS):
      path = conv(tf.nn.relu(net), f"path_{index}")
      if is_training or random_inference:
        path = _drop_path(path)
      net += slim.batch_norm(path, scope=f"path_{index}_bn")
  return {"default": tf.reduce_mean(net, [1, 2])}


def _values(shapes):
  """Deterministic weights and statistics for {name: shape}."""
  rng = np.random.default_rng(23)
  values = {}
  for name, shape in sorted(shapes.items()):
    value = rng.normal(0.5, 0.3, shape)
    if name.endswith(("moving_variance", "gamma")):
      value = np.abs(value) + 0.5
    values[name] = value.astype(np.float32)
  return values


def _tf1_variant(is_training, random_inference=False, resource=True):
  """One variant of the tiny TF1 module; resource=False makes TF 1.x's
  reference variables (VariableV2, AssignSub), as Google's TF1 modules
  have."""
  images = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3],
                                    name="hub_input/images")
  momentum = tf.compat.v1.placeholder_with_default(
      np.float32(0.99), [], name=MOMENTUM)
  with tf.compat.v1.variable_scope("", use_resource=resource):
    features = _tiny_net(images, momentum, is_training,
                         random_inference)["default"]
  return types.SimpleNamespace(
      signatures=module_fn.image_signatures(images, momentum, features,
                                            None, {}),
      attachments={hub_protos.IMAGE_MODULE_INFO_KEY:
                   hub_protos.image_module_info_bytes(SIZE, SIZE)})


def _write_tf1(directory, random_inference=False, resource=True):
  meta_graphs, shapes = tf1_hub.build_meta_graphs(functools.partial(
      _tf1_variant, random_inference=random_inference, resource=resource))
  values = _values(shapes)

  def write_variables(prefix):
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(values),
                      shape_and_slices=[""] * len(values),
                      tensors=list(values.values()))
  tf1_hub.write_module(directory, meta_graphs, write_variables)


def _write_tf2(directory, random_inference=False):
  def assign_values(variables):
    by_name = {v.name[:-len(":0")]: v for v in variables}
    values = _values({name: v.shape.as_list() for name, v in by_name.items()})
    for name, value in values.items():
      by_name[name].assign(value)

  module, spec = tf2_saved_model.build(
      functools.partial(_tiny_net, random_inference=random_inference),
      [None, SIZE, SIZE, 3], SIZE, assign_values)
  tf2_saved_model.save(module, directory,
                       tf2_saved_model.serving_signature(module, spec))


@pytest.fixture(scope="module")
def drop_path_modules(tmp_path_factory):
  """{format: directory} of the tiny drop-path module as TF1 (resource and
  reference variables) and TF2."""
  root = tmp_path_factory.mktemp("drop_path")
  directories = {name: str(root / name) for name in ("tf1", "tf1_ref", "tf2")}
  _write_tf1(directories["tf1"])
  _write_tf1(directories["tf1_ref"], resource=False)
  _write_tf2(directories["tf2"])
  return directories


def _momentum_check_runs(directory, runs):
  """The details of `runs` runs of the module's batch_norm_momentum check,
  each in a fresh context (new sessions or a new load: new random ops)."""
  module = reading.read(directory)
  expectation, _ = expectations.resolve(module, None)
  check = (tf1_checks.batch_norm_momentum if module.format == reading.TF1_HUB
           else tf2_checks.batch_norm_momentum)
  details = []
  for _ in range(runs):
    context = Context(module=module, expectation=expectation,
                      identity_problems=[])
    try:
      with runtime.unoptimized():
        details.append(check.function(context))
    finally:
      context.close()
  return details


@pytest.mark.parametrize("variant", ["tf1", "tf1_ref", "tf2"])
def test_drop_path_module_passes_every_run(variant, drop_path_modules):
  directory = drop_path_modules[variant]
  module_format = variant[:3]
  # Reference variables (tf1_ref) are in the allowlist too.
  report = verify(directory)
  assert report.passed, [r for r in report.results if r.status == "fail"]
  status = {r.id: r.status for r in report.results}
  assert status[f"{module_format}.batch_norm_momentum"] == "pass"
  # Training steps really are random: two see other masks.
  images = runtime.test_images((SIZE, SIZE))
  if module_format == "tf1":
    module = reading.read(directory)
    session = runtime.VariantSession(module.variant("train"),
                                     module.variables_prefix)
    output = module.variant("train").signatures["default"].outputs["default"]
    steps = [session.run(output.name, {"hub_input/images:0": images})
             for _ in range(4)]
    session.close()
  else:
    loaded = tf.saved_model.load(directory)
    steps = [loaded(images, training=True).numpy() for _ in range(4)]
  assert any(not np.array_equal(step, steps[0]) for step in steps[1:])
  for detail in _momentum_check_runs(directory, RUNS):
    assert detail.startswith("momentum 0.5 moves every moving_mean 50.00x")
    assert "random ops pinned" in detail


def cut_momentum(scope):
  """A mutation of a TF1 module: the batch norms under `scope` of its
  [train] variant use a constant 0.99 instead of batch_norm_momentum."""
  def mutate(directory):
    saved_model = tf1_hub.read_saved_model(directory)
    for meta_graph in saved_model.meta_graphs:
      if "train" not in meta_graph.meta_info_def.tags:
        continue
      nodes = meta_graph.graph_def.node
      constant = nodes.add()
      constant.name, constant.op = "cut_momentum", "Const"
      constant.attr["dtype"].type = tf.float32.as_datatype_enum
      constant.attr["value"].tensor.CopyFrom(
          tf.make_tensor_proto(np.float32(0.99)))
      for node in nodes:
        if node.name.startswith(scope):
          node.input[:] = ["cut_momentum" if name == MOMENTUM else name
                           for name in node.input]
    with open(f"{directory}/saved_model.pb", "wb") as f:
      f.write(saved_model.SerializeToString())
  return mutate


def _fails_naming(directory, scope):
  """Asserts that only tf1.batch_norm_momentum fails, naming every
  moving_mean under `scope` and no other."""
  report = verify(directory)
  failed = [r for r in report.results if r.status == checks.FAIL]
  assert [r.id for r in failed] == ["tf1.batch_norm_momentum"], failed
  (result,) = failed
  named = {line.split(":")[0] for line in result.lines}
  means = {name for name in reading.read(directory).variant("train").variables
           if name.endswith("/moving_mean")}
  assert named == {name for name in means if name.startswith(scope)}
  assert all(line.endswith(": 1.000x") for line in result.lines)
  assert f"(e.g. {sorted(named)[0]}: 1.000x)" in result.detail
  return result


def _op_types(directory):
  """{variant tags: set of op types} of a TF1 module's graphs."""
  return {tuple(sorted(meta_graph.meta_info_def.tags)):
          {node.op for node in meta_graph.graph_def.node}
          for meta_graph in tf1_hub.read_saved_model(directory).meta_graphs}


@pytest.mark.parametrize("variant", ["tf1", "tf1_ref"])
def test_tiny_module_with_cut_momentum_names_the_batch_norm(
    variant, drop_path_modules, tmp_path):
  directory = tmp_path / "cut"
  shutil.copytree(drop_path_modules[variant], directory)
  if variant == "tf1_ref":
    assert set(REFERENCE_VARIABLE_OPS) <= _op_types(directory)[("train",)]
  cut_momentum("path_1_bn/")(directory)
  _fails_naming(str(directory), "path_1_bn/")


def test_mobilenet_with_cut_momentum_names_the_batch_norm(
    exported_module, tmp_path):
  directory = tmp_path / "cut"
  shutil.copytree(exported_module("mobilenet_v1_025_128",
                                  catalog.CLASSIFICATION, 3), directory)
  scope = "MobilenetV1/Conv2d_3_pointwise/"
  cut_momentum(scope)(directory)
  result = _fails_naming(str(directory), scope)
  assert result.detail.startswith("momentum 0.5 moved 1 of 27 moving_mean")


REFERENCE_STEM = "mobilenet_v1_025_128"


def test_reference_variable_module_passes_without_allow_ops(
    exported_reference_module):
  """A module built as Google's TF1 Hub modules were, with TF 1.x's
  reference variables, passes every check by default (issue 23)."""
  directory = exported_reference_module(REFERENCE_STEM,
                                        catalog.CLASSIFICATION, 3)
  op_types = _op_types(directory)
  assert set(op_types) == {(), ("train",)}
  for tags, types_ in op_types.items():
    assert "VariableV2" in types_ and "Assign" in types_, tags
    assert not {"VarHandleOp", "ReadVariableOp"} & types_, tags
  assert "AssignSub" in op_types[("train",)]
  report = verify(directory)
  assert report.passed, [r for r in report.results if r.status == "fail"]
  results = {r.id: r for r in report.results}
  scan = results["security.op_allowlist"]
  assert scan.status == checks.PASS and "--allow_ops" not in scan.detail
  for check_id in ("variables.readable", "tf1.variables",
                   "tf1.regularization_losses", "tf1.update_ops_present",
                   "tf1.update_ops_move_statistics", "tf1.inference",
                   "golden_layout"):
    assert results[check_id].status == checks.PASS, results[check_id]
  assert results["tf1.batch_norm_momentum"].detail.startswith(
      "momentum 0.5 moves every moving_mean 50.00x as far as 0.99; the "
      "default is 0.99")


def test_reference_variable_module_with_cut_momentum_names_the_batch_norm(
    exported_reference_module, tmp_path):
  directory = tmp_path / "cut"
  shutil.copytree(exported_reference_module(
      REFERENCE_STEM, catalog.CLASSIFICATION, 3), directory)
  assert "VariableV2" in _op_types(directory)[("train",)]
  scope = "MobilenetV1/Conv2d_3_pointwise/"
  cut_momentum(scope)(directory)
  result = _fails_naming(str(directory), scope)
  assert result.detail.startswith("momentum 0.5 moved 1 of 27 moving_mean")


@pytest.mark.slow
def test_nasnet_mobile_with_reference_variables(exported_reference_module,
                                                tmp_path):
  """Google's NASNet-family TF1 modules hold reference variables: such a
  nasnet_mobile v3 passes by default, and one with cell_1's momentum cut
  fails naming its batch norms. (nasnet_mobile has no drop path; the tiny
  tf1_ref module has.)"""
  module_dir = exported_reference_module("nasnet_mobile",
                                         catalog.CLASSIFICATION, 3)
  assert "VariableV2" in _op_types(module_dir)[("train",)]
  report = verify(module_dir)
  assert report.passed, [r for r in report.results if r.status == "fail"]
  directory = tmp_path / "cut"
  shutil.copytree(module_dir, directory)
  cut_momentum("cell_1/")(directory)
  result = _fails_naming(str(directory), "cell_1/")
  assert "cell_1/beginning_bn/moving_mean: 1.000x" in result.lines


@pytest.mark.parametrize("module_format,check_id,fragment", [
    ("tf1", "tf1.inference", f"the [] outputs depend on {PATHS} random ops "
     "(random_uniform/RandomUniform, random_uniform_1/RandomUniform, "),
    ("tf2", "tf2.serving_default", f"__call__(training=False) runs {PATHS} "
     "random ops (random_uniform/RandomUniform in function ")],
    ids=["tf1", "tf2"])
def test_random_inference_is_named_not_blamed_on_the_momentum(
    module_format, check_id, fragment, tmp_path):
  directory = str(tmp_path / module_format)
  write = _write_tf1 if module_format == "tf1" else _write_tf2
  write(directory, random_inference=True)
  report = verify(directory)
  failed = {r.id: r.detail for r in report.results if r.status == checks.FAIL}
  assert list(failed) == [check_id]
  assert fragment in failed[check_id]
  assert "batch_norm_momentum" not in failed[check_id].split("(")[0]


LARGE = [("nasnet_large", 3), ("nasnet_large", 5), ("pnasnet_large", 3),
         ("pnasnet_large", 5)]


def _momentum_rule_runs(directory, runs):
  """`runs` runs of the momentum rule (3 training steps each) on one session
  or loaded object: each step draws its random ops anew, as fine-tuning
  does."""
  module = reading.read(directory)
  images = runtime.test_images(tuple(
      expectations.resolve(module, None)[0].image_size))
  if module.format == reading.TF1_HUB:
    session = runtime.VariantSession(module.variant("train"),
                                     module.variables_prefix, pin_random=True)
    pinned, close = session.pinned, session.close

    def changes_at(momentum):
      feed = {"hub_input/images:0": images}
      if momentum is not None:
        feed[MOMENTUM + ":0"] = np.float32(momentum)
      return session.update_changes(feed)
  else:
    loaded = runtime.LoadedObject(directory, module.saved_model)
    pinned, close = loaded.pinned, lambda: None

    def changes_at(momentum):
      kwargs = ({} if momentum is None else
                {"batch_norm_momentum": tf.constant(momentum, tf.float32)})
      return loaded.call_changes(images, loaded.moving_means, training=True,
                                 **kwargs)
  try:
    with runtime.unoptimized():
      return [batch_norm.require_momentum_effect(changes_at, pinned)
              for _ in range(runs)]
  finally:
    close()


@pytest.mark.slow
@pytest.mark.parametrize("stem,version", LARGE,
                         ids=[f"{s}-{v}" for s, v in LARGE])
def test_large_nasnets_pass_verification_and_20_momentum_runs(
    stem, version, exported_module):
  directory = exported_module(stem, catalog.CLASSIFICATION, version)
  report = verify(directory,
                  expect=f"imagenet/{stem}/classification@{version}")
  assert report.passed, [r for r in report.results if r.status == "fail"]
  details = _momentum_rule_runs(directory, RUNS)
  assert all(detail.startswith("momentum 0.5 moves every moving_mean 50.00x")
             for detail in details), details


@pytest.mark.slow
def test_nasnet_large_with_cut_momentum_names_the_cell(exported_module,
                                                       tmp_path):
  directory = tmp_path / "cut"
  shutil.copytree(exported_module("nasnet_large", catalog.CLASSIFICATION, 3),
                  directory)
  cut_momentum("cell_1/")(directory)
  result = _fails_naming(str(directory), "cell_1/")
  # cell_1 lies behind drop path: its statistics change in every step.
  assert "cell_1/beginning_bn/moving_mean: 1.000x" in result.lines


@pytest.mark.slow
def test_regenerate_builds_and_verifies_large_nasnets_v1_to_v5(tmp_path):
  nets = ("nasnet_large", "pnasnet_large")
  for net in nets:
    make_checkpoint.make_checkpoint(net, 1, checkpoint_dir=str(tmp_path))
  output = tmp_path / "out"
  result = test_regenerate.run(test_regenerate.regenerate(
      tmp_path, output, "--jobs=2", handles=nets, versions="1,2,3,4,5"))
  assert result.returncode == 0, result.stdout + result.stderr
  manifest = test_regenerate.check_outputs(output, tmp_path)
  assert set(manifest["modules"]) == test_regenerate.expected_keys(
      nets, (1, 2, 3, 4, 5))
