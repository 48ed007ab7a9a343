"""The one unit of work of slimhub-regenerate: build module K.

build(task) exports the module of a task (see plan.plan) into the task's
work directory, verifies it, renders its model card, archive and TFLite
model, and only then moves them into place; it returns the module's
manifest record. Every
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


class ModulePaths(collections.namedtuple(
    "ModulePaths", ["module", "card", "archive", "tflite"])):
  """A module directory and, next to it, its model card, archive and
  TFLite model."""

  @classmethod
  def of(cls, root, name):
    module = os.path.join(root, name)
    return cls(module, module + ".md", module + ".tar.gz", module + ".tflite")

  def extras(self):
    """The optional files beside the module, each with its task option."""
    return (("archive", self.archive), ("tflite", self.tflite))


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


def _tflite_record(module_dir, path):
  """Writes the module's TFLite model (uint8 for quantops, float
  otherwise) to `path`; what the manifest records of it."""
  from slimhub import tflite  # pylint: disable=g-import-not-at-top
  try:
    info = tflite.convert(module_dir, path)
  except tflite.TFLiteError as error:
    raise BuildError(f"TFLite: {error}") from None
  return {"inference_type": info.inference_type,
          "image_size": list(info.image_size)}


def _place(staged, final, task, work_dir):
  """Renames the staged module, card and the extras the task asks for into
  place (removing extras it no longer asks for); an older module is retired
  into the work directory first."""
  if os.path.exists(final.module):
    os.rename(final.module, os.path.join(work_dir, "retired"))
  os.makedirs(os.path.dirname(final.module), exist_ok=True)
  os.rename(staged.module, final.module)
  os.replace(staged.card, final.card)
  for (option, staged_path), (_, final_path) in zip(staged.extras(),
                                                    final.extras()):
    if task.get(option):
      os.replace(staged_path, final_path)
    elif os.path.exists(final_path):
      os.remove(final_path)


def build(task):
  """Builds the module of `task` (see regenerate.plan); its record."""
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
  with open(os.path.join(staged.module, export.METADATA_FILE)) as f:
    metadata = json.load(f)
  verification = verify_module(staged.module, entry, kind, version,
                               task["checkpoint"],
                               task.get("reference_cache"))
  with open(staged.card, "w") as f:
    f.write(model_cards.render(
        entry, kind, version, model_cards.ModuleFacts.from_metadata(metadata),
        publisher=task["publisher"],
        checkpoint_sha256=task["inputs"]["checkpoint_sha256"]))
  if task["archive"]:
    archive.write(staged.module, staged.archive)
  tflite = (_tflite_record(staged.module, staged.tflite)
            if task.get("tflite") else None)
  signatures = signature_summary(staged.module)
  _place(staged, final, task, task["work_dir"])
  shutil.rmtree(os.path.join(task["work_dir"], "retired"), ignore_errors=True)

  relative = lambda path: os.path.relpath(path, output_dir)
  outputs = manifest.relative_files(final.module, output_dir) + [
      relative(path) for path in (final.card, final.archive, final.tflite)
      if os.path.exists(path)]
  return {
      "handle": task["key"],
      "net": entry.name,
      "kind": kind,
      "version": version,
      "format": metadata["format"],
      "content_sha256": manifest.content_digest(final.module),
      "inputs": task["inputs"],
      "checkpoint_files": task["checkpoint_files"],
      "files": {path: manifest.file_record(os.path.join(output_dir, path))
                for path in sorted(outputs)},
      "model_card": relative(final.card),
      "archive": relative(final.archive) if task["archive"] else None,
      "tflite": dict(tflite, path=relative(final.tflite)) if tflite else None,
      "signatures": signatures,
      "verification": verification,
      "tensorflow_version": metadata["tensorflow_version"],
      "slimhub_version": metadata["slimhub_version"],
      "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "build_seconds": round(time.time() - started, 1),
  }
