"""Model cards: the tfhub.dev documentation page of a module, as Markdown.

    text = render(entry, "feature_vector", 3, ModuleFacts.from_metadata(md))

A card follows the format of Google's pages for these modules (first line
``# Module <handle>``, a one-line description, ``<!-- key: value -->``
metadata, then Overview / Training / Usage / Fine-tuning / Changelog, with
``hub.Module for TF1`` or ``TF2 SavedModel`` first from version 3 on).
What a card says comes from the catalogue (entry, version rules), from the
architecture table below (papers, cells, filters, checkpoint pages) and from
the built module's own metadata (feature and class counts, input size,
batch norm momentum, where the weights come from), so it describes the
module that was actually written.

Only a card of the catalogue's published checkpoint (provenance.PUBLISHED)
cites a training and its dataset. Untrained weights are announced in the
first section; unidentified weights get no claim (docs/cards.md).
"""

import dataclasses
import textwrap
from typing import Optional

from slimhub import catalog
from slimhub.build import provenance

TFHUB_URL = "https://tfhub.dev"
LABELS_URL = ("https://storage.googleapis.com/download.tensorflow.org/data/"
              "ImageNetLabels.txt")
_SIGNATURES_DOC = "https://www.tensorflow.org/hub/common_signatures/images"
_TF1_FINE_TUNING_DOC = ("https://www.tensorflow.org/hub/tf1_hub_module"
                        "#fine-tuning")
_TF2_DOC = "https://www.tensorflow.org/hub/tf2_saved_model"
_SLIM_MODELS = "https://github.com/tensorflow/models/blob/master/research/slim"
_ARXIV = "https://arxiv.org/abs"

# The tfhub.dev metadata values of each collection.
_DATASETS = {"imagenet": ("imagenet-ilsvrc-2012-cls",
                          "ImageNet (ILSVRC-2012-CLS)"),
             "inaturalist": ("inaturalist-inat-2017",
                             "iNaturalist (iNat) 2017")}
TASKS = {catalog.FEATURE_VECTOR: "image-feature-vector",
         catalog.CLASSIFICATION: "image-classification"}
FORMATS = {catalog.TF1_HUB: "hub", catalog.TF2_SAVED_MODEL: "saved_model_2"}


@dataclasses.dataclass(frozen=True)
class Paper:
  authors: str
  title: str
  arxiv: str
  year: int

  def citation(self):
    link = f"[\"{self.title}\"]({_ARXIV}/{self.arxiv})"
    return f"  * {self.authors}: {link}, {self.year}."


@dataclasses.dataclass(frozen=True)
class Architecture:
  """What a model card says about one architecture.

  name: display name ("PNASNet-5 (large)").
  tfhub_id: the tfhub.dev `network-architecture` id, or None where
    tfhub.dev has none (the card then omits the key).
  background: ((paragraph, papers), ...): the prose that introduces the
    architecture, each paragraph followed by the papers it cites.
  build: how the Slim implementation is configured; formatted with
    {slim}, {depth} and {size}.
  weights_page: (link text, URL) of the page that lists the checkpoint;
    empty when no checkpoint was published.
  drop_path_keep_prob: the (P)NASNet path-dropout keep probability of the
    train graph, or None for nets without path dropout.
  batch_norm: False for nets without batch normalization (VGG), whose
    cards say nothing about its momentum.
  """
  name: str
  tfhub_id: Optional[str]
  background: tuple
  build: str
  weights_page: tuple
  drop_path_keep_prob: Optional[float] = None
  batch_norm: bool = True


_SLIM_README = ("TF-Slim's pre-trained models",
                f"{_SLIM_MODELS}/README.md#pre-trained-models")

_GOOGLENET = Paper(
    "Christian Szegedy, Wei Liu, Yangqing Jia, Pierre Sermanet, Scott Reed, "
    "Dragomir Anguelov, Dumitru Erhan, Vincent Vanhoucke, Andrew Rabinovich",
    "Going deeper with convolutions", "1409.4842", 2014)
