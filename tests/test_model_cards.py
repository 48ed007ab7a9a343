"""Model cards: tfhub.dev's documentation checks on every catalogue module,
the section layout of each version, the facts of Google's pages for
pnasnet_large, nasnet_large and inception_v2, and what cards and metadata
claim about untrained, unidentified and published weights."""

import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

import tfhub_doc_checks
from slimhub import architectures
from slimhub import catalog
from slimhub.reference import deterministic
from slimhub import export
from slimhub.build import provenance
from slimhub.reference import untrained as make_checkpoint
from slimhub.regenerate import cards as model_cards

# num_features of the architectures in the checks below (catalogue.md §3).
_FEATURES = {"pnasnet_large": 4320, "nasnet_large": 4032, "inception_v2": 1024}


def _facts(entry, kind, version, num_features=2048, num_classes=1001,
           weights=None):
  """Facts of a module built from the published checkpoint, unless
  `weights` says otherwise."""
  spec = catalog.version_spec(entry, version)
  classify = kind == catalog.CLASSIFICATION
  return model_cards.ModuleFacts(
      num_features=num_features,
      num_classes=num_classes if classify else None,
      label_offset=(1 if num_classes == 1000 else 0) if classify else None,
      image_size=entry.image_size, variable_size=spec.variable_size,
      batch_norm_momentum=0.99 if spec.bn_hparams else 0.9997,
      weights=weights or provenance.Weights(provenance.PUBLISHED,
                                            note=entry.training_note),
      checkpoint="model.ckpt")


def _card(net, kind, version, **facts):
  entry = catalog.find(net)
  return model_cards.render(
      entry, kind, version,
      _facts(entry, kind, version, num_features=_FEATURES.get(net, 2048),
             **facts), checkpoint_sha256="0" * 64)


def _headings(text):
  return re.findall(r"^##? .*|^#### .*", text, flags=re.MULTILINE)


def test_every_catalogue_card_passes_the_tfhub_checks():
  count = 0
  for entry, kind, version in catalog.modules():
    text = model_cards.render(entry, kind, version,
                              _facts(entry, kind, version))
    metadata = tfhub_doc_checks.check_card(text)
    assert text.splitlines()[0] == f"# Module {entry.handle(kind, version)}"
    assert metadata["task"] == [model_cards.TASKS[kind]]
    assert metadata["format"] == ["hub" if version <= 3 else "saved_model_2"]
    count += 1
  assert count > 400


def test_sections_follow_googles_layout_per_version():
  first = {1: "## Overview", 2: "## Overview", 3: "## hub.Module for TF1",
           4: "## TF2 SavedModel", 5: "## TF2 SavedModel"}
  for version in (1, 2, 3, 4, 5):
    headings = [h for h in _headings(_card("pnasnet_large", "feature_vector",
                                           version))
                if h.startswith("## ")]
    expected = ["## Overview", "## Training", "## Usage", "## Fine-tuning"]
    if version > 1:
      expected.append("## Changelog")
    if version >= 3:
      expected.insert(0, first[version])
    assert headings == expected, version


def test_publisher_changes_first_line_and_links():
  entry = catalog.find("inception_v2")
  text = model_cards.render(entry, "classification", 3,
                            _facts(entry, "classification", 3),
                            publisher="example-org")
  assert text.startswith("# Module example-org/imagenet/inception_v2/"
                         "classification/3\n")
  assert "example-org/imagenet/inception_v2/feature_vector/3" in text
  tfhub_doc_checks.check_card(text)


def _assert_all_in(text, fragments):
  flat = " ".join(text.split())
  missing = [f for f in fragments if " ".join(f.split()) not in flat]
  assert not missing, missing


