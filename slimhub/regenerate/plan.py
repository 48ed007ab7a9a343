"""Regenerating whole module versions from a directory of Slim checkpoints.

    outcomes = regenerate(Options(checkpoint_dir="ckpts", output_dir="out",
                                  patterns=("mobilenet_v1_*",),
                                  versions=(1, 3, 5), jobs=2))

For every selected catalogue handle x version whose checkpoint is in
`checkpoint_dir` (laid out as the official tarballs extract, see
catalog.Entry.checkpoint) -- or can be downloaded -- the module is exported
to ``OUT/<publisher>/<collection>/<net>/<kind>/<version>/`` with its model
card ``<version>.md`` (with `archive`, ``<version>.tar.gz``; with `tflite`,
``<version>.tflite`` of slimhub-tflite's default type, or
``<version>.<type>.tflite`` of each listed type), and
recorded in ``OUT/manifest.json`` (slimhub.regenerate.manifest).

The card, archive and TFLite models are derived files, each a build step
of its own: when only they are missing, changed or newly asked for, the
task makes just them from the module in place; those no longer asked for
are removed by the driver. On a remote output (gs://, ...) the module is
rebuilt with them instead.

plan() turns the selection into tasks, one per module to (re)build, which an
engine (engines/local.py, engines/beam.py) hands to build.build in worker
processes. A module only appears once complete. A re-run skips every module
whose inputs and files still match the manifest, so a run that was killed
or failed part-way is completed by running it again.
"""

import contextlib
import dataclasses
import fcntl
import itertools
import os
import shutil
import socket
import uuid
from typing import Optional

import slimhub
from slimhub import catalog
from slimhub import interrupts
from slimhub.build import provenance
from slimhub.regenerate import build as build_lib
from slimhub.regenerate import fetch
from slimhub.regenerate import files
from slimhub.regenerate import manifest as manifest_lib
from slimhub.regenerate import worker
from slimhub.regenerate.engines import shared

BUILT = worker.BUILT
UP_TO_DATE = "up to date"
SKIPPED = "skipped"
FAILED = worker.FAILED

WORK_DIR = ".regenerate-work"
LOCK_FILE = ".regenerate.lock"
ENGINES = ("local", "beam")
# slimhub-tflite's default type (uint8 for quantops, float otherwise),
# written as <version>.tflite.
DEFAULT_TFLITE = "default"


class RegenerateError(ValueError):
  """A run that cannot start; the message says why."""


