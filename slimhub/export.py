"""Exporting one catalogue module from a Slim checkpoint (library API).

    export_module("mobilenet_v1_050_160", "feature_vector", 3,
                  checkpoint="ckpt/mobilenet_v1_0.5_160.ckpt",
                  export_dir="out/fv3")

Everything that can be checked is checked before the first byte is written:
the catalogue name, kind and version, the export directory, the checkpoint
(readable, every needed variable present with the right shape). The module
is then written into a staging directory and renamed into place.

The metadata says first where the weights come from (slimhub.build.provenance):
untrained values of a slimhub-make-checkpoint seed, the catalogue's
published checkpoint (only when the caller says so), or unidentified.
"""

import dataclasses
import os
from typing import Callable, Optional

import tensorflow as tf

from slimhub import catalog
from slimhub.build import checkpoints
from slimhub.build import module_fn as module_fn_lib
from slimhub.reference import deterministic
from slimhub.build import preprocessing
from slimhub.build import provenance
from slimhub.formats import atomic
from slimhub.formats import metadata as metadata_format
from slimhub.formats import tf1_hub
from slimhub.formats import tf2_saved_model

METADATA_FILE = metadata_format.METADATA_FILE  # kept for existing callers


class ExportError(ValueError):
  """An export that cannot proceed; the message names the problem."""


class OtherNetError(ExportError):
  """The checkpoint belongs to catalogue net `net` (quantops or not); the
  message's last words name it as export_module's `net`."""

  def __init__(self, problem, net):
    super().__init__(f"{problem}; export it as net {net!r}")
    self.problem = problem
    self.net = net


@dataclasses.dataclass(frozen=True)
class ExportResult:
  export_dir: str
  handle: str
  version: int
  format: str
  options: module_fn_lib.ModuleOptions
  restore_summary: str
  weights: provenance.Weights


def _num_classes_from_checkpoint(net, shapes):
  for key in (net.logits_variable,
              net.logits_variable + checkpoints.EMA_SUFFIX):
    if key in shapes:
      return shapes[key][-1]
  return None


def metadata(entry, kind, spec, options, plan, weights):
  """The slimhub metadata stored with every module (assets.extra); where
  the weights come from comes first."""
  label_offset = 1 if options.num_classes == 1000 else 0
  return {
      **weights.as_metadata(),
      "published_checkpoint": (entry.source_checkpoint
                               if weights.origin == provenance.PUBLISHED
                               else None),
      "handle": entry.handle(kind, spec.version),
      "version": spec.version,
      "format": spec.format,
      "net": options.net.name,
      "kind": kind,
      "default_image_size": [options.image_size, options.image_size],
      "variable_input_size": options.variable_size,
      "num_features": options.net.num_features,
      "num_classes": options.num_classes if kind == catalog.CLASSIFICATION
                     else None,
      "label_offset": label_offset if kind == catalog.CLASSIFICATION else None,
      "label_note": ("logit i is ImageNet class i+1 of the 1001-entry "
                     "ImageNetLabels.txt (no background class)"
                     if label_offset else
                     "logit 0 is 'background', then the 1000 ImageNet classes"),
      "preprocessing": options.preprocessing,
      "fine_tunable": not options.net.inference_only,
      "input_quant_range": (list(options.input_quant_range)
                            if options.input_quant_range else None),
      "input_range": [0.0, 1.0],
      "batch_norm_momentum_default": (catalog.FINE_TUNING_BN_MOMENTUM
                                      if options.bn_hparams
                                      else options.net.bn_decay),
      "end_point_prefix": options.net.scope,
      "checkpoint": os.path.basename(plan.prefix),
      "restored_from_ema": plan.used_ema,
      "slimhub_version": _slimhub_version(),
      "tensorflow_version": tf.__version__,
  }


def _slimhub_version():
  import slimhub  # pylint: disable=g-import-not-at-top
  return slimhub.__version__


