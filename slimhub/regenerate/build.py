"""The one unit of work of slimhub-regenerate: build module K.

build(task) exports the module of a task (see plan.plan) into the task's
work directory, verifies it, makes its derived files (model card, archive,
TFLite models: the task's "derived" steps), and only then moves them into
place; it returns the module's manifest record. A task with "derived_only"
makes just the derived steps it lists, from the module already in place
(whose record it carries), and leaves the module alone. Every
engine calls it, in a worker process (worker.py) that isolates TensorFlow
graphs, memory and crashes.

The work directory is local to the worker. When the output directory is on
the same filesystem, the module is renamed into place; otherwise (another
filesystem, or a gs://, s3://, hdfs:// path Beam's FileSystems knows) it is
copied, and the caller commits the record last, so a half-copied module is
never taken as done.
"""

import collections
import json
import os
import shutil
import time

from slimhub import catalog
from slimhub.regenerate import cards as model_cards
from slimhub.regenerate import files
from slimhub.regenerate import manifest
from slimhub.formats import archive

class BuildError(ValueError):
  """A module that cannot be built or placed; the message says why."""


CARD = "card"
ARCHIVE = "archive"
TFLITE = "tflite"  # the default type of slimhub-tflite; "tflite.<type>"
TFLITE_TYPES = ("float", "uint8", "int8")
OPTIONAL_STEPS = (ARCHIVE, TFLITE) + tuple(f"{TFLITE}.{t}"
                                           for t in TFLITE_TYPES)


def derived_suffix(step):
  """What a derived step's file adds to the module's path."""
  if step == CARD:
    return ".md"
  if step == ARCHIVE:
    return ".tar.gz"
  kind, _, model_type = step.partition(".")
  if kind != TFLITE or (model_type and model_type not in TFLITE_TYPES):
    raise ValueError(f"Unknown derived step {step!r}")
  return f".{model_type}.tflite" if model_type else ".tflite"


class ModulePaths(collections.namedtuple("ModulePaths", ["module", "card"])):
  """A module directory and, next to it, its derived files."""

  @classmethod
  def of(cls, root, name):
    module = os.path.join(root, name)
    return cls(module, module + derived_suffix(CARD))

  def derived(self, step):
    return self.module + derived_suffix(step)

  def extras(self):
    """Every optional file that can sit beside the module, with its
    step."""
    return tuple((step, self.derived(step)) for step in OPTIONAL_STEPS)


def check_replaceable(module_dir, handle):
  """Refuses to replace a directory slimhub did not write for `handle`
  (local, or remote: any file below that prefix)."""
  if files.is_remote(module_dir):
    if not files.files_below(module_dir):
      return
  elif not os.path.exists(module_dir):
    return
  from slimhub import export  # pylint: disable=g-import-not-at-top
  try:
    recorded = json.loads(files.read_text(
        files.join(module_dir, export.METADATA_FILE))).get("handle")
  except (OSError, ValueError):
    recorded = None
  if recorded != handle:
    raise BuildError(f"{module_dir} exists and is not a slimhub module of "
                     f"{handle}; move it away to regenerate it")


def _brief(signature):
  """A signature of a layout: its inputs, its `default` output and how
  many outputs it has (the end points are in the golden layouts)."""
  return {"inputs": signature["inputs"],
          "default": signature["outputs"].get("default"),
          "num_outputs": len(signature["outputs"])}


def signature_summary(module_dir):
  """The module's signatures (and TF2 __call__ traces), in brief."""
  from slimhub.verify import layout  # pylint: disable=g-import-not-at-top
  from slimhub.verify import reading  # pylint: disable=g-import-not-at-top
  described = layout.of_module(reading.read(module_dir))
  if described["format"] == catalog.TF1_HUB:
    return {label: {name: _brief(signature)
                    for name, signature in variant["signatures"].items()}
            for label, variant in described["variants"].items()}
  summary = {f"[{tags}]": {name: _brief(signature)
                           for name, signature in signatures.items()
                           if not name.startswith("__")}
             for tags, signatures in described["signatures"].items()}
  summary["__call__"] = {
      label: {"inputs": trace["arguments"].get("inputs"),
              "default": (trace["output"]["default"]
                          if isinstance(trace["output"], dict)
                          else trace["output"])}
      for label, trace in described["call"]["traces"].items()}
  return summary


def verify_module(module_dir, entry, kind, version, checkpoint,
                  reference_cache=None):
  """slimhub-verify's checks of the module against its catalogue entry
  (with its golden layout) and the checkpoint; their record, or BuildError
  naming the failed checks. reference_cache: see verify.verify."""
  from slimhub import verify  # pylint: disable=g-import-not-at-top
  from slimhub.verify import checks  # pylint: disable=g-import-not-at-top
  report = verify.verify(module_dir, expect=entry.handle(kind, version),
                         checkpoint=checkpoint,
                         reference_cache=reference_cache)
  if not report.passed:
    raise BuildError("slimhub-verify failed:\n" + "\n".join(
        f"{result.id}: {result.detail}" for result in report.results
        if result.status == checks.FAIL))
  return {"passed": True, "counts": report.counts(),
          "checks": {result.id: result.status for result in report.results}}