@dataclasses.dataclass(frozen=True)
class Options:
  """What to regenerate and how.

  patterns: fnmatch globs on "collection/stem/kind" or the net name (a
    leading "<publisher>/" is ignored); empty selects everything.
  versions: versions to build; empty selects all published ones.
  download: fetch missing checkpoints (from `base_url` if given, each
    tarball bounded by `max_bytes`, default fetch.default_max_bytes).
  checkpoint_source: "published" states that the checkpoints are the
    catalogue's published ones, so that cards cite their training
    (provenance.CHECKPOINT_SOURCES).
  """
  checkpoint_dir: str
  output_dir: str
  patterns: tuple = ()
  versions: tuple = ()
  jobs: int = 1
  engine: str = "local"
  publisher: str = "google"
  archive: bool = False
  tflite: tuple = ()
  calibration: Optional[dict] = None
  download: bool = False
  base_url: Optional[str] = None
  max_bytes: Optional[int] = None
  checkpoint_source: str = provenance.AUTO
  # Workers show TensorFlow's log lines (the binary's --verbosity).
  verbose: bool = False

  def tflite_types(self):
    """The TFLite types asked for: tflite=True is (DEFAULT_TFLITE,)."""
    if self.tflite is True:
      return (DEFAULT_TFLITE,)
    return tuple(self.tflite or ())


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What happened to one module; key is its directory relative to OUT.
  missing: skipped because its checkpoint is not in the directory."""
  key: str
  status: str
  reason: str = ""
  seconds: Optional[float] = None
  missing: bool = False


@dataclasses.dataclass(frozen=True)
class Job:
  """A module to build: its worker task, why it is (re)built, and the size
  of its checkpoint."""
  key: str
  task: dict
  reason: str
  checkpoint_bytes: int = 0

  def estimated_seconds(self):
    """A rough build time on one core, for scheduling: about 5 s whatever
    the net (building two graphs, verifying) plus 1 s per 20 MB of
    checkpoint (measured on mobilenet_v1_025_128 and resnet_v1_50)."""
    return 5.0 + self.checkpoint_bytes / 20e6


@dataclasses.dataclass(frozen=True)
class _Source:
  """A located checkpoint: its prefix and hashes, or why there is none."""
  prefix: Optional[str] = None
  sha256: Optional[str] = None
  files: Optional[dict] = None
  size: int = 0
  status: str = ""
  reason: str = ""
  missing: bool = False


def _patterns(options):
  prefix = options.publisher + "/"
  return tuple(p[len(prefix):] if p.startswith(prefix) else p
               for p in options.patterns)


def _unbuildable_reason(entry):
  # Every supported entry's net is implemented (a test says so): the driver
  # imports neither the nets nor TensorFlow.
  if entry.unsupported:
    return f"unsupported: {entry.unsupported}"
  if not entry.checkpoint:
    return "no published checkpoint"
  return None


def _locate(entry, options, log):
  """The _Source of `entry` in the checkpoint directory, fetched if asked."""
  prefix = files.join(options.checkpoint_dir, entry.checkpoint)
  if not manifest_lib.checkpoint_files(prefix):
    if not options.download:
      # Where it was looked for, as a user may have another layout.
      return _Source(status=SKIPPED, missing=True, reason=(
          f"no checkpoint at {prefix} (the catalogue's path "
          f"{entry.checkpoint} under --checkpoint_dir; --download fetches "
          "it)"))
    try:
      fetch.fetch_checkpoint(entry, options.checkpoint_dir,
                             base_url=options.base_url,
                             max_bytes=options.max_bytes, log=log)
    except fetch.FetchError as error:
      return _Source(status=FAILED, reason=str(error))
  digest, hashes, size = manifest_lib.checkpoint_digest(prefix)
  return _Source(prefix=prefix, sha256=digest, files=hashes, size=size)


def _build_options(options):
  """The options a module's own files depend on (not its derived files);
  checkpoint_source only when asked, so that manifests written before it
  existed stay up to date."""
  chosen = {"publisher": options.publisher}
  if options.checkpoint_source != provenance.AUTO:
    chosen["checkpoint_source"] = options.checkpoint_source
  return chosen


def _tflite_step(model_type):
  if model_type == DEFAULT_TFLITE:
    return build_lib.TFLITE
  return f"{build_lib.TFLITE}.{model_type}"


def derived_steps(options, entry, key):
  """{step: {"path", "inputs"}} of the derived files of module `key`; uint8
  models only for quantops entries, calibration only for int8 models of
  float ones."""
  steps = [build_lib.CARD] + ([build_lib.ARCHIVE] if options.archive else [])
  inputs = {step: {} for step in steps}
  for model_type in options.tflite_types():
    if model_type == "uint8" and not entry.quantized:
      continue
    step = _tflite_step(model_type)
    steps.append(step)
    inputs[step] = {"type": None if model_type == DEFAULT_TFLITE
                    else model_type}
    if model_type == "int8" and not entry.quantized:
      inputs[step]["calibration"] = options.calibration
  version = slimhub.__version__
  return {step: {"path": key + build_lib.derived_suffix(step),
                 "inputs": dict(inputs[step], slimhub_version=version)}
          for step in steps}


def calibration_input(directory=None, synthetic=False, count=100):
  """The calibration an int8 step records: synthetic, or a directory with
  the sha256 of its images (so that changing them redoes the step)."""
  if synthetic:
    return {"synthetic": True, "count": count}
  import hashlib  # pylint: disable=g-import-not-at-top
  from slimhub.tflite import calibration as tflite_calibration  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256()
  try:
    names = sorted(os.listdir(directory))
  except OSError as error:
    raise RegenerateError(f"Cannot read the calibration directory "
                          f"{directory}: {error.strerror or error}") from None
  for name in names:
    if name.lower().endswith(tflite_calibration.IMAGE_SUFFIXES):
      path = os.path.join(directory, name)
      digest.update(f"{name} {manifest_lib.sha256_file(path)}\n".encode())
  return {"directory": os.path.abspath(directory),
          "sha256": digest.hexdigest(), "count": count}


def selection(options):
  """[(entry, kind, version)] of the modules options select, or
  RegenerateError if none."""
  selected = list(catalog.modules(_patterns(options), options.versions,
                                  include_unsupported=True))
  if not selected:
    raise RegenerateError(
        f"No catalogue module matches --handles={','.join(options.patterns)} "
        f"--versions={','.join(map(str, options.versions))}; slimhub-catalog "
        "lists the handles")
  return selected


def plan(options, manifest, work_dir, log=print):
  """([Job], [Outcome]): the modules to build, and what the others are."""
  jobs, outcomes, sources = [], [], {}
  for entry, kind, version in selection(options):
    key = entry.handle(kind, version, options.publisher)
    reason = _unbuildable_reason(entry)
    if reason:
      outcomes.append(Outcome(key, SKIPPED, reason))
      continue
    if entry.name not in sources:
      sources[entry.name] = _locate(entry, options, log)
    source = sources[entry.name]
    if source.status:
      outcomes.append(Outcome(key, source.status, source.reason,
                              missing=source.missing))
      continue
    inputs = {"checkpoint": entry.checkpoint,
              "checkpoint_sha256": source.sha256,
              "slimhub_version": slimhub.__version__,
              "options": _build_options(options)}
    stale = manifest.stale_reason(key, inputs)
    derived = derived_steps(options, entry, key)
    task = {"net": entry.name, "kind": kind, "version": version, "key": key,
            "checkpoint": source.prefix, "checkpoint_files": source.files,
            "inputs": inputs, "output_dir": options.output_dir,
            "publisher": options.publisher, "derived": derived,
            "checkpoint_source": options.checkpoint_source,
            # Slim outputs of a checkpoint, shared by its modules' checks.
            "reference_cache": files.join(work_dir, "slim-outputs"),
            "work_dir": files.join(work_dir, str(len(jobs)))}
    if stale is None:
      to_make, to_remove = manifest.derived_changes(key, derived)
      if to_make and files.is_remote(options.output_dir):
        stale = "; ".join(to_make.values())
      elif to_make:
        task.update(derived_only=True, record=manifest.modules[key],
                    derived={step: derived[step] for step in to_make})
        jobs.append(Job(key, task, "; ".join(to_make.values()), 0))
      if to_remove and not stale:
        for path in manifest.remove_derived(key, to_remove):
          log(f"removed {path} (no longer asked for)")
      if not (to_make or stale):
        outcomes.append(Outcome(key, UP_TO_DATE))
    if stale is not None:
      jobs.append(Job(key, task, stale, source.size))
  return in_build_order(jobs, options.jobs), outcomes


def in_build_order(jobs, workers):
  """`jobs` reordered for `workers` workers: nets with the largest
  checkpoints first, so that a run does not end with one worker on a big
  net while the others idle; and `workers` nets at a time, their modules
  taken in turn, so that the modules built side by side are of different
  nets and each net's Slim reference outputs are computed once, by its
  first module, for the others to reuse."""
  by_net = {}
  for job in jobs:
    by_net.setdefault(job.task["net"], []).append(job)
  nets = sorted(by_net, key=lambda net: -by_net[net][0].checkpoint_bytes)
  ordered, step = [], max(workers, 1)
  for start in range(0, len(nets), step):
    turns = itertools.zip_longest(*(by_net[net]
                                    for net in nets[start:start + step]))
    ordered += [job for turn in turns for job in turn if job is not None]
  return ordered


@contextlib.contextmanager
def _locked(output_dir):
  """Holds an exclusive lock on the output directory for the run."""
  with open(os.path.join(output_dir, LOCK_FILE), "w") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise RegenerateError(
          f"Another slimhub-regenerate is writing to {output_dir}") from None
    yield


@contextlib.contextmanager
def _remote_locked(output_dir):
  """A best-effort lock on a remote output directory: a lock file that a
  second run finds. FileSystems has no create-if-absent, so two runs that
  start within the same moment can both take it; a killed run leaves it
  behind, and the error says which file to delete."""
  path = files.join(output_dir, LOCK_FILE)
  if files.isfile(path):
    raise RegenerateError(
        f"Another slimhub-regenerate is writing to {output_dir} ({path} "
        "exists; delete it if no run is going on)")
  token = f"{socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}"
  files.write_remote(path, token.encode("utf-8"))
  try:
    if files.read_text(path) != token:
      raise RegenerateError(
          f"Another slimhub-regenerate took the lock {path} at the same time")
    yield
  finally:
    if files.isfile(path) and files.read_text(path) == token:
      files.delete([path])


def _check_paths(options):
  """Refuses remote paths the engine or --download cannot use."""
  remote = [path for path in (options.checkpoint_dir, options.output_dir)
            if files.is_remote(path)]
  if remote and options.engine != "beam":
    raise RegenerateError(
        f"{' and '.join(remote)}: remote paths (gs://, s3://, hdfs://, ...) "
        "need --engine=beam; --engine=local reads and writes local or shared "
        "filesystems only")
  if options.download and files.is_remote(options.checkpoint_dir):
    raise RegenerateError(
        "--download writes into a local --checkpoint_dir, not "
        f"{options.checkpoint_dir}; download locally and copy it there")
  if (not files.is_remote(options.checkpoint_dir)
      and not os.path.isdir(options.checkpoint_dir) and not options.download):
    raise RegenerateError(
        f"Checkpoint directory {options.checkpoint_dir} does not exist")


def regenerate(options, log=print, pipeline_args=()):
  """Regenerates the selected modules on options.engine; the Outcome of
  every module. `pipeline_args` are the Beam engine's pipeline options.

  A SIGINT or SIGTERM while modules are built stops the run as
  engines/shared.py says and raises interrupts.Interrupted with the
  Outcomes of the modules that ended; before, it raises it at once.
  """
  _check_paths(options)
  if options.jobs < 1:
    raise RegenerateError(f"jobs must be at least 1, not {options.jobs}")
  if options.engine not in ENGINES:
    raise RegenerateError(f"Unknown engine {options.engine!r}; choose one of "
                          f"{', '.join(ENGINES)}")
  if options.engine == "beam":
    try:
      from slimhub.regenerate.engines import beam as engine  # pylint: disable=g-import-not-at-top
    except ImportError as error:
      raise RegenerateError(
          f"--engine=beam needs apache-beam ({error}); install it with "
          "pip install 'slimhub[beam]'") from None
    engine.import_plugins(pipeline_args)
  else:
    from slimhub.regenerate.engines import local as engine  # pylint: disable=g-import-not-at-top
  selection(options)  # before the output directory is created
  remote = files.is_remote(options.output_dir)
  if remote:
    locked = _remote_locked(options.output_dir)
  else:
    os.makedirs(options.output_dir, exist_ok=True)
    locked = _locked(options.output_dir)
  with locked:
    try:
      manifest = manifest_lib.Manifest(options.output_dir)
    except manifest_lib.ManifestError as error:
      raise RegenerateError(str(error)) from None
    manifest.merge_records(manifest_lib.records_dir(options.output_dir))
    work_dir = files.join(options.output_dir, WORK_DIR)
    _remove_work_dir(work_dir)  # left by a killed run
    jobs, outcomes = plan(options, manifest, work_dir, log)
    log(f"{len(jobs)} to build, {len(outcomes)} not: "
        + ", ".join(f"{sum(o.status == s for o in outcomes)} {s}"
                    for s in (UP_TO_DATE, SKIPPED, FAILED)))
    stop = shared.Stop(log)
    if jobs:
      with stop:
        outcomes += engine.run(jobs, options, manifest, work_dir, log,
                               pipeline_args, stop)
    _remove_work_dir(work_dir)
  if stop.requested:
    left = len(jobs) - sum(o.status == BUILT for o in outcomes)
    raise interrupts.Interrupted(
        stop.signum, f"the next run builds the {_modules(left)} not built",
        outcomes)
  return outcomes


def _modules(count):
  return f"{count} module" + ("" if count == 1 else "s")


def _remove_work_dir(work_dir):
  if files.is_remote(work_dir):
    files.delete(files.files_below(work_dir))
  else:
    shutil.rmtree(work_dir, ignore_errors=True)


def _one_line(text, limit=300):
  line = " ".join(part.strip() for part in text.splitlines())
  return line if len(line) <= limit else line[:limit - 3] + "..."


def summary(outcomes):
  """The end-of-run table: one row per built or failed module, one per
  reason for the others."""
  counts = {status: sum(o.status == status for o in outcomes)
            for status in (BUILT, UP_TO_DATE, SKIPPED, FAILED)}
  lines = ["Summary: " + ", ".join(f"{count} {status}"
                                   for status, count in counts.items())]
  rows = [(o.status, o.key,
           "" if o.seconds is None else f"{o.seconds:.1f}s",
           _one_line(o.reason))
          for o in outcomes if o.status in (BUILT, FAILED)]
  groups = {}
  for outcome in outcomes:
    if outcome.status in (UP_TO_DATE, SKIPPED):
      groups.setdefault((outcome.status, outcome.reason), []).append(outcome)
  for (status, reason), members in sorted(groups.items()):
    what = members[0].key if len(members) == 1 else f"{len(members)} modules"
    rows.append((status, what, "", reason))
  if rows:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths))
              + "  " + row[3] for row in rows]
  return "\n".join(line.rstrip() for line in lines)


def failure(outcomes, options, allow_missing=False):
  """Why the run failed, in a line, or None: a module failed; or, unless
  `allow_missing`, a module that options.patterns name without a wildcard
  was skipped for want of its checkpoint (a glob takes the checkpoints
  there are), or nothing was built or up to date."""
  failed = sum(o.status == FAILED for o in outcomes)
  if failed:
    return f"{_modules(failed)} failed"
  if allow_missing:
    return None
  named = [p for p in _patterns(options) if not set("*?[") & set(p)]
  keys = {entry.handle(kind, version, options.publisher)
          for entry, kind, version in catalog.modules(
              named, options.versions, include_unsupported=True)
          } if named else set()
  missing = sorted(o.key for o in outcomes if o.missing and o.key in keys)
  if missing:
    listed = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    return (f"no checkpoint for {_modules(len(missing))} --handles names "
            f"({listed}); --allow_missing accepts that")
  if not any(o.status in (BUILT, UP_TO_DATE) for o in outcomes):
    return ("nothing was built and nothing is up to date (--allow_missing "
            "accepts that)")
  return None