def prepare(net, kind, version, checkpoint, *, num_classes=None,
            preprocessing_kind=None):
  """Checks the request; returns (entry, VersionSpec, ModuleOptions, prefix).

  Raises ExportError (unknown net, kind, version; unsupported entry;
  unreadable checkpoint).
  """
  try:
    entry = catalog.find(net)
    spec = catalog.version_spec(entry, version)
  except (KeyError, ValueError) as error:
    raise ExportError(str(error).strip('"')) from None
  if entry.unsupported:
    raise ExportError(f"{entry.name} cannot be exported: {entry.unsupported}")
  if kind not in entry.kinds:
    raise ExportError(f"{entry.name} has no {kind!r} module; kinds: "
                      f"{', '.join(entry.kinds)}")
  if preprocessing_kind and preprocessing_kind not in preprocessing.CHOICES:
    raise ExportError(f"Unknown preprocessing {preprocessing_kind!r}; "
                      f"choose one of {', '.join(preprocessing.CHOICES)}")
  try:
    prefix = checkpoints.resolve_prefix(checkpoint)
    shapes = checkpoints.read_shapes(prefix)
  except checkpoints.CheckpointError as error:
    raise ExportError(str(error)) from None
  _check_quantization(entry, prefix, shapes)
  options = module_fn_lib.options_for(entry, kind, version)
  if kind == catalog.CLASSIFICATION and num_classes is None:
    num_classes = _num_classes_from_checkpoint(options.net, shapes)
  options = dataclasses.replace(
      options, num_classes=num_classes or options.num_classes,
      preprocessing=preprocessing_kind or options.preprocessing)
  return entry, spec, options, prefix


def _check_quantization(entry, prefix, shapes):
  """Refuses a float checkpoint for a quantops module and vice versa."""
  quant_ranges = sum(map(checkpoints.is_quant_range, shapes))
  if entry.quantized and not quant_ranges:
    raise ExportError(
        f"Checkpoint {prefix} is a float checkpoint (no */weights_quant/"
        f"{{min,max}} or */act_quant/{{min,max}} variables), but "
        f"{entry.name} is a quantops module: it needs the quantization-aware "
        f"checkpoint {os.path.basename(entry.checkpoint)} of "
        f"{entry.tarball_url} (at {entry.checkpoint} in a checkpoint "
        "directory)")
  if not entry.quantized and quant_ranges:
    problem = (
        f"Checkpoint {prefix} is a quantization-aware (quant) checkpoint "
        f"({quant_ranges} weights_quant/act_quant range variables), but "
        f"{entry.name} is a float module")
    quantops = f"{entry.name}/quantops"
    if quantops in {e.name for e in catalog.ENTRIES}:
      raise OtherNetError(problem, quantops)
    raise ExportError(problem)


def identify_weights(entry, prefix, checkpoint_source=provenance.AUTO,
                     training_note=""):
  """The provenance.Weights of the checkpoint at `prefix`; raises
  ExportError when checkpoint_source or training_note contradict it."""
  try:
    return provenance.identify(entry, deterministic.untrained_seed(prefix),
                               checkpoint_source, training_note)
  except provenance.ProvenanceError as error:
    raise ExportError(f"Checkpoint {prefix}: {error}") from None


