"""What the catalogue knows about each architecture: papers, tfhub.dev ids,
checkpoint pages and the prose that introduces the network.

    architecture = ARCHITECTURES[entry.architecture]

Every catalogue entry (catalog.Entry.architecture) names one key of
ARCHITECTURES. The model cards (slimhub.regenerate.cards) render these
facts; like timm's ``default_cfgs``, this is data that consumers read, not
code that writes text.

Numbers the nets define are not restated here: a ``build`` sentence names
them as fields of the net's config (``{config.num_cells}``), which the card
takes from the slim_nets registry, the config the exporter builds the graph
from. Input size and depth multiplier come from the catalogue entry.
"""

import dataclasses
from typing import Optional

SLIM_MODELS = "https://github.com/tensorflow/models/blob/master/research/slim"
ARXIV = "https://arxiv.org/abs"


@dataclasses.dataclass(frozen=True)
class Paper:
  authors: str
  title: str
  arxiv: str
  year: int

  @property
  def url(self):
    return f"{ARXIV}/{self.arxiv}"


@dataclasses.dataclass(frozen=True)
class Architecture:
  """What the catalogue says about one architecture.

  name: display name ("PNASNet-5 (large)").
  tfhub_id: the tfhub.dev `network-architecture` id, or None where
    tfhub.dev has none (the card then omits the key).
  background: ((paragraph, papers), ...): the prose that introduces the
    architecture, each paragraph followed by the papers it cites.
  build: how the Slim implementation is configured; a format string over
    {slim} (the net's name), {depth} (the entry's depth multiplier),
    {size} (the module's input size) and {config} (the net's
    SlimNet.config, e.g. {config.num_cells}).
  weights_page: (link text, URL) of the page that lists the checkpoint;
    empty when no checkpoint was published.
  drop_path: the train graph has (P)NASNet path dropout; its keep
    probability is the net's config.drop_path_keep_prob.
  batch_norm: False for nets without batch normalization (VGG), whose
    cards say nothing about its momentum.
  """
  name: str
  tfhub_id: Optional[str]
  background: tuple
  build: str
  weights_page: tuple
  drop_path: bool = False
  batch_norm: bool = True


_SLIM_README = ("TF-Slim's pre-trained models",
                f"{SLIM_MODELS}/README.md#pre-trained-models")

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
    cells=("{config.num_cells} Normal Cells, starting with "
           "{config.num_filters} convolutional filters after the "
           "\"ImageNet stem\""),
    weights_page=("NASNet's pre-trained models",
                  f"{SLIM_MODELS}/nets/nasnet/README.md"))
_PNASNET_FAMILY = dict(
    background=(("PNASNet-5 is a family of convolutional networks for image "
                 "classification whose cells (layers) were found by "
                 "Progressive Neural Architecture Search. It reuses "
                 "techniques of its precursor NASNet, among them "
                 "regularization by path dropout. PNASNet and NASNet were "
                 "originally published by", (_PNASNET, _NASNET)),),
    cells=("{config.num_cells} cells (plus 2 for the \"ImageNet stem\"), "
           "starting with {config.num_filters} convolutional filters after "
           "the stem"),
    weights_page=_SLIM_README)


def _searched(family, name, tfhub_id):
  """A (P)NASNet size; its cells, filters and path-dropout rate are the
  net's (slim_nets/nasnet.py)."""
  return Architecture(
      name=name, tfhub_id=tfhub_id, background=family["background"],
      build=("It is built with the TF-Slim implementation `{slim}` for "
             "ImageNet: " + family["cells"]
             + ", at an input size of {size}x{size} pixels."),
      weights_page=family["weights_page"], drop_path=True)


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
                    f"{SLIM_MODELS}/nets/mobilenet/README.md"))


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
                      f"{SLIM_MODELS}/nets/mobilenet_v1.md")),
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
                      f"{SLIM_MODELS}/nets/mobilenet/README.md")),
    "mobilenet-v3-large": _mobilenet_v3("large"),
    "mobilenet-v3-small": _mobilenet_v3("small"),
    "nasnet-a-large": _searched(_NASNET_FAMILY, "NASNet-A (large)",
                                "nasnet-a-large"),
    "nasnet-a-mobile": _searched(_NASNET_FAMILY, "NASNet-A (mobile)",
                                 "nasnet-a-mobile"),
    "pnasnet-5-large": _searched(_PNASNET_FAMILY, "PNASNet-5 (large)",
                                 "pnasnet-5-large"),
    "pnasnet-5-mobile": _searched(_PNASNET_FAMILY, "PNASNet-5 (mobile)", None),
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


