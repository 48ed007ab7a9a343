"""Training-graph behaviour of the NASNet-A and PNASNet-5 nets.

research/slim ramps the drop-path keep probability by global step; slimhub
pins it at its final value, so the graphs hold no global step. Each cell's
pinned value is the constant ``<cell scope>/drop_path_keep_prob``.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference_data
from slimhub import catalog
from slimhub.reference import net_graph
from slimhub.slim_nets import nasnet

# Final drop-path keep probability of each net's research/slim hparams.
FINAL_KEEP_PROB = {"nasnet_mobile": 1.0, "nasnet_large": 0.7,
                   "pnasnet_mobile": 1.0, "pnasnet_large": 0.6}

# At most one large net in the CI sample; test_nets.py samples nasnet_large.
NETS = [pytest.param("nasnet_mobile", id="nasnet_mobile"),
        pytest.param("pnasnet_mobile", id="pnasnet_mobile"),
        pytest.param("nasnet_large", id="nasnet_large",
                     marks=pytest.mark.slow(sample=False)),
        pytest.param("pnasnet_large", id="pnasnet_large",
                     marks=pytest.mark.slow(sample=True))]


@pytest.fixture(scope="module")
def build():
  """(stem, is_training) -> the stem's classifier graph, built once."""
  cache = {}

  def graph(stem, is_training):
    if (stem, is_training) not in cache:
      meta, _ = reference_data.load(stem)
      cache[stem, is_training] = net_graph.build(
          catalog.find(stem).net, num_classes=meta["num_classes"],
          image_size=meta["image_size"], is_training=is_training,
          preprocessing_kind=meta["preprocessing"])
    return cache[stem, is_training]

  return graph


def _keep_probs(graph):
  """[(cell scope, value)] of the pinned keep probabilities, in build order."""
  suffix = "/" + nasnet.DROP_PATH_KEEP_PROB
  return [(op.name[:-len(suffix)], float(tf.make_ndarray(op.get_attr("value"))))
          for op in graph.graph.get_operations() if op.name.endswith(suffix)]


def _cell_scopes(stem):
  """The reference's cell scopes in build order (its end-point order)."""
  meta, _ = reference_data.load(stem)
  cells = [key.lower() for key in meta["reference_end_point_shapes_batch2"]
           if key.startswith(("Cell_", "Reduction_Cell_"))]
  return ["cell_stem_0", "cell_stem_1"] + cells


@pytest.mark.parametrize("stem", NETS)
def test_drop_path_keep_prob_is_pinned_at_final_value(stem, build):
  final = FINAL_KEEP_PROB[stem]
  keep_probs = _keep_probs(build(stem, True))
  assert not _keep_probs(build(stem, False))
  if final == 1.0:
    assert not keep_probs, "drop path in a net whose keep probability is 1"
    return
  scopes = _cell_scopes(stem)
  assert [scope for scope, _ in keep_probs] == scopes
  expected = [1.0 - (number + 1) / len(scopes) * (1.0 - final)
              for number in range(len(scopes))]
  np.testing.assert_allclose([value for _, value in keep_probs], expected,
                             rtol=1e-6)
  assert keep_probs[-1][1] == pytest.approx(final)
  for scope, _ in keep_probs:
    constant = build(stem, True).graph.get_operation_by_name(
        f"{scope}/{nasnet.DROP_PATH_KEEP_PROB}")
    assert constant.outputs[0].consumers(), f"{scope}: keep prob unused"


@pytest.mark.parametrize("stem", NETS)
@pytest.mark.parametrize("is_training", [True, False])
def test_graph_has_no_global_step(stem, is_training, build):
  graph = build(stem, is_training).graph
  assert tf.compat.v1.train.get_global_step(graph) is None
  assert not graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_STEP)
  assert not [op.name for op in graph.get_operations()
              if "global_step" in op.name]


@pytest.mark.parametrize("stem", NETS)
def test_training_is_random_and_inference_deterministic(
    stem, build, reference_checkpoint):
  """Dropout makes training logits random; drop path also the features.
  Inference is deterministic."""
  _, golden = reference_data.load(stem)
  checkpoint = reference_checkpoint(stem)
  train = [net_graph.run(build(stem, True), checkpoint, golden["images"])
           for _ in range(2)]
  assert not np.allclose(train[0]["logits"], train[1]["logits"])
  features_differ = not np.array_equal(train[0]["features"],
                                       train[1]["features"])
  assert features_differ == (FINAL_KEEP_PROB[stem] < 1.0)
  inference = [net_graph.run(build(stem, False), checkpoint, golden["images"])
               for _ in range(2)]
  for key in ("logits", "features"):
    np.testing.assert_array_equal(inference[0][key], inference[1][key])
