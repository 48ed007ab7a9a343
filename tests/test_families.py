"""One net of every family end to end: TF1 v3 and TF2 v5 exports from the
deterministic checkpoint, loaded by hub.load / tf.saved_model.load, equal the
golden outputs; and a checkpoint of another width or family is refused
before anything is written, naming the variables that differ."""

import json
import os

import pytest
import tensorflow as tf
import tensorflow_hub as hub

import reference_data
from slimhub import catalog
from slimhub import export

TOLERANCE = 1e-4
# One stem per family; the large ones run in the slow tier.
FAMILY_STEMS = {
    "inception_v1": None, "inception_v3": None, "resnet_v1_50": None,
    "resnet_v2_50": None, "mobilenet_v2_035_96": None,
    "mobilenet_v3_small_100_224": None, "nasnet_mobile": None,
    "pnasnet_mobile": None, "vgg_16": pytest.mark.slow(sample=True),
    "inception_resnet_v2": pytest.mark.slow(sample=False),
    "inception_v4": pytest.mark.slow(sample=False),
}


# The headline large nets: CI runs their classification modules.
LARGE_STEMS = ("nasnet_large", "pnasnet_large")


def _params():
  params = []
  for stem, mark in FAMILY_STEMS.items():
    for kind in catalog.KINDS:
      params.append(pytest.param(stem, kind, id=f"{stem}-{kind}",
                                 marks=[mark] if mark else []))
  for stem in LARGE_STEMS:
    for kind in catalog.KINDS:
      mark = pytest.mark.slow(sample=kind == catalog.CLASSIFICATION)
      params.append(pytest.param(stem, kind, id=f"{stem}-{kind}", marks=mark))
  return params


@pytest.mark.parametrize("stem,kind", _params())
def test_tf1_v3_and_tf2_v5_match_golden(stem, kind, exported_module):
  meta, golden = reference_data.load(stem)
  entry = catalog.find(stem)
  expected = golden["logits" if kind == catalog.CLASSIFICATION
                    else "feature_vector"]
  images = tf.constant(golden["images"])
  if 3 in entry.versions:
    tf1 = hub.load(exported_module(stem, kind, 3))
    outputs = tf1.signatures["default"](images=images)["default"]
    assert reference_data.relative_error(outputs, expected) < TOLERANCE
  path = exported_module(stem, kind, 5)
  tf2 = tf.saved_model.load(path)
  assert reference_data.relative_error(tf2(images), expected) < TOLERANCE
  with open(os.path.join(path, export.METADATA_FILE)) as f:
    metadata = json.load(f)
  assert metadata["preprocessing"] == meta["preprocessing"]
  if kind == catalog.CLASSIFICATION:
    # The class count comes from the checkpoint (1000 for resnet_v1 / vgg).
    assert metadata["num_classes"] == meta["num_classes"]
    assert metadata["label_offset"] == (1 if meta["num_classes"] == 1000
                                        else 0)


@pytest.mark.parametrize("stem,checkpoint_of,expected", [
    ("mobilenet_v1_050_160", "mobilenet_v1_025_128",
     ["with another shape", "MobilenetV1/Conv2d_0/weights: checkpoint "
      "[3, 3, 3, 8], module [3, 3, 3, 16]"]),
    ("inception_v2", "mobilenet_v1_025_128",
     ["missing from the checkpoint", "InceptionV2/Conv2d_1a_7x7/biases",
      "under InceptionV2/ (277)", "the checkpoint's under MobilenetV1/ (137)",
      "another net"]),
])
def test_checkpoint_of_another_width_or_family_is_refused(
    stem, checkpoint_of, expected, reference_checkpoint, tmp_path):
  target = tmp_path / "module"
  with pytest.raises(export.ExportError) as error:
    export.export_module(stem, catalog.CLASSIFICATION, 3,
                         reference_checkpoint(checkpoint_of), str(target))
  for fragment in expected:
    assert fragment in str(error.value)
  assert not target.exists() and not os.listdir(tmp_path)