def _tflite_model(module_dir, path, inputs):
  """Writes the module's TFLite model of `inputs["type"]` (None: the
  default type) to `path`; what the manifest records of it."""
  from slimhub import tflite  # pylint: disable=g-import-not-at-top
  calibration = inputs.get("calibration")
  try:
    info = tflite.convert(
        module_dir, path, model_type=inputs.get("type"),
        calibration=calibration and tflite.Calibration(
            directory=calibration.get("directory"),
            synthetic=calibration.get("synthetic", False),
            count=calibration["count"]))
  except tflite.TFLiteError as error:
    raise BuildError(f"TFLite: {error}") from None
  return {"type": info.metadata["type"], "inference_type": info.inference_type,
          "io_type": info.io_type, "image_size": list(info.image_size),
          "deviation": info.deviation}


def _make_derived(task, module_dir, staged, metadata, digest):
  """Makes the task's derived steps from the module at `module_dir` into
  the `staged` paths; their manifest entries."""
  entry = catalog.find(task["net"])
  made = {}
  for step, spec in sorted(task["derived"].items()):
    path = staged.derived(step)
    made[step] = {"path": spec["path"],
                  "inputs": dict(spec["inputs"], module_sha256=digest)}
    if step == CARD:
      with open(path, "w") as f:
        f.write(model_cards.render(
            entry, task["kind"], task["version"],
            model_cards.ModuleFacts.from_metadata(metadata),
            publisher=task["publisher"],
            checkpoint_sha256=task["inputs"]["checkpoint_sha256"]))
    elif step == ARCHIVE:
      archive.write(module_dir, path)
    else:
      made[step]["model"] = _tflite_model(module_dir, path, spec["inputs"])
  return made


def _place_derived(staged, final, made):
  for step in made:
    os.replace(staged.derived(step), final.derived(step))


def _place(staged, final, made, work_dir):
  """Renames the staged module and its derived files into place (removing
  optional files of steps not made); an older module is retired into the
  work directory first."""
  if os.path.exists(final.module):
    os.rename(final.module, os.path.join(work_dir, "retired"))
  os.makedirs(os.path.dirname(final.module), exist_ok=True)
  os.rename(staged.module, final.module)
  _place_derived(staged, final, made)
  for step, final_path in final.extras():
    if step not in made and os.path.exists(final_path):
      os.remove(final_path)


def _module_metadata(module_dir):
  from slimhub import export  # pylint: disable=g-import-not-at-top
  with open(os.path.join(module_dir, export.METADATA_FILE)) as f:
    return json.load(f)


def _record_derived(record, made, output_dir):
  """Adds the derived steps `made` (in place below `output_dir`) to
  `record`, with their files' hashes."""
  record["derived"] = dict(manifest.derived_steps(record), **made)
  for spec in made.values():
    record["files"][spec["path"]] = manifest.file_record(
        os.path.join(output_dir, spec["path"]))
  record["files"] = dict(sorted(record["files"].items()))
  manifest.describe_derived(record)
  return record


def build_derived(task):
  """Makes the derived steps of `task` from its module in place; the
  module's updated record."""
  started = time.time()
  final = ModulePaths.of(task["output_dir"], task["key"])
  staged = ModulePaths.of(task["work_dir"], "module")
  record = task["record"]
  made = _make_derived(task, final.module, staged,
                       _module_metadata(final.module),
                       record["content_sha256"])
  _place_derived(staged, final, made)
  record = _record_derived(record, made, task["output_dir"])
  record["derived_seconds"] = round(time.time() - started, 1)
  return record


def build(task):
  """Builds the module of `task` (see regenerate.plan); its record."""
  if task.get("derived_only"):
    return build_derived(task)
  from slimhub import export  # pylint: disable=g-import-not-at-top
  started = time.time()
  entry = catalog.find(task["net"])
  kind, version, output_dir = task["kind"], task["version"], task["output_dir"]
  final = ModulePaths.of(output_dir, task["key"])
  check_replaceable(final.module, entry.handle(kind, version))
  staged = ModulePaths.of(task["work_dir"], "module")
  export.export_module(entry.name, kind, version, task["checkpoint"],
                       staged.module,
                       checkpoint_source=task["checkpoint_source"])
  metadata = _module_metadata(staged.module)
  verification = verify_module(staged.module, entry, kind, version,
                               task["checkpoint"],
                               task.get("reference_cache"))
  digest = manifest.content_digest(staged.module)
  made = _make_derived(task, staged.module, staged, metadata, digest)
  signatures = signature_summary(staged.module)
  _place(staged, final, made, task["work_dir"])
  shutil.rmtree(os.path.join(task["work_dir"], "retired"), ignore_errors=True)
  record = {
      "handle": task["key"],
      "net": entry.name,
      "kind": kind,
      "version": version,
      "format": metadata["format"],
      "content_sha256": digest,
      "inputs": task["inputs"],
      "checkpoint_files": task["checkpoint_files"],
      "files": {path: manifest.file_record(os.path.join(output_dir, path))
                for path in manifest.relative_files(final.module,
                                                    output_dir)},
      "derived": {},
      "signatures": signatures,
      "verification": verification,
      "tensorflow_version": metadata["tensorflow_version"],
      "slimhub_version": metadata["slimhub_version"],
      "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  record = _record_derived(record, made, output_dir)
  record["build_seconds"] = round(time.time() - started, 1)
  return record