_BATCH_NORM = Paper(
    "Sergey Ioffe, Christian Szegedy",
    "Batch Normalization: Accelerating Deep Network Training by Reducing "
    "Internal Covariate Shift", "1502.03167", 2015)
_INCEPTION_V3 = Paper(
    "Christian Szegedy, Vincent Vanhoucke, Sergey Ioffe, Jonathon Shlens, "
    "Zbigniew Wojna", "Rethinking the Inception Architecture for Computer "
    "Vision", "1512.00567", 2015)
_INCEPTION_V4 = Paper(
    "Christian Szegedy, Sergey Ioffe, Vincent Vanhoucke, Alex Alemi",
    "Inception-v4, Inception-ResNet and the Impact of Residual Connections "
    "on Learning", "1602.07261", 2016)
_RESNET = Paper("Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun",
                "Deep Residual Learning for Image Recognition", "1512.03385",
                2015)
_RESNET_V2 = Paper("Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun",
                   "Identity Mappings in Deep Residual Networks", "1603.05027",
                   2016)
_VGG = Paper("Karen Simonyan, Andrew Zisserman",
             "Very Deep Convolutional Networks for Large-Scale Image "
             "Recognition", "1409.1556", 2014)
_MOBILENET_V1 = Paper(
    "Andrew G. Howard, Menglong Zhu, Bo Chen, Dmitry Kalenichenko, Weijun "
    "Wang, Tobias Weyand, Marco Andreetto, Hartwig Adam",
    "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
    "Applications", "1704.04861", 2017)
_MOBILENET_V2 = Paper(
    "Mark Sandler, Andrew Howard, Menglong Zhu, Andrey Zhmoginov, "
    "Liang-Chieh Chen", "Inverted Residuals and Linear Bottlenecks: Mobile "
    "Networks for Classification, Detection and Segmentation", "1801.04381",
    2018)
_MOBILENET_V3 = Paper(
    "Andrew Howard, Mark Sandler, Grace Chu, Liang-Chieh Chen, Bo Chen, "
    "Mingxing Tan, Weijun Wang, Yukun Zhu, Ruoming Pang, Vijay Vasudevan, "
    "Quoc V. Le, Hartwig Adam", "Searching for MobileNetV3", "1905.02244",
    2019)
_NAS = Paper("Barret Zoph, Quoc V. Le",
             "Neural Architecture Search with Reinforcement Learning",
             "1611.01578", 2017)
_NASNET = Paper("Barret Zoph, Vijay Vasudevan, Jonathon Shlens, Quoc V. Le",
                "Learning Transferable Architectures for Scalable Image "
                "Recognition", "1707.07012", 2017)
_PNASNET = Paper(
    "Chenxi Liu, Barret Zoph, Jonathon Shlens, Wei Hua, Li-Jia Li, Li Fei-Fei, "
    "Alan Yuille, Jonathan Huang, Kevin Murphy",
    "Progressive Neural Architecture Search", "1712.00559", 2017)

_AMOEBANET = Paper("Esteban Real, Alok Aggarwal, Yanping Huang, Quoc V. Le",
                   "Regularized Evolution for Image Classifier Architecture "
                   "Search", "1802.01548", 2018)

_SLIM_BUILD = "It is built with the TF-Slim implementation `{slim}`."
_MOBILENET_SIZES = (
    "MobileNets trade accuracy for speed through a depth multiplier, which "
    "scales the number of features in every convolutional layer, and "
    "through the input resolution they are trained for.")
_FINEGRAIN = (
    " Depths are rounded to multiples of 8 (an optimization the paper does "
    "not describe), and a depth multiplier below 1.0 is not applied to the "
    "last convolutional layer, which yields the feature vector.")


def _inception(name, tfhub_id, background):
  return Architecture(name=name, tfhub_id=tfhub_id, background=background,
                      build=_SLIM_BUILD, weights_page=_SLIM_README)