def test_pnasnet_large_card_carries_googles_facts():
  text = _card("pnasnet_large", "feature_vector", 3)
  _assert_all_in(text, [
      "Feature vectors of images with PNASNet-5 (large) trained on ImageNet "
      "(ILSVRC-2012-CLS).",
      "<!-- network-architecture: pnasnet-5-large -->",
      "Progressive Neural Architecture Search", "arxiv.org/abs/1712.00559",
      "arxiv.org/abs/1707.07012", "path dropout",
      "`pnasnet_large`", "12 cells (plus 2 for the \"ImageNet stem\")",
      "216 convolutional filters", "331x331 pixels",
      "`num_features` = 4320", "fixed to `height` x `width` = 331 x 331",
      "`pnasnet-5_large_2017_12_13/model.ckpt`",
      "google/imagenet/pnasnet_large/classification/3",
      "keep probability of 0.6", "not scaled with the training steps",
      "defaults to 0.99", "image_feature_vector_with_bn_hparams",
      "tags={\"train\"}", "#### Version 1", "#### Version 2",
      "GitHub issue 86", "#### Version 3", "tensorflow-hub>=0.2.0"])
  assert "#### Version 4" not in text
  classification = _card("pnasnet_large", "classification", 5)
  _assert_all_in(classification, [
      "ImageNet (ILSVRC-2012-CLS) classification with PNASNet-5 (large).",
      "<!-- format: saved_model_2 -->", "<!-- asset-path: internal -->",
      "`num_classes` = 1001", "ImageNetLabels.txt", "\"background\"",
      "hub.KerasLayer", "m.build([None, 331, 331, 3])",
      "arguments=dict(batch_norm_momentum=0.997)", "prone to overfit",
      "keep probability of 0.6", "#### Version 4", "#### Version 5",
      "serving_default", "tf.GradientTape(persistent=True)"])


def test_nasnet_large_card_carries_googles_facts():
  text = _card("nasnet_large", "feature_vector", 1)
  _assert_all_in(text, [
      "Feature vectors of images with NASNet-A (large)",
      "<!-- network-architecture: nasnet-a-large -->",
      "<!-- format: hub -->", "Neural Architecture Search",
      "arxiv.org/abs/1611.01578", "arxiv.org/abs/1707.07012",
      "`nasnet_large`", "18 Normal Cells", "168 convolutional filters",
      "331x331 pixels", "`num_features` = 4032",
      "`nasnet-a_large_04_10_2017/model.ckpt`", "NASNet's pre-trained models",
      "keep probability of 0.7", "not scaled with the training steps",
      "momentum (decay) of the Slim training recipe, 0.9997"])
  assert "## Changelog" not in text
  later = _card("nasnet_large", "classification", 4)
  assert "#### Version 2" not in later
  assert "Support for variable input size" not in later
  _assert_all_in(later, ["#### Version 1", "#### Version 3",
                         "#### Version 4", "defaults to 0.99"])


def test_inception_v2_card_carries_googles_facts():
  text = _card("inception_v2", "classification", 3)
  _assert_all_in(text, [
      "classification with Inception V2.",
      "<!-- network-architecture: inception-v2 -->",
      "arxiv.org/abs/1409.4842", "arxiv.org/abs/1502.03167",
      "batch normalization", "`inception_v2`",
      "`inception_v2_2016_08_28/inception_v2.ckpt`",
      "TF-Slim's pre-trained models", "`num_classes` = 1001",
      "224 x 224 pixels by default, but other input sizes are possible",
      "signature name `image_feature_vector`",
      "image_classification_with_bn_hparams", "prone to overfit",
      "#### Version 1", "#### Version 3", "Support for variable input size."])
  assert "path dropout" not in text
  fixed = _card("inception_v2", "feature_vector", 1)
  _assert_all_in(fixed, ["fixed to `height` x `width` = 224 x 224",
                         "`num_features` = 1024"])


def test_vgg_fine_tuning_says_nothing_about_batch_norm_momentum():
  for version in (1, 3, 5):
    text = _card("vgg_16", "classification", version, num_classes=1000)
    _assert_all_in(text, ["It has no batch normalization."])
    fine_tuning = text.split("## Fine-tuning")[1].split("## Changelog")[0]
    assert "momentum" not in fine_tuning


def test_thousand_class_checkpoint_explains_the_label_offset():
  text = _card("resnet_v1_50", "classification", 5, num_classes=1000)
  _assert_all_in(text, ["`num_classes` = 1000", "no \"background\" class",
                        "line *i+1*", "retrained internally"])


