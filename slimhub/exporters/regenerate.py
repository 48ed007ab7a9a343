r"""slimhub-regenerate: rebuild whole module versions of the catalogue.

  slimhub-regenerate --checkpoint_dir=ckpts --output_dir=out
  slimhub-regenerate --checkpoint_dir=ckpts --output_dir=out \
      --handles='mobilenet_v1_*,inception_v2' --versions=1,3,5 --jobs=2 \
      --download --archive

Every selected handle x version whose checkpoint is in --checkpoint_dir
(laid out as the official tarballs extract; --download fetches missing ones)
is exported to OUT/<publisher>/<collection>/<net>/<kind>/<version>/ with its
model card <version>.md (and <version>.tar.gz with --archive, <version>.tflite
with --tflite, <version>.int8.tflite and so on with --tflite=float,int8),
verified,
and recorded with file hashes in OUT/manifest.json. Re-running skips what
is up to date and completes what a failed or killed run left out; the card,
archive and TFLite models are made or removed on their own, without
exporting their module again.

Exits with status 1 if a module failed, if nothing was built or up to date,
or if a module --handles names without a wildcard has no checkpoint
(--allow_missing accepts the last two). Ctrl-C (SIGINT) starts no more
modules and finishes those in flight (Ctrl-C again stops them), SIGTERM
stops them; the run exits 130 or 143 and the next run builds the rest.

  slimhub-regenerate --engine=beam --checkpoint_dir=ckpts --output_dir=out \
      --direct_num_workers=2

--engine=beam runs the builds as an Apache Beam pipeline (pip install
"slimhub[beam]"); every flag slimhub-regenerate does not know is passed to
Beam as a pipeline option. Without --runner it runs offline on this machine
(the FnApiRunner with --jobs SDK worker processes; Beam's DirectRunner would
first try to download the Prism runner). With --engine=beam, --checkpoint_dir
and --output_dir may also be URLs Beam's FileSystems knows (gs://, s3://,
hdfs://, or a scheme a --beam_plugins module registers).
"""

import dataclasses

from absl import app
from absl import flags

from slimhub import interrupts
from slimhub.mirror import layout as mirror_lib
from slimhub.build import provenance
from slimhub.regenerate import fetch
from slimhub.regenerate import files
from slimhub.regenerate import plan as regenerate_lib
from slimhub.exporters import calibration_flags
from slimhub.exporters import common

_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir", None, "Directory of Slim checkpoints laid out as the "
    "official tarballs extract, e.g. pnasnet-5_large_2017_12_13/model.ckpt "
    "(see slimhub-catalog --json, key 'checkpoint'); with --engine=beam also "
    "a gs://, s3://, hdfs:// URL.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where modules, model cards and manifest.json go; "
    "with --engine=beam also a gs://, s3://, hdfs:// URL.")
_HANDLES = flags.DEFINE_list(
    "handles", [], "fnmatch globs on 'collection/stem/kind' or the net name, "
    "e.g. 'imagenet/mobilenet_v2_*', 'pnasnet_large', '*/classification' "
    "(default: every handle).")
_VERSIONS = flags.DEFINE_list(
    "versions", [], "Versions to build, e.g. 1,3,5 (default: all published "
    "versions of each handle).")
_JOBS = flags.DEFINE_integer(
    "jobs", 1, "Modules built in parallel, each in a worker process (with "
    "--engine=beam: the default --direct_num_workers).")
_ENGINE = flags.DEFINE_enum(
    "engine", "local", regenerate_lib.ENGINES, "Where modules are built: "
    "'local' worker processes, or an Apache Beam pipeline ('beam'; unknown "
    "flags are its pipeline options, e.g. --runner, --direct_num_workers).")
_PUBLISHER = flags.DEFINE_string(
    "publisher", "google", "Publisher part of the handles and output paths.")
_ARCHIVE = flags.DEFINE_bool(
    "archive", False, "Also write <version>.tar.gz of each module, laid out "
    "like tfhub.dev archives.")
TFLITE_TYPES = ("float", "uint8", "int8")


class _TFLiteParser(flags.ArgumentParser):
  """--tflite (a boolean: <version>.tflite of slimhub-tflite's default type)
  or --tflite=TYPE,... (<version>.<type>.tflite of each)."""

  def parse(self, argument):
    if isinstance(argument, (tuple, list)):
      return tuple(argument)
    text = str(argument).strip().lower()
    if text in ("true", "1", ""):
      return (regenerate_lib.DEFAULT_TFLITE,) if text != "" else ()
    if text in ("false", "0"):
      return ()
    types = tuple(dict.fromkeys(t.strip() for t in text.split(",")))
    unknown = [t for t in types if t not in TFLITE_TYPES]
    if unknown:
      raise ValueError(f"unknown TFLite type(s) {', '.join(unknown)}; "
                       f"choose from {', '.join(TFLITE_TYPES)}")
    return types

  def flag_type(self):
    return "TFLite types"


_TFLITE = flags.DEFINE_flag(flags.Flag(
    _TFLiteParser(), None, "tflite", "false",
    "Also write each module's TFLite model: --tflite writes <version>.tflite "
    "(all-integer uint8 for quantops modules, float otherwise, as "
    "slimhub-tflite); --tflite=float,int8 writes <version>.<type>.tflite of "
    "each type listed (uint8 only for quantops modules; int8 from a float "
    "module needs --calibration_images or --calibration=synthetic).",
    boolean=True))