def _resnet(version, depth):
  if version == 1:
    background = ((f"ResNet V1 (the original ResNet) is a family of image "
                   "classification networks of varying depth, built from "
                   "residual blocks, originally published by", (_RESNET,)),)
  else:
    background = (
        ("ResNet V2 is a family of image classification networks of varying "
         "depth. It builds on the residual networks originally published by",
         (_RESNET,)),
        ("Its full pre-activation variant, which applies batch normalization "
         "and ReLU before every weight layer, comes from", (_RESNET_V2,)))
  return Architecture(
      name=f"ResNet V{version} {depth}", tfhub_id=f"resnet-v{version}-{depth}",
      background=background,
      build=f"It is built with the TF-Slim implementation `{{slim}}`, "
      f"{depth} layers deep.", weights_page=_SLIM_README)


def _vgg(depth):
  return Architecture(
      name=f"VGG {depth}", tfhub_id=None,
      background=((f"VGG {depth} is a plain stack of 3x3 convolutions "
                   "followed by three fully connected layers (here applied "
                   "as convolutions), originally published by", (_VGG,)),),
      build=_SLIM_BUILD + " It has no batch normalization.",
      weights_page=_SLIM_README, batch_norm=False)


_NASNET_FAMILY = dict(
    background=(("NASNet-A is a family of convolutional networks for image "
                 "classification whose cells (layers) were found by Neural "
                 "Architecture Search. NAS and NASNet were originally "
                 "published by", (_NAS, _NASNET)),),
    cells=("{cells} Normal Cells, starting with {filters} convolutional "
           "filters after the \"ImageNet stem\""),
    weights_page=("NASNet's pre-trained models",
                  f"{_SLIM_MODELS}/nets/nasnet/README.md"))
_PNASNET_FAMILY = dict(
    background=(("PNASNet-5 is a family of convolutional networks for image "
                 "classification whose cells (layers) were found by "
                 "Progressive Neural Architecture Search. It reuses "
                 "techniques of its precursor NASNet, among them "
                 "regularization by path dropout. PNASNet and NASNet were "
                 "originally published by", (_PNASNET, _NASNET)),),
    cells=("{cells} cells (plus 2 for the \"ImageNet stem\"), starting with "
           "{filters} convolutional filters after the stem"),
    weights_page=_SLIM_README)


def _searched(family, name, tfhub_id, cells, filters, keep_prob):
  """A (P)NASNet size: its cell count, filters and path-dropout rate."""
  return Architecture(
      name=name, tfhub_id=tfhub_id, background=family["background"],
      build=("It is built with the TF-Slim implementation `{slim}` for "
             "ImageNet: " + family["cells"].format(cells=cells,
                                                   filters=filters)
             + ", at an input size of {size}x{size} pixels."),
      weights_page=family["weights_page"], drop_path_keep_prob=keep_prob)


def _mobilenet_v3(size_class):
  return Architecture(
      name=f"MobileNet V3 ({size_class})", tfhub_id="mobilenet-v3",
      background=((
          "MobileNet V3 is a family of networks for efficient on-device "
          "image classification and related tasks, originally published by",
          (_MOBILENET_V3,)), (
              "Like other MobileNets it scales its depth (number of "
              "features) by a multiplier; it also comes in a large and a "
              "small size for high and low resource budgets. All published "
              "checkpoints were trained at 224x224 pixels.", ())),
      build=(f"It is built with the TF-Slim implementation `mobilenet_v3` "
             f"as the {size_class} network with a depth multiplier of "
             "{depth}." + _FINEGRAIN),
      weights_page=("MobileNet V3 pre-trained models",
                    f"{_SLIM_MODELS}/nets/mobilenet/README.md"))


