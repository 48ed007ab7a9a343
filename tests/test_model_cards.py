"""Model cards: tfhub.dev's documentation checks on every catalogue module,
the section layout of each version, and the facts of Google's pages for
pnasnet_large, nasnet_large and inception_v2."""

import re

import pytest

import tfhub_doc_checks
from slimhub import catalog
from slimhub import provenance
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
    assert entry.architecture in model_cards.ARCHITECTURES, entry.name


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
