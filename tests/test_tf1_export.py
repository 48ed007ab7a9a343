"""TF1 Hub modules (v1, v3): on-disk layout, signatures, and hub.load parity.

Loaded with the real consumer, tensorflow_hub 0.16 on TF 2.21; the hub 0.15
hub.Module round trip is in test_hub015.py.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

import reference_data
from slimhub import catalog
from slimhub import slim_nets
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub

TOLERANCE = 1e-4
STEMS = ("inception_v2", "mobilenet_v1_050_160", "mobilenet_v1_025_128")
MODULES = [pytest.param(stem, kind, version, id=f"{stem}-{kind}-{version}")
           for stem in STEMS for kind in catalog.KINDS for version in (1, 3)]


def _expected_signatures(kind, version):
  names = {"default", "image_feature_vector"}
  if kind == catalog.CLASSIFICATION:
    names.add("image_classification")
  if version >= 3:
    names |= {f"{name}_with_bn_hparams" for name in names - {"default"}}
  return names


def _expected_dim(stem, kind):
  meta, _ = reference_data.load(stem)
  return meta["logits" if kind == catalog.CLASSIFICATION
              else "feature_vector"]["shape"][1]


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_layout_and_signatures(stem, kind, version, exported_module):
  path = exported_module(stem, kind, version)
  entry = catalog.find(stem)
  size = entry.image_size
  with open(os.path.join(path, "tfhub_module.pb"), "rb") as f:
    assert f.read() == b"\x08\x03"
  assert sorted(os.listdir(os.path.join(path, "variables"))) == [
      "variables.data-00000-of-00001", "variables.index"]
  assert os.listdir(os.path.join(path, "assets")) == []
  saved_model = tf1_hub.read_saved_model(path)
  assert saved_model.saved_model_schema_version == 0
  assert [sorted(m.meta_info_def.tags) for m in saved_model.meta_graphs] == [
      [], ["train"]]
  checkpoint_keys = {name for name, _ in tf.train.list_variables(
      os.path.join(path, "variables", "variables"))}
  scope = slim_nets.get(entry.net).scope
  variable_sets = []
  for meta_graph in saved_model.meta_graphs:
    train = "train" in meta_graph.meta_info_def.tags
    assert not meta_graph.HasField("saver_def")
    assert set(meta_graph.collection_def) <= tf1_hub.SUPPORTED_COLLECTIONS
    assert ("update_ops" in meta_graph.collection_def) == train
    assert "regularization_losses" in meta_graph.collection_def
    assert set(meta_graph.signature_def) == _expected_signatures(kind, version)
    for name, signature in meta_graph.signature_def.items():
      assert signature.method_name == ""
      images = signature.inputs["images"]
      assert images.dtype == tf.float32.as_datatype_enum
      dims = [d.size for d in images.tensor_shape.dim]
      assert dims == ([-1, -1, -1, 3] if version >= 3 else [-1, size, size, 3])
      expected_inputs = {"images"}
      if name.endswith("_with_bn_hparams"):
        expected_inputs.add("batch_norm_momentum")
        momentum = signature.inputs["batch_norm_momentum"]
        assert momentum.dtype == tf.float32.as_datatype_enum
        assert not momentum.tensor_shape.dim
      assert set(signature.inputs) == expected_inputs
      default = signature.outputs["default"]
      dim = (_expected_dim(stem, kind) if name == "default" or
             name.startswith("image_classification") else
             _expected_dim(stem, catalog.FEATURE_VECTOR))
      assert [d.size for d in default.tensor_shape.dim] == [-1, dim]
      if name != "default":
        end_points = set(signature.outputs) - {"default"}
        assert f"{scope}/global_pool" in end_points
        assert all(key.startswith(scope + "/") for key in end_points)
    size_info = hub_protos.image_size_of(meta_graph)
    assert size_info == ((size, size) if version >= 3 else None)
    variables = {v.decode() for v in
                 meta_graph.collection_def["variables"].bytes_list.value}
    variable_sets.append(variables)
  assert variable_sets[0] == variable_sets[1]
  module_variables = reference_data.module_variables(stem)
  if kind == catalog.FEATURE_VECTOR:
    module_variables = {name: shape for name, shape in module_variables.items()
                        if "/Logits/" not in name}
  assert checkpoint_keys == set(module_variables)


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_hub_load_outputs_match_golden(stem, kind, version, exported_module):
  _, golden = reference_data.load(stem)
  images = tf.constant(golden["images"])
  expected = golden["logits" if kind == catalog.CLASSIFICATION
                    else "feature_vector"]
  module = hub.load(exported_module(stem, kind, version))
  outputs = module.signatures["default"](images=images)
  assert set(outputs) == {"default"}
  assert reference_data.relative_error(
      outputs["default"], expected) < TOLERANCE
  named = module.signatures["image_feature_vector"](images=images)
  assert reference_data.relative_error(
      named["default"], golden["feature_vector"]) < TOLERANCE
  if version >= 3:
    tuned = module.signatures["image_feature_vector_with_bn_hparams"](
        images=images, batch_norm_momentum=tf.constant(0.5))
    # In the inference variant the momentum has no effect.
    np.testing.assert_array_equal(tuned["default"], named["default"])


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_hub_load_train_variant(stem, kind, version, exported_module):
  """The {"train"} variant loads and normalizes with batch statistics."""
  _, golden = reference_data.load(stem)
  module = hub.load(exported_module(stem, kind, version), tags={"train"})
  features = module.signatures["image_feature_vector"](
      images=tf.constant(golden["images"]))["default"]
  assert features.shape == golden["feature_vector"].shape
  assert reference_data.relative_error(
      features, golden["feature_vector"]) > TOLERANCE


@pytest.mark.parametrize("stem", STEMS)
def test_v3_accepts_other_sizes(stem, exported_module):
  _, golden = reference_data.load(stem)
  size = golden["images"].shape[1]
  larger = tf.constant(np.resize(golden["images"], (2, size + 32, size, 3)))
  v3 = hub.load(exported_module(stem, catalog.FEATURE_VECTOR, 3))
  features = v3.signatures["default"](images=larger)["default"]
  assert features.shape == golden["feature_vector"].shape
  assert np.all(np.isfinite(features))