ARCHITECTURES = {
    "inception-v1": _inception(
        "Inception V1", "inception-v1",
        (("Inception V1 (also known as GoogLeNet) is an image classification "
          "network originally published by", (_GOOGLENET,)),)),
    "inception-v2": _inception(
        "Inception V2", "inception-v2",
        (("Inception V2 is an image classification network. It builds on "
          "the Inception architecture originally published by", (_GOOGLENET,)),
         ("Inception V2 owes its more powerful architecture to batch "
          "normalization. Both were introduced by", (_BATCH_NORM,)))),
    "inception-v3": _inception(
        "Inception V3", "inception-v3",
        (("Inception V3 is an image classification network originally "
          "published by", (_INCEPTION_V3,)),)),
    "inception-v4": _inception(
        "Inception V4", "inception-v4",
        (("Inception V4 is an image classification network originally "
          "published by", (_INCEPTION_V4,)),)),
    "inception-resnet-v2": _inception(
        "Inception ResNet V2", "inception-resnet-v2",
        (("Inception ResNet V2 combines Inception blocks with residual "
          "connections; it was originally published by", (_INCEPTION_V4,)),)),
    **{f"resnet-v{version}-{depth}": _resnet(version, depth)
       for version in (1, 2) for depth in (50, 101, 152)},
    "vgg-16": _vgg(16),
    "vgg-19": _vgg(19),
    "mobilenet-v1": Architecture(
        name="MobileNet V1", tfhub_id="mobilenet-v1",
        background=(("MobileNet V1 is a family of networks for efficient "
                     "on-device image classification, originally published "
                     "by", (_MOBILENET_V1,)), (_MOBILENET_SIZES, ())),
        build=("It is built with the TF-Slim implementation `{slim}` with a "
               "depth multiplier of {depth} and an input size of "
               "{size}x{size} pixels."),
        weights_page=("MobileNet V1 pre-trained models",
                      f"{_SLIM_MODELS}/nets/mobilenet_v1.md")),
    "mobilenet-v2": Architecture(
        name="MobileNet V2", tfhub_id="mobilenet-v2",
        background=(("MobileNet V2 is a family of networks for efficient "
                     "on-device image classification and related tasks, "
                     "originally published by", (_MOBILENET_V2,)),
                    (_MOBILENET_SIZES, ())),
        build=("It is built with the TF-Slim implementation `mobilenet_v2` "
               "with a depth multiplier of {depth} and an input size of "
               "{size}x{size} pixels." + _FINEGRAIN),
        weights_page=("MobileNet V2 pre-trained models",
                      f"{_SLIM_MODELS}/nets/mobilenet/README.md")),
    "mobilenet-v3-large": _mobilenet_v3("large"),
    "mobilenet-v3-small": _mobilenet_v3("small"),
    "nasnet-a-large": _searched(_NASNET_FAMILY, "NASNet-A (large)",
                                "nasnet-a-large", 18, 168, 0.7),
    "nasnet-a-mobile": _searched(_NASNET_FAMILY, "NASNet-A (mobile)",
                                 "nasnet-a-mobile", 12, 44, 1.0),
    "pnasnet-5-large": _searched(_PNASNET_FAMILY, "PNASNet-5 (large)",
                                 "pnasnet-5-large", 12, 216, 0.6),
    "pnasnet-5-mobile": _searched(_PNASNET_FAMILY, "PNASNet-5 (mobile)", None,
                                  9, 54, 1.0),
    "amoebanet-a-n18-f448": Architecture(
        name="AmoebaNet-A (N=18, F=448)", tfhub_id="amoebanet-a-n18-f448",
        background=(("AmoebaNet-A is an image classification network whose "
                     "cells were found by an evolutionary architecture "
                     "search, originally published by", (_AMOEBANET,)),),
        build=("It is built with the tensorflow/tpu implementation, with "
               "N=18 Normal Cells per stack and F=448 filters, at an input "
               "size of {size}x{size} pixels."),
        weights_page=()),
}


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
  name = ARCHITECTURES[entry.architecture].name
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
  tfhub_id = ARCHITECTURES[entry.architecture].tfhub_id
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
    self.architecture = ARCHITECTURES[entry.architecture]
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
    background = [text + ("\n\n" + "\n".join(p.citation() for p in papers)
                          if papers else "")
                  for text, papers in self.architecture.background]
    build = self.architecture.build.format(
        slim=self.entry.net, depth=self.entry.depth_multiplier,
        size=self.facts.image_size)
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
    keep_prob = self.architecture.drop_path_keep_prob
    if keep_prob is None:
      return ""
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
