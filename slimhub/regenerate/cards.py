"""Model cards: the tfhub.dev documentation page of a module, as Markdown.

    text = render(entry, "feature_vector", 3, ModuleFacts.from_metadata(md))

A card follows the format of Google's pages for these modules (first line
``# Module <handle>``, a one-line description, ``<!-- key: value -->``
metadata, then Overview / Training / Usage / Fine-tuning / Changelog, with
``hub.Module for TF1`` or ``TF2 SavedModel`` first from version 3 on).
What a card says comes from the catalogue (entry, version rules, and the
architecture facts of slimhub.architectures: papers, prose, checkpoint
pages), from the Slim net's config (cells, filters, path dropout: the
numbers the exporter builds the graph from) and from the built module's own
metadata (feature and class counts, input size, batch norm momentum, where
the weights come from), so it describes the module that was actually
written. This module only renders.

Only a card of the catalogue's published checkpoint (provenance.PUBLISHED)
cites a training and its dataset. Untrained weights are announced in the
first section; unidentified weights get no claim (docs/cards.md).
"""

import dataclasses
import textwrap
from typing import Optional

from slimhub import architectures
from slimhub import catalog
from slimhub.build import provenance

TFHUB_URL = "https://tfhub.dev"
LABELS_URL = ("https://storage.googleapis.com/download.tensorflow.org/data/"
              "ImageNetLabels.txt")
_SIGNATURES_DOC = "https://www.tensorflow.org/hub/common_signatures/images"
_TF1_FINE_TUNING_DOC = ("https://www.tensorflow.org/hub/tf1_hub_module"
                        "#fine-tuning")
_TF2_DOC = "https://www.tensorflow.org/hub/tf2_saved_model"

# The tfhub.dev metadata values of each collection.
_DATASETS = {"imagenet": ("imagenet-ilsvrc-2012-cls",
                          "ImageNet (ILSVRC-2012-CLS)"),
             "inaturalist": ("inaturalist-inat-2017",
                             "iNaturalist (iNat) 2017")}
TASKS = {catalog.FEATURE_VECTOR: "image-feature-vector",
         catalog.CLASSIFICATION: "image-classification"}
FORMATS = {catalog.TF1_HUB: "hub", catalog.TF2_SAVED_MODEL: "saved_model_2"}


@dataclasses.dataclass(frozen=True)
class ModuleFacts:
  """What the built module says about itself (its slimhub metadata)."""
  num_features: int
  num_classes: Optional[int]
  label_offset: Optional[int]
  image_size: int
  variable_size: bool
  batch_norm_momentum: Optional[float]
  weights: provenance.Weights
  checkpoint: str = ""

  @classmethod
  def from_metadata(cls, metadata):
    return cls(num_features=metadata["num_features"],
               num_classes=metadata["num_classes"],
               label_offset=metadata["label_offset"],
               image_size=metadata["default_image_size"][0],
               variable_size=metadata["variable_input_size"],
               batch_norm_momentum=metadata["batch_norm_momentum_default"],
               weights=provenance.Weights.from_metadata(metadata),
               checkpoint=metadata.get("checkpoint") or "")


def display_name(entry):
  """"MobileNet V1 (depth multiplier 0.25)", "PNASNet-5 (large)"."""
  name = architectures.ARCHITECTURES[entry.architecture].name
  if entry.depth_multiplier is None:
    return name
  if name.endswith(")"):
    return f"{name[:-1]}, depth multiplier {entry.depth_multiplier})"
  return f"{name} (depth multiplier {entry.depth_multiplier})"


def metadata_lines(entry, kind, version, trained):
  """The <!-- key: value --> lines, in the order of Google's v5 pages;
  `trained`: the weights are the published ones, trained on the dataset."""
  spec = catalog.version_spec(entry, version)
  internal = version == 5 and entry.versions[0] != 5
  dataset = [("dataset", _DATASETS[entry.collection][0])] if trained else []
  lines = [("asset-path", "internal" if internal else "legacy"), *dataset,
           ("fine-tunable", "false" if entry.quantized else "true"),
           ("format", FORMATS[spec.format]),
           ("task", TASKS[kind])]
  tfhub_id = architectures.ARCHITECTURES[entry.architecture].tfhub_id
  if tfhub_id:
    lines.append(("network-architecture", tfhub_id))
  return [f"<!-- {key}: {value} -->" for key, value in lines]