def export_module(net, kind, version, checkpoint, export_dir, *,
                  overwrite=False, use_ema="auto", num_classes=None,
                  preprocessing_kind=None,
                  checkpoint_source=provenance.AUTO, training_note="",
                  log: Optional[Callable[[str], None]] = None):
  """Exports catalogue module `net`/`kind` at `version` to `export_dir`.

  checkpoint: a prefix or a directory holding one. overwrite: replace a
  non-empty export_dir. use_ema: checkpoints.USE_EMA_CHOICES. num_classes,
  preprocessing_kind: override what the checkpoint and catalogue say.
  checkpoint_source: "published" states that the checkpoint is the
  catalogue's published one, so that the metadata (and model card) cite its
  training; by default ("auto") only slimhub's untrained marker is
  recognised and other weights are unidentified. training_note: how
  unidentified weights were trained, in the caller's words. log: called
  with each progress line. Returns an ExportResult; raises ExportError,
  with nothing written, when the request or checkpoint does not fit.
  """
  log = log or (lambda message: None)
  entry, spec, options, prefix = prepare(
      net, kind, version, checkpoint, num_classes=num_classes,
      preprocessing_kind=preprocessing_kind)
  weights = identify_weights(entry, prefix, checkpoint_source, training_note)
  try:
    atomic.check_target(export_dir, overwrite,
                        names=("export_dir", "overwrite=True"))
  except atomic.ExportDirError as error:
    raise ExportError(str(error)) from None
  handle = entry.handle(kind, version)
  log(f"Building {handle} ({spec.format}) from {prefix}")
  build = _build_tf1 if spec.format == catalog.TF1_HUB else _build_tf2
  try:
    plan, write = build(options, spec, prefix, use_ema)
  except checkpoints.CheckpointError as error:
    raise ExportError(str(error)) from None
  log(plan.summary())
  if weights.origin == provenance.UNTRAINED:
    log(f"The weights are untrained (seed {weights.seed}); the metadata says "
        "so.")
  with atomic.atomic_directory(export_dir, overwrite) as staging:
    write(staging)
    metadata_format.write(staging,
                          metadata(entry, kind, spec, options, plan, weights))
  log(f"Wrote {handle} to {os.path.abspath(export_dir)}")
  return ExportResult(export_dir=os.path.abspath(export_dir), handle=handle,
                      version=version, format=spec.format, options=options,
                      restore_summary=plan.summary(), weights=weights)


def tf1_meta_graphs(options):
  """MetaGraphDefs of both TF1 variants and their {variable: shape}.

  Needs no weights: the golden layouts are built from it too.
  """
  variants = tf1_hub.IMAGE_MODULE_VARIANTS
  if options.net.inference_only:
    variants = variants[:1]
  return tf1_hub.build_meta_graphs(
      lambda is_training: module_fn_lib.module_fn(options, is_training),
      variants)


def tf2_module(options, spec, assign_values):
  """The TF2 reusable object of `options` and its serving function (None
  before v5); assign_values(variables) loads the weights, if any."""

  def body(images, momentum, is_training):
    features, logits, end_points = module_fn_lib.build_net(
        options, images, momentum, is_training)
    return {module_fn_lib.DEFAULT: logits if logits is not None else features,
            **end_points}

  module, input_spec = tf2_saved_model.build(
      body, options.input_shape, options.image_size, assign_values)
  serving = (tf2_saved_model.serving_signature(module, input_spec)
             if spec.serving_default else None)
  return module, serving


def _build_tf1(options, spec, prefix, use_ema):
  """Graphs of both variants and the restore plan; (plan, write(dir))."""
  del spec  # The version is fully described by `options`.
  meta_graphs, variables = tf1_meta_graphs(options)
  plan = checkpoints.plan_restore(variables, prefix, use_ema)

  def write(directory):
    tf1_hub.write_module(directory, meta_graphs,
                         lambda path: checkpoints.write_renamed(plan, path))
  return plan, write


def _build_tf2(options, spec, prefix, use_ema):
  """The reusable object with restored weights; (plan, write(dir))."""
  plans = []

  def assign_values(variables):
    by_name = {v.name[:-len(":0")]: v for v in variables}
    plan = checkpoints.plan_restore(
        {name: v.shape.as_list() for name, v in by_name.items()}, prefix,
        use_ema)
    for name, value in checkpoints.iter_tensors(plan):
      by_name[name].assign(value)
    plans.append(plan)

  module, serving = tf2_module(options, spec, assign_values)

  def write(directory):
    tf2_saved_model.save(module, directory, serving)
  return plans[0], write