@pytest.mark.parametrize("mutation, message", [
    (lambda t: t.replace("# Module ", "# Model ", 1), "first line"),
    (lambda t: re.sub(r"<!-- task: .* -->\n", "", t), "missing required"),
    (lambda t: t.replace("format: hub", "format: keras"), "format"),
    (lambda t: t.replace("<!-- fine-tunable: true -->",
                         "<!-- fine-tunable: true -->\n"
                         "<!-- fine-tunable: false -->"), "duplicate"),
    (lambda t: t.replace("<!-- dataset: ", "<!-- owner: x -->\n"
                         "<!-- dataset: "), "unsupported"),
    (lambda t: t.replace("pnasnet-5-large", "pnasnet-large"), "tag id"),
    (lambda t: t.replace("<!-- asset-path: legacy -->",
                         "Some prose.\n<!-- asset-path: legacy -->"),
     "unexpected line"),
])
def test_the_checks_reject_broken_cards(mutation, message):
  text = mutation(_card("pnasnet_large", "feature_vector", 3))
  with pytest.raises(AssertionError, match=message):
    tfhub_doc_checks.check_card(text)


def test_every_catalogue_entry_has_architecture_facts():
  for entry in catalog.ENTRIES:
    assert entry.architecture in architectures.ARCHITECTURES, entry.name


def test_card_facts_match_the_slim_nets():
  from slimhub import slim_nets  # pylint: disable=g-import-not-at-top
  for net, num_features in _FEATURES.items():
    slim_net = slim_nets.get(catalog.find(net).net)
    assert slim_net.num_features == num_features, net
    assert slim_net.num_classes == 1001, net


def test_quantops_cards_are_inference_only_with_tflite_and_changelog():
  for version in (1, 3):
    text = _card("mobilenet_v1_025_128/quantops", "classification", version)
    metadata = tfhub_doc_checks.check_card(text)
    assert metadata["fine-tunable"] == ["false"]
    _assert_all_in(text, [
        "quantization-aware training", "cannot be fine-tuned",
        f"slimhub-tflite --module_dir={version} --output=model.tflite",
        "mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant.ckpt"])
    assert "batch_norm_momentum" not in text
  assert "over [-1, 1]" in _card("mobilenet_v1_025_128/quantops",
                                 "feature_vector", 1)
  _assert_all_in(text, ["over [-1.0005, 1.0005]", "#### Version 3",
                        "Widened the quantization range of the input image "
                        "by 0.05%", "hub/issues/109"])


# What a card or metadata of weights that are not the published ones must
# never say (catalogue cards of published checkpoints say all of it).
TRAINING_CLAIMS = ("trained instance", "obtained by training",
                   "trained on ImageNet", "ImageNet (ILSVRC-2012-CLS)",
                   "dataset: imagenet", "original training",
                   "classes of the original", "was trained with")
BIN = os.path.dirname(sys.executable)
V1, V2 = "mobilenet_v1_025_128", "mobilenet_v2_035_96"