_CALIBRATION = calibration_flags.CalibrationFlags(__name__,
                                                 "--tflite=...,int8")
_DOWNLOAD = flags.DEFINE_bool(
    "download", False, "Download missing checkpoints (the official Slim "
    "tarballs) into --checkpoint_dir.")
_ALLOW_MISSING = flags.DEFINE_bool(
    "allow_missing", False, "Exit 0 even if nothing was built or up to date, "
    "or a module --handles names has no checkpoint.")
_BASE_URL = flags.DEFINE_string(
    "base_url", None, "With --download: fetch tarballs from this mirror "
    "(<base_url>/<tarball name as the catalogue lists it>).")
_MAX_BYTES = flags.DEFINE_integer(
    "max_bytes", None, "With --download: most bytes a tarball may download "
    "or expand to (default: 8 times the net's float32 weights plus 64 MiB).",
    lower_bound=1)

_MIRROR_HTTP_ROOT = flags.DEFINE_string(
    "mirror_http_root", None, "After the run, write the static HTTP mirror "
    "of --output_dir here, as slimhub-mirror --http_root does.")
_MIRROR_HUB_CACHE_DIR = flags.DEFINE_string(
    "mirror_hub_cache_dir", None, "After the run, lay --output_dir out as "
    "this TFHUB_CACHE_DIR, as slimhub-mirror --hub_cache_dir does.")

_CHECKPOINT_SOURCE = flags.DEFINE_enum(
    "checkpoint_source", provenance.AUTO, provenance.CHECKPOINT_SOURCES,
    "published: the "
    "checkpoints in --checkpoint_dir are the catalogue's published ones "
    "(e.g. from --download or slimhub-fetch-checkpoint), so the model cards "
    "cite their training; auto: cards of slimhub-make-checkpoint checkpoints "
    "say 'untrained', others claim no training.")

flags.mark_flags_as_required(["checkpoint_dir", "output_dir"])


def _versions(values):
  try:
    return tuple(int(value) for value in values)
  except ValueError:
    raise app.UsageError(
        f"--versions takes integers, not {','.join(values)}") from None


def _calibration():
  """The calibration input of int8 steps, or None; UsageError when int8 is
  asked for without one, or with both."""
  int8 = "int8" in _TFLITE.value
  images, synthetic = _CALIBRATION.chosen(int8)
  if not int8:
    return None
  if not (images or synthetic):
    raise app.UsageError("--tflite=...int8 needs --calibration_images=DIR or "
                         "--calibration=synthetic (for the float modules)")
  return regenerate_lib.calibration_input(images, synthetic,
                                          _CALIBRATION.count.value)


def main(argv):
  pipeline_args = argv[1:]
  if pipeline_args and _ENGINE.value != "beam":
    raise app.UsageError(f"Unexpected arguments: {' '.join(pipeline_args)}")
  if ((_MIRROR_HTTP_ROOT.value or _MIRROR_HUB_CACHE_DIR.value)
      and files.is_remote(_OUTPUT_DIR.value)):
    raise app.UsageError("--mirror_http_root and --mirror_hub_cache_dir need "
                         "a local --output_dir")
  common.quiet_tensorflow()
  options = regenerate_lib.Options(
      checkpoint_dir=_CHECKPOINT_DIR.value, output_dir=_OUTPUT_DIR.value,
      patterns=tuple(_HANDLES.value), versions=_versions(_VERSIONS.value),
      jobs=_JOBS.value, engine=_ENGINE.value, publisher=_PUBLISHER.value, archive=_ARCHIVE.value,
      tflite=_TFLITE.value,
      download=_DOWNLOAD.value, base_url=_BASE_URL.value,
      max_bytes=_MAX_BYTES.value,
      checkpoint_source=_CHECKPOINT_SOURCE.value, verbose=common.verbose())
  log = lambda message: print(message, flush=True)
  try:
    options = dataclasses.replace(options, calibration=_calibration())
    outcomes = regenerate_lib.regenerate(options, log=log,
                                         pipeline_args=pipeline_args)
  except (regenerate_lib.RegenerateError, fetch.FetchError) as error:
    common.fail("slimhub-regenerate", error)
  except interrupts.Interrupted as interrupted:
    if interrupted.outcomes:
      log(regenerate_lib.summary(interrupted.outcomes))
    raise
  log(regenerate_lib.summary(outcomes))
  _mirror(log)
  problem = regenerate_lib.failure(outcomes, options, _ALLOW_MISSING.value)
  if problem:
    common.fail("slimhub-regenerate", problem)


def _mirror(log):
  """The --mirror_* step: once, here in the driver, whatever the engine."""
  if not (_MIRROR_HTTP_ROOT.value or _MIRROR_HUB_CACHE_DIR.value):
    return
  try:
    report = mirror_lib.mirror(_OUTPUT_DIR.value,
                               hub_cache_dir=_MIRROR_HUB_CACHE_DIR.value,
                               http_root=_MIRROR_HTTP_ROOT.value)
  except (mirror_lib.MirrorError, OSError) as error:
    common.fail("slimhub-regenerate", f"--mirror_*: {error}")
  log(report.summary())


def run():
  common.run(main, known_only=True)


if __name__ == "__main__":
  run()