def _description(entry, kind, weights):
  dataset = _DATASETS[entry.collection][1]
  name = display_name(entry)
  if weights.origin == provenance.PUBLISHED:
    if kind == catalog.FEATURE_VECTOR:
      return f"Feature vectors of images with {name} trained on {dataset}."
    return f"{dataset} classification with {name}."
  what = ("Feature vectors of images" if kind == catalog.FEATURE_VECTOR
          else "Image classification")
  if weights.origin == provenance.UNTRAINED:
    return (f"{what} with {name}, UNTRAINED: deterministic weights from seed "
            f"{weights.seed}, for testing only.")
  return f"{what} with {name}."


def _citation(paper):
  return (f"  * {paper.authors}: [\"{paper.title}\"]({paper.url}), "
          f"{paper.year}.")


def _net_config(entry):
  """The config the Slim net of `entry` is built from (SlimNet.config), or
  None: for an unsupported entry, which has no net."""
  if entry.unsupported:
    return None
  # Imported here: the mirror reads this module's URLs without TensorFlow.
  from slimhub import slim_nets  # pylint: disable=g-import-not-at-top
  return slim_nets.get(entry.net).config


def _paragraphs(*paragraphs):
  return "\n\n".join(p for p in paragraphs if p)


def _wrap(block):
  """`block` with its prose paragraphs and list items wrapped at 80
  columns; headings, metadata and code stay as they are."""
  out = []
  for paragraph in block.split("\n\n"):
    if paragraph.startswith(("#", "<!--", "```")):
      out.append(paragraph)
    elif paragraph.startswith("  * "):
      out.append("\n".join(
          textwrap.fill(item, 80, subsequent_indent="    ",
                        break_on_hyphens=False, break_long_words=False)
          for item in paragraph.split("\n")))
    else:
      out.append(textwrap.fill(paragraph, 80, break_on_hyphens=False,
                               break_long_words=False))
  return "\n\n".join(out)


