"""The module_fn: one graph variant of an image module, per signatures.md.

``module_fn(options, is_training)`` builds, in the current graph:

* ``hub_input/images`` (float32 [None, h|None, w|None, 3] in [0, 1]) and the
  scaling into the net's range (``hub_input/Mul``, ``hub_input/Sub``);
* with BN hyperparameters (v3+), ``hub_input/batch_norm_momentum``, a scalar
  placeholder_with_default(0.99) fed into every batch norm's decay;
* the Slim net (aux heads off);
* ``hub_output/feature_vector/SpatialSqueeze`` (the pooled features) and, for
  classification modules, the net's logits;

and returns the signatures and attachments of the variant. The format
writers (slimhub.formats) know nothing about nets; this module knows
nothing about files.
"""

import dataclasses
from typing import Mapping, Optional

import tensorflow as tf

from slimhub import catalog
from slimhub.build import preprocessing
from slimhub import slim_nets
from slimhub.formats import hub_protos

IMAGES = "images"
BATCH_NORM_MOMENTUM = "batch_norm_momentum"
DEFAULT = "default"


@dataclasses.dataclass(frozen=True)
class ModuleOptions:
  """Everything that shapes one module's graph.

  image_size: default (and, when not variable_size, the only) input size.
  bn_hparams: momentum input with default 0.99 and *_with_bn_hparams
    signatures; otherwise the net's own Slim BN decay is a constant.
  num_classes: logits width (classification modules).
  image_module_info: attach ImageModuleInfo (TF1 v3).
  input_quant_range: (min, max) of the 8-bit fake quantization of the
    scaled input (quantops modules), or None.
  """
  net: slim_nets.SlimNet
  kind: str
  image_size: int
  variable_size: bool
  bn_hparams: bool
  num_classes: int
  preprocessing: str
  image_module_info: bool
  input_quant_range: Optional[tuple] = None

  @property
  def output_dim(self):
    if self.kind == catalog.CLASSIFICATION:
      return self.num_classes
    return self.net.num_features

  @property
  def input_shape(self):
    size = None if self.variable_size else self.image_size
    return [None, size, size, 3]


def options_for(entry, kind, version, *, num_classes=None,
                preprocessing_kind=None):
  """ModuleOptions of catalogue `entry` as `kind` at `version`."""
  if kind not in entry.kinds:
    raise ValueError(f"{entry.name} has no {kind} module; kinds: "
                     f"{', '.join(entry.kinds)}")
  spec = catalog.version_spec(entry, version)
  net = slim_nets.get(entry.net)
  return ModuleOptions(
      net=net,
      kind=kind,
      image_size=entry.image_size,
      variable_size=spec.variable_size,
      bn_hparams=spec.bn_hparams,
      num_classes=num_classes or net.num_classes,
      preprocessing=preprocessing_kind or net.preprocessing,
      image_module_info=spec.image_module_info,
      input_quant_range=spec.input_quant_range,
  )


@dataclasses.dataclass(frozen=True)
class Signature:
  inputs: Mapping[str, tf.Tensor]
  outputs: Mapping[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class ModuleGraph:
  """What module_fn built: its signatures and attached messages.

  end_points maps output keys ("<Scope>/<end point>") to tensors; the
  feature vector and logits are also available for the TF2 writer.
  """
  signatures: Mapping[str, Signature]
  attachments: Mapping[str, bytes]
  images: tf.Tensor
  batch_norm_momentum: Optional[tf.Tensor]
  features: tf.Tensor
  logits: Optional[tf.Tensor]
  end_points: Mapping[str, tf.Tensor]

  @property
  def default_output(self):
    return self.logits if self.logits is not None else self.features


def end_point_key(scope, name):
  """Output key of Slim end point `name`: prefixed by the architecture."""
  return name if name.startswith(scope + "/") else f"{scope}/{name}"


def build_net(options, images, batch_norm_decay, is_training):
  """The net on `images` in [0, 1]: (features [B, F], logits, end points).

  Shared by the TF1 module_fn and the TF2 SavedModel body.
  """
  with tf.name_scope("hub_input/"):  # re-enters the scope of the inputs
    net_input = preprocessing.to_net_range(images, options.preprocessing,
                                           options.input_quant_range)
  classify = options.kind == catalog.CLASSIFICATION
  output = options.net.build(
      net_input, num_classes=options.num_classes if classify else 0,
      is_training=is_training, batch_norm_decay=batch_norm_decay)
  with tf.name_scope("hub_output/feature_vector"):
    features = output.features
    if features.shape.rank == 4:
      features = tf.squeeze(features, [1, 2], name="SpatialSqueeze")
    elif features.shape.rank != 2:
      raise ValueError(f"{options.net.name} features have rank "
                       f"{features.shape.rank}; expected 2 or 4")
  end_points = {end_point_key(options.net.scope, name): tensor
                for name, tensor in output.end_points.items()}
  return features, output.logits, end_points


def module_fn(options, is_training):
  """Builds one graph variant in the current graph; returns its ModuleGraph."""
  with tf.name_scope("hub_input"):
    images = tf.compat.v1.placeholder(tf.float32, options.input_shape,
                                      name=IMAGES)
    momentum = None
    if options.bn_hparams:
      momentum = tf.compat.v1.placeholder_with_default(
          tf.constant(catalog.FINE_TUNING_BN_MOMENTUM, tf.float32), [],
          name=BATCH_NORM_MOMENTUM)
  decay = momentum if momentum is not None else options.net.bn_decay
  features, logits, end_points = build_net(options, images, decay,
                                           is_training)
  signatures = image_signatures(images, momentum, features, logits,
                                end_points)
  attachments = {}
  if options.image_module_info:
    attachments[hub_protos.IMAGE_MODULE_INFO_KEY] = (
        hub_protos.image_module_info_bytes(options.image_size,
                                           options.image_size))
  return ModuleGraph(signatures=signatures, attachments=attachments,
                     images=images, batch_norm_momentum=momentum,
                     features=features, logits=logits, end_points=end_points)


def image_signatures(images, momentum, features, logits, end_points):
  """The signature set of signatures.md §3.1 for these tensors."""
  named = {"image_feature_vector": features}
  if logits is not None:
    named["image_classification"] = logits
  plain_inputs = {IMAGES: images}
  signatures = {DEFAULT: Signature(
      plain_inputs, {DEFAULT: logits if logits is not None else features})}
  for name, default in named.items():
    outputs = {DEFAULT: default, **end_points}
    signatures[name] = Signature(plain_inputs, outputs)
    if momentum is not None:
      signatures[f"{name}_with_bn_hparams"] = Signature(
          {IMAGES: images, BATCH_NORM_MOMENTUM: momentum}, outputs)
  return signatures
