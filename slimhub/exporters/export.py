r"""slimhub-export: one catalogue module from a Slim checkpoint.

  slimhub-export --net=mobilenet_v1_050_160 --kind=feature_vector \
      --version=3 --checkpoint=ckpt/mobilenet_v1_0.5_160.ckpt \
      --export_dir=out/mobilenet_v1_050_160/feature_vector/3

Versions 1-3 are TF1 Hub modules (hub.Module), 4-5 TF2 SavedModels
(hub.KerasLayer). The module lands exactly at --export_dir, atomically;
nothing is written when the checkpoint does not fit the module.

The module's metadata (and a model card made from it) cites the training of
the catalogue's published checkpoint only with --checkpoint_source=published;
a slimhub-make-checkpoint checkpoint is recognised as untrained, and any
other is described by --training_note, if given, and otherwise not at all.
"""

from absl import app
from absl import flags

from slimhub import catalog
from slimhub.build import checkpoints
from slimhub.build import preprocessing
from slimhub.build import provenance
from slimhub.exporters import common
from slimhub.formats import atomic

_NET = flags.DEFINE_string(
    "net", None, "Catalogue net, e.g. mobilenet_v1_050_160 or "
    "inaturalist/inception_v3 (see slimhub-catalog).")
_KIND = flags.DEFINE_enum("kind", None, catalog.KINDS, "Module kind.")
_VERSION = flags.DEFINE_integer(
    "version", None, "Module version: 1-3 TF1 Hub format, 4-5 TF2 "
    "SavedModel; must be one the catalogue lists for the net.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Slim checkpoint prefix (e.g. model.ckpt) or a "
    "directory holding one.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Directory the module is written to (created; must "
    "be empty unless --overwrite).")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace an existing, non-empty --export_dir.")
_USE_EMA = flags.DEFINE_enum(
    "use_ema", "auto", checkpoints.USE_EMA_CHOICES,
    "Restore <var>/ExponentialMovingAverage shadows: auto = where present.")
_PREPROCESSING = flags.DEFINE_enum(
    "preprocessing", None, preprocessing.CHOICES,
    "Override the catalogue's input scaling (inception: [-1,1]; vgg: "
    "x*255 - RGB means), e.g. for a resnet_v1 checkpoint retrained with "
    "inception preprocessing.")
_CHECKPOINT_SOURCE = flags.DEFINE_enum(
    "checkpoint_source", provenance.AUTO, provenance.CHECKPOINT_SOURCES,
    "published: the checkpoint is the catalogue's published one (e.g. from "
    "slimhub-fetch-checkpoint), so the metadata cites its training; auto: "
    "recognise slimhub-make-checkpoint's untrained checkpoints and claim "
    "nothing about others.")
_TRAINING_NOTE = flags.DEFINE_string(
    "training_note", "", "How the weights were trained, in your words, for "
    "the metadata and model card (e.g. 'Fine-tuned on flowers').")

flags.mark_flags_as_required(
    ["net", "kind", "version", "checkpoint", "export_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_tensorflow()
  try:  # the catalogue's answers first: they need no TensorFlow
    catalog.version_spec(catalog.find(_NET.value), _VERSION.value)
  except (KeyError, ValueError) as error:
    common.fail("slimhub-export", str(error).strip('"'))
  try:
    atomic.check_target(_EXPORT_DIR.value, _OVERWRITE.value,
                        names=("--export_dir", "--overwrite"))
  except atomic.ExportDirError as error:
    common.fail("slimhub-export", error)
  from slimhub import export as export_lib  # pylint: disable=g-import-not-at-top
  try:
    export_lib.export_module(
        _NET.value, _KIND.value, _VERSION.value, _CHECKPOINT.value,
        _EXPORT_DIR.value, overwrite=_OVERWRITE.value,
        use_ema=_USE_EMA.value, preprocessing_kind=_PREPROCESSING.value,
        checkpoint_source=_CHECKPOINT_SOURCE.value,
        training_note=_TRAINING_NOTE.value, log=print)
  except export_lib.OtherNetError as error:
    common.fail("slimhub-export", f"{error.problem}; export it as "
                f"--net={error.net}")
  except export_lib.ExportError as error:
    common.fail("slimhub-export", error)


def run():
  common.run(main)


if __name__ == "__main__":
  run()
