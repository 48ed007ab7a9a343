"""Checkpoint compatibility of every Slim net that has reference data.

Names and shapes of the variables must equal the reference checkpoint's
(minus aux heads and global_step); the outputs of the net restored from the
deterministic checkpoint must equal the reference Slim outputs.
"""

import re

import pytest

import reference_data
from slimhub import catalog
from slimhub import net_graph
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