def _binary(name, *args):
  result = subprocess.run([os.path.join(BIN, name), *args],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  return result


def _claims(text):
  flat = " ".join(text.split())
  return [claim for claim in TRAINING_CLAIMS
          if re.search(rf"\b{re.escape(claim)}", flat)]


def _without_marker(prefix, target):
  """A copy of the checkpoint at `prefix` without slimhub's untrained
  marker, at `target`: a checkpoint slimhub cannot identify."""
  reader = tf.train.load_checkpoint(prefix)
  names = sorted(set(reader.get_variable_to_shape_map())
                 - {deterministic.UNTRAINED_MARKER})
  os.makedirs(os.path.dirname(target), exist_ok=True)
  tf.raw_ops.SaveV2(prefix=target, tensor_names=names,
                    shape_and_slices=[""] * len(names),
                    tensors=[reader.get_tensor(name) for name in names])
  return target


def _module_files(output, handle):
  """(card text, metadata) of a regenerated module."""
  with open(output / f"{handle}.md") as f:
    card = f.read()
  tfhub_doc_checks.check_card(card, output / f"{handle}.md", output)
  with open(output / handle / export.METADATA_FILE) as f:
    return card, json.load(f)


@pytest.fixture(scope="module")
def v2_checkpoints(tmp_path_factory):
  """(checkpoint directory, marked prefix, unmarked prefix):
  mobilenet_v2_035_96's deterministic checkpoint (seed 2), and a copy with
  the marker stripped at the catalogue's path in the checkpoint directory."""
  root = tmp_path_factory.mktemp("v2")
  marked = make_checkpoint.make_checkpoint(V2, 2, str(root / "marked.ckpt"))
  return root / "ckpts", marked, _without_marker(
      marked, str(root / "ckpts" / catalog.find(V2).checkpoint))


def test_cards_and_metadata_say_untrained_or_claim_nothing(
    tmp_path, v2_checkpoints):
  """One regeneration: a slimhub-make-checkpoint checkpoint gives a card and
  metadata that say "untrained" with the seed and claim no training; an
  unmarked checkpoint gives neither the note nor a claim."""
  checkpoint_dir = v2_checkpoints[0]
  _binary("slimhub-make-checkpoint", f"--net={V1}", "--seed=7",
          f"--checkpoint_dir={checkpoint_dir}")
  output = tmp_path / "out"
  marked = f"google/imagenet/{V1}/feature_vector/1"
  unmarked = f"google/imagenet/{V2}/classification/1"
  _binary("slimhub-regenerate", f"--checkpoint_dir={checkpoint_dir}",
          f"--output_dir={output}", "--versions=1", "--jobs=2",
          f"--handles={V1}/feature_vector,{V2}/classification")

  card, metadata = _module_files(output, marked)
  lines = card.splitlines()
  assert "UNTRAINED" in lines[1] and "seed 7" in lines[1]
  headings = [line for line in lines if line.startswith("## ")]
  assert headings[0] == "## Untrained weights"
  assert "NOT trained" in card and "seed 7" in card.split("## Overview")[0]
  assert not _claims(card), _claims(card)
  assert list(metadata)[:3] == ["weights", "untrained_seed", "training_note"]
  assert metadata["weights"] == "untrained"
  assert metadata["untrained_seed"] == 7
  assert metadata["training_note"].startswith("Untrained: ")
  assert not _claims(json.dumps(metadata))
  # The marker travelled with the checkpoint and stayed out of the module.
  module_keys = {name for name, _ in tf.train.list_variables(
      str(output / marked / "variables" / "variables"))}
  assert deterministic.UNTRAINED_MARKER not in module_keys

  card, metadata = _module_files(output, unmarked)
  assert "untrained" not in card.lower()
  assert "untrained" not in json.dumps(list(metadata.values())).lower()
  assert not _claims(card), _claims(card)
  assert "makes no claim about how they were trained" in " ".join(
      card.split())
  assert metadata["weights"] == "unidentified"
  assert metadata["untrained_seed"] is None
  assert metadata["training_note"] == ""
  assert metadata["published_checkpoint"] is None


def test_a_checkpoint_stated_published_keeps_the_training_text(
    tmp_path, v2_checkpoints):
  """checkpoint_source=published (slimhub-export --checkpoint_source): the
  card cites the published checkpoint and its ImageNet training; a marked
  checkpoint cannot be stated published."""
  target = tmp_path / "module"
  _, marked, unmarked = v2_checkpoints
  export.export_module(V2, "classification", 1, unmarked,
                       str(target), checkpoint_source="published")
  with open(target / export.METADATA_FILE) as f:
    metadata = json.load(f)
  entry = catalog.find(V2)
  assert metadata["weights"] == "published"
  assert metadata["published_checkpoint"] == entry.source_checkpoint
  card = model_cards.render(entry, "classification", 1,
                            model_cards.ModuleFacts.from_metadata(metadata))
  tfhub_doc_checks.check_card(card)
  _assert_all_in(card, [
      "ImageNet (ILSVRC-2012-CLS) classification with MobileNet V2",
      "<!-- dataset: imagenet-ilsvrc-2012-cls -->", "a trained instance",
      f"[`{entry.source_checkpoint}`]({entry.tarball_url})",
      "obtained by training for image classification on ImageNet"])
  assert "untrained" not in card.lower()
  with pytest.raises(export.ExportError, match="contradicts the checkpoint: "
                     "slimhub-make-checkpoint wrote it with untrained values "
                     r"\(seed 2\)"):
    export.identify_weights(entry, marked, "published")


def test_training_note_describes_unidentified_weights():
  entry = catalog.find(V2)
  weights = provenance.identify(entry, None, training_note="Fine-tuned on "
                                "flowers.")
  text = model_cards.render(entry, "feature_vector", 5,
                            _facts(entry, "feature_vector", 5,
                                   weights=weights))
  _assert_all_in(text, ["Fine-tuned on flowers.",
                        "makes no claim about how they were trained"])
  assert not _claims(text)
  with pytest.raises(provenance.ProvenanceError, match="no published "
                     "checkpoint for inaturalist/inception_v3"):
    provenance.identify(catalog.find("inaturalist/inception_v3"), None,
                        "published")
