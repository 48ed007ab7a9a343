"""Checkpoint compatibility of every Slim net that has reference data.

Names and shapes of the variables must equal the reference checkpoint's
(minus aux heads and global_step); the outputs of the net restored from the
deterministic checkpoint must equal the reference Slim outputs.
"""

import re

import numpy as np
import pytest

import reference_data
from slimhub import catalog
from slimhub.reference import net_graph
from slimhub import slim_nets

TOLERANCE = 1e-4

# Nets whose graph takes long to build or run; golden parity is in the slow
# tier, with one net per family in the CI sample.
SLOW = {"nasnet_large": True, "pnasnet_large": False,
        "inception_resnet_v2": True, "inception_v4": False,
        "resnet_v1_101": False, "resnet_v1_152": False,
        "resnet_v2_101": False, "resnet_v2_152": True,
        "vgg_16": True, "vgg_19": False}


def _registered_stems():
  return [stem for stem in reference_data.stems()
          if catalog.find(stem).net in slim_nets.names()]


def _params(slow_only_for_parity):
  params = []
  for stem in _registered_stems():
    marks = []
    if slow_only_for_parity and stem in SLOW:
      marks.append(pytest.mark.slow(sample=SLOW[stem]))
    params.append(pytest.param(stem, marks=marks, id=stem))
  return params


def _build(stem, num_classes):
  meta, _ = reference_data.load(stem)
  return net_graph.build(catalog.find(stem).net, num_classes=num_classes,
                         image_size=meta["image_size"],
                         preprocessing_kind=meta["preprocessing"])


@pytest.mark.parametrize("stem", _params(False))
def test_variables_match_reference_checkpoint(stem):
  meta, _ = reference_data.load(stem)
  graph = _build(stem, meta["num_classes"])
  assert graph.variable_shapes() == reference_data.module_variables(stem)


_UNCOMPARED_END_POINT = re.compile(r"Aux|aux|AvgPool|global_pool|PreLogits")


@pytest.mark.parametrize("stem", _params(False))
def test_end_points_match_reference(stem):
  meta, _ = reference_data.load(stem)
  graph = _build(stem, meta["num_classes"])
  ours = {key: tensor.shape.as_list()
          for key, tensor in graph.output.end_points.items()}
  expected = {key: shape for key, shape
              in meta["reference_end_point_shapes_batch2"].items()
              if not _UNCOMPARED_END_POINT.search(key)}
  assert {key: ours.get(key) for key in expected} == expected


@pytest.mark.parametrize("stem", _params(True))
def test_outputs_match_golden(stem, reference_checkpoint):
  meta, golden = reference_data.load(stem)
  checkpoint = reference_checkpoint(stem)
  classifier = net_graph.run(_build(stem, meta["num_classes"]), checkpoint,
                             golden["images"])
  features = net_graph.run(_build(stem, 0), checkpoint, golden["images"])
  assert reference_data.relative_error(
      classifier["logits"], golden["logits"]) < TOLERANCE
  assert reference_data.relative_error(
      classifier["features"], golden["feature_vector"]) < TOLERANCE
  assert reference_data.relative_error(
      features["features"], golden["feature_vector"]) < TOLERANCE
  assert "logits" not in features


@pytest.mark.parametrize("stem", _params(True))
def test_batch_norm_momentum_tensor_reaches_every_batch_norm(
    stem, reference_checkpoint):
  """With is_training=True, one UPDATE_OPS run at momentum 0.5 moves every
  moving statistic 50x as far as at momentum 0.99: (1-0.5)/(1-0.99).
  Seeded, so both runs see the same drop path (nasnet_large, pnasnet_large)."""
  net = slim_nets.get(catalog.find(stem).net)
  if net.bn_decay is None:
    pytest.skip(f"{net.name} has no batch norm")
  meta, golden = reference_data.load(stem)
  graph = net_graph.build(net, num_classes=0, image_size=meta["image_size"],
                          is_training=True, momentum_input=True, seed=1)
  moving = graph.moving_statistics()
  assert moving, "no moving statistics in the train graph"
  assert len(graph.update_ops()) == len(moving)
  steps = {momentum: net_graph.update_step(
      graph, reference_checkpoint(stem), golden["images"], momentum)
           for momentum in (0.5, 0.99)}
  for name in moving:
    big, small = steps[0.5][name], steps[0.99][name]
    assert np.allclose(big, 50.0 * small, rtol=1e-2,
                       atol=1e-3 * np.abs(big).max() + 1e-7), name


@pytest.mark.parametrize("stem", _params(True))
def test_variable_size_nets_run_on_other_sizes(stem, reference_checkpoint):
  """Nets the catalogue makes variable-size accept unknown height/width and
  keep num_features on a larger and a non-square input."""
  net = slim_nets.get(catalog.find(stem).net)
  if not net.variable_size:
    pytest.skip(f"{net.name} is fixed-size")
  meta, golden = reference_data.load(stem)
  size = meta["image_size"]
  graph = net_graph.build(net, num_classes=0, image_size=None,
                          preprocessing_kind=meta["preprocessing"])
  at_default = net_graph.run(graph, reference_checkpoint(stem),
                             golden["images"])
  assert reference_data.relative_error(
      at_default["features"], golden["feature_vector"]) < TOLERANCE
  other = np.resize(golden["images"], (2, size + 32, size + 64, 3))
  features = net_graph.run(graph, reference_checkpoint(stem), other)
  assert features["features"].shape == (2, net.num_features)
  assert np.all(np.isfinite(features["features"]))