class _Card:
  """One card's sections; `module` is "model" for TF2 and "module" for TF1,
  as Google's pages call them."""

  def __init__(self, entry, kind, version, facts, publisher,
               checkpoint_sha256):
    self.entry, self.kind, self.version, self.facts = (
        entry, kind, version, facts)
    self.spec = catalog.version_spec(entry, version)
    self.tf2 = self.spec.format == catalog.TF2_SAVED_MODEL
    self.module = "model" if self.tf2 else "module"
    self.handle = entry.handle(kind, version, publisher)
    self.url = f"{TFHUB_URL}/{self.handle}"
    self.architecture = architectures.ARCHITECTURES[entry.architecture]
    self.net_config = _net_config(entry)
    self.checkpoint_sha256 = checkpoint_sha256
    self.classify = kind == catalog.CLASSIFICATION
    self.weights = facts.weights
    self.trained = self.weights.origin == provenance.PUBLISHED

  def sibling(self):
    other = (catalog.FEATURE_VECTOR if self.classify
             else catalog.CLASSIFICATION)
    if other not in self.entry.kinds:
      return ""
    handle = self.handle.replace(f"/{self.kind}/", f"/{other}/")
    link = f"[`{handle}`]({TFHUB_URL}/{handle})"
    if self.classify:
      return (f"To turn images into feature vectors only, use {link} "
              "instead and save the space of the classification layer.")
    if not self.trained:
      return (f"For the full network with its classification layer, use "
              f"{link} instead.")
    return (f"For the full network with the classification it was trained "
            f"for, use {link} instead.")

  def untrained_section(self):
    """The first section of a card of untrained weights, so that no reader
    mistakes the module for a model."""
    if self.weights.origin != provenance.UNTRAINED:
      return ""
    return (f"## Untrained weights\n\nThe weights of this {self.module} are "
            "NOT trained: slimhub-make-checkpoint derived them from each "
            "variable's name and shape with seed "
            f"{self.weights.seed}. The {self.module} computes the network's "
            "graph, but its outputs mean nothing; use it to test a pipeline, "
            "never to classify or describe images.")

  def format_section(self):
    if self.tf2:
      return ("## TF2 SavedModel\n\nThis is a [SavedModel in TensorFlow 2 "
              f"format]({_TF2_DOC}). Using it requires TensorFlow 2 (or "
              "1.15) and TensorFlow Hub 0.5.0 or newer.")
    if self.version >= 3:
      return ("## hub.Module for TF1\n\nThis is a `hub.Module` for "
              "TensorFlow 1 (tensorflow_hub 0.15 or older). TensorFlow 2 "
              "can only run it for inference, with `hub.load`.")
    return ""

  def overview(self):
    background = [text + ("\n\n" + "\n".join(map(_citation, papers))
                          if papers else "")
                  for text, papers in self.architecture.background]
    build = self.architecture.build.format(
        slim=self.entry.net, depth=self.entry.depth_multiplier,
        size=self.facts.image_size, config=self.net_config)
    packaged = (f"[image classification]({_SIGNATURES_DOC}#classification)"
                if self.classify else "[feature vectors of images]"
                f"({_SIGNATURES_DOC}#feature-vector)")
    if self.trained:
      instance = "a trained instance of the network"
      if self.classify:
        packaged += " that the network was trained on"
    elif self.weights.origin == provenance.UNTRAINED:
      instance = "an untrained instance of the network (see above)"
    else:
      instance = "an instance of the network"
    contents = (f"This {self.module} contains {instance}, packaged for "
                f"{packaged}. {self.sibling()}")
    return "## Overview\n\n" + _paragraphs(*background, build,
                                            self._quantization_note(),
                                            contents.strip())

  def _quantization_note(self):
    if not self.entry.quantized:
      return ""
    low, high = self.spec.input_quant_range
    origin = ("The network was trained with quantization-aware training "
              "(`tf.contrib.quantize`)." if self.trained else
              "The network is the graph of quantization-aware training "
              "(`tf.contrib.quantize`).")
    return (f"{origin} This module computes what its eval "
            "graph computed: batch normalization folded into the "
            "convolutions, 8-bit fake quantization of the weights and of "
            "every activation, and of the input image after scaling to "
            f"[-1, 1] (over [{low:g}, {high:g}]). That is what an all-integer "
            "(uint8) TensorFlow Lite model computes, and the purpose of this "
            "module.")

  def _tflite_note(self):
    if not self.entry.quantized:
      return ""
    return ("To get the all-integer TensorFlow Lite model (uint8 input "
            "`q = 255 * x`, uint8 output), convert the regenerated copy "
            f"with\n\n```\nslimhub-tflite --module_dir={self.version} "
            "--output=model.tflite\n```")

  def _origin(self):
    """What the card can say about where the weights come from."""
    entry, weights = self.entry, self.weights
    if weights.origin == provenance.UNTRAINED:
      return (f"None: the weights are deterministic values from seed "
              f"{weights.seed}, not the result of any training.")
    if weights.origin == provenance.UNIDENTIFIED:
      named = f" `{self.facts.checkpoint}`" if self.facts.checkpoint else ""
      known = ("It was not identified as the catalogue's published "
               "checkpoint" if entry.source_checkpoint else
               "The catalogue names no published checkpoint for this module")
      return (f"The weights come from the checkpoint{named}. {known}, and "
              "this card makes no claim about how they were trained.")
    if entry.source_checkpoint:
      text, link = self.architecture.weights_page
      return (f"The checkpoint exported into this {self.module} is "
              f"[`{entry.source_checkpoint}`]({entry.tarball_url}) from "
              f"[{text}]({link}). Its "
              "weights were obtained by training for image classification "
              f"on {_DATASETS[entry.collection][1]}.")
    return "Google published no checkpoint for these weights."

  def training(self):
    note = "" if self.weights.origin == provenance.UNTRAINED else (
        self.weights.note)
    hashed = ""
    if self.checkpoint_sha256:
      import slimhub  # pylint: disable=g-import-not-at-top
      hashed = (f"slimhub {slimhub.__version__} regenerated this "
                f"{self.module} from a checkpoint whose files hash to "
                f"SHA-256 `{self.checkpoint_sha256}`; the `manifest.json` "
                "of the regeneration lists the hash of every file.")
    return "## Training\n\n" + _paragraphs(self._origin(), note, hashed)

  def _input_note(self):
    size = f"{self.facts.image_size} x {self.facts.image_size}"
    if self.facts.variable_size:
      size_text = (f"The expected input size is `height` x `width` = {size} "
                   "pixels by default, but other input sizes are possible "
                   "(within limits).")
    else:
      size_text = (f"The input size is fixed to `height` x `width` = {size} "
                   "pixels.")
    return ("The input `images` are expected to hold RGB color values in the "
            f"range [0,1], following the [common image input]"
            f"({_SIGNATURES_DOC}#input) conventions. " + size_text)

  def _labels_note(self):
    facts = self.facts
    if self.trained:
      text = (f"The indices into the logits are the `num_classes` = "
              f"{facts.num_classes} classes of the original training; "
              f"[ImageNetLabels.txt]({LABELS_URL}) maps them to labels")
    else:
      text = (f"The logits have `num_classes` = {facts.num_classes} entries, "
              "laid out as in the Slim checkpoints of this net; where those "
              f"are ImageNet's, [ImageNetLabels.txt]({LABELS_URL}) names them")
    if facts.label_offset:
      return (text + ". This checkpoint has no \"background\" class: logit "
              f"*i* is line *i+{facts.label_offset}* of that file.")
    return (text + " (class 0 is \"background\", followed by the 1000 "
            "ImageNet classes).")

  def _tf1_usage(self):
    output = "logits" if self.classify else "features"
    shape = "num_classes" if self.classify else "num_features"
    signature = ("image_classification" if self.classify
                 else "image_feature_vector")
    snippet = (f'module = hub.Module("{self.url}")\n'
               "height, width = hub.get_expected_image_size(module)\n"
               "images = ...  # A batch of images, [batch_size, height, "
               "width, 3].\n"
               f"{output} = module(images)  # {output.capitalize()}, "
               f"[batch_size, {shape}].")
    lines = [
        f"This {self.module} implements the common signature for "
        + (f"[image classification]({_SIGNATURES_DOC}#classification)"
           if self.classify else
           f"[image feature vectors]({_SIGNATURES_DOC}#feature-vector)")
        + ". It can be used with the `hub.Module` API like\n\n"
        f"```python\n{snippet}\n```",
        f"The signature `{signature}` returns the same output plus the "
        "intermediate activations."]
    if self.classify:
      lines += [self._labels_note(),
                "This module can also compute image feature vectors, with "
                "the signature name `image_feature_vector`."]
    else:
      lines.append(f"Each feature vector has `num_features` = "
                   f"{self.facts.num_features} entries.")
    return lines

  def _tf2_usage(self):
    size = self.facts.image_size
    if self.classify:
      layers = f'    hub.KerasLayer("{self.url}")'
    else:
      layers = (f'    hub.KerasLayer("{self.url}",\n'
                "                   trainable=False),  # True fine-tunes, "
                "see below.\n"
                "    tf.keras.layers.Dense(num_classes, "
                "activation=\"softmax\")")
    lines = [f"This {self.module} can be used with `hub.KerasLayer` like\n\n"
             f"```python\nm = tf.keras.Sequential([\n{layers}\n])\n"
             f"m.build([None, {size}, {size}, 3])  # Batch input shape.\n```",
             f"It *cannot* be loaded with the `hub.Module` API of "
             "TensorFlow 1."]
    if self.classify:
      lines.append("The output is a batch of logits. " + self._labels_note())
    else:
      lines.append(f"The output is a batch of feature vectors with "
                   f"`num_features` = {self.facts.num_features} entries "
                   "each, ready for a classifier as above.")
    return lines

  def usage(self):
    lines = self._tf2_usage() if self.tf2 else self._tf1_usage()
    lines += [self._input_note(),
              f"A copy regenerated by slimhub lives in the directory "
              f"`{self.version}/` next to this card; pass its path instead "
              "of the URL.", self._tflite_note()]
    return "## Usage\n\n" + _paragraphs(*lines)

  def _momentum_note(self):
    momentum = self.facts.batch_norm_momentum
    if not self.architecture.batch_norm:
      return ""
    if not self.spec.bn_hparams:
      return (f"Batch normalization keeps the momentum (decay) of the Slim "
              f"training recipe, {momentum}; from version 3 on it "
              f"defaults to {catalog.FINE_TUNING_BN_MOMENTUM} and can be "
              "set by the caller.")
    text = (f"The momentum (decay) of batch norm's moving averages defaults "
            f"to {momentum} for this {self.module}, to accelerate training on "
            "small datasets (or with huge batch sizes). Another value, say "
            "0.997, can be set ")
    if self.tf2:
      return text + (f"when loading the {self.module}:\n\n```python\n"
                     f'hub.KerasLayer("{self.url}",\n'
                     "               trainable=True, "
                     "arguments=dict(batch_norm_momentum=0.997))\n```")
    signature = ("image_classification" if self.classify
                 else "image_feature_vector") + "_with_bn_hparams"
    call = ("logits" if self.classify else "features") + " = module("
    return text + ("through the signature `" + signature + "`:\n\n```python\n"
                   f'module = hub.Module("{self.url}",\n'
                   '                    trainable=True, tags={"train"})\n'
                   f"{call}dict(images=images, batch_norm_momentum=0.997),\n"
                   f'{" " * len(call)}signature="{signature}")\n```')

  def _drop_path_note(self):
    if not self.architecture.drop_path:
      return ""
    keep_prob = self.net_config.drop_path_keep_prob
    if keep_prob == 1.0:
      return ("The Slim training recipe of this size of the network has no "
              "NASNet path dropout (keep probability 1.0), so fine-tuning "
              "has none either.")
    return ("NASNet path dropout stays at the final (maximal) rate of the "
            f"Slim training recipe, a keep probability of {keep_prob}; it is "
            "not scaled with the training steps of fine-tuning.")

  def fine_tuning(self):
    if self.entry.quantized:
      return ("## Fine-tuning\n\nThis module is for inference only and "
              "cannot be fine-tuned: it has no graph with tag set "
              "`{\"train\"}`, its batch normalization is folded into the "
              "convolutions, and its quantization ranges are fixed.")
    if self.tf2:
      how = (f"Consumers of this {self.module} can "
             f"[fine-tune]({_TF2_DOC}#fine-tuning) it by passing "
             "`trainable=True` to `hub.KerasLayer`.")
    else:
      how = (f"Consumers of this {self.module} can "
             f"[fine-tune]({_TF1_FINE_TUNING_DOC}) it. This requires the "
             "graph version with tag set `{\"train\"}`, which runs the "
             "network in training mode (batch statistics, dropout), and "
             "`trainable=True`.")
    overfit = ("However, fine-tuning through a large classification might "
               "be prone to overfit." if self.classify else "")
    return "## Fine-tuning\n\n" + _paragraphs(
        how, overfit, self._drop_path_note(), self._momentum_note())

  def changelog(self):
    if self.version == 1:
      return ""
    parts = ["## Changelog"]
    for version in self.entry.versions:
      if version > self.version:
        break
      items = catalog.version_spec(self.entry, version).changelog
      parts.append(f"#### Version {version}\n\n"
                   + "\n".join(f"  * {item}" for item in items))
    return "\n\n".join(parts)


def render(entry, kind, version, facts, publisher="google",
           checkpoint_sha256=None):
  """The Markdown model card of `entry` as `kind` at `version`."""
  card = _Card(entry, kind, version, facts, publisher, checkpoint_sha256)
  head = "\n".join([f"# Module {card.handle}",
                    _description(entry, kind, facts.weights), ""]
                   + metadata_lines(entry, kind, version, card.trained))
  sections = [card.untrained_section(), card.format_section(),
              card.overview(), card.training(),
              card.usage(), card.fine_tuning(), card.changelog()]
  return "\n\n".join([head] + [_wrap(section) for section in sections
                                if section]) + "\n"
