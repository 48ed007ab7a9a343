"""The regeneration manifest: what was built from what, with file hashes.

``OUT/manifest.json`` holds one record per module, keyed by the module's
directory relative to OUT (``google/imagenet/<net>/<kind>/<version>``)::

    {"schema": "slimhub-regenerate-manifest/1",
     "modules": {"google/imagenet/inception_v2/feature_vector/3": {
         "handle", "net", "kind", "version", "format", "content_sha256",
         "inputs": {"checkpoint", "checkpoint_sha256", "slimhub_version",
                    "options": {"publisher"}},
         "checkpoint_files": {file name: sha256},
         "files": {path relative to OUT: {"sha256", "size"}},
         "derived": {step: {"path", "inputs"}},
         "model_card", "archive", "tflite", "signatures", "verification",
         "tensorflow_version", "slimhub_version", "built_at",
         "build_seconds"}}}

``derived`` lists the files made from the built module, each its own build
step (``card``, ``archive``, ``tflite`` or ``tflite.<type>``) with the inputs
it was made from (the module's content digest and the step's options): a
step whose inputs or file changed is redone, and one no longer asked for is
removed, without exporting the module again (plan.plan).

``content_sha256`` is the module's content digest (content_digest): it
covers every file of the module directory, except that in
``fingerprint.pb`` (TF2 modules) the field ``uuid`` (FingerprintDef field
7), which TensorFlow draws at random on every save, is cleared. Everything
else slimhub writes is deterministic, so a module rebuilt from the same
checkpoint with the same slimhub and TensorFlow has the same digest, and all
its files but fingerprint.pb are byte-identical.

A module is up to date when its record has the same inputs and every file
of the module it lists still hashes to the recorded value, with no file
added to the module directory. The manifest is rewritten atomically (temporary file and
rename) after every module, so a crash loses at most the modules in flight.
"""

import glob
import hashlib
import json
import os

from slimhub.formats import atomic
from slimhub.regenerate import files

SCHEMA = "slimhub-regenerate-manifest/1"
FILE_NAME = "manifest.json"
FINGERPRINT_FILE = "fingerprint.pb"
RANDOM_FIELD = "uuid"
RECORDS_DIR = ".regenerate-records"
_CHUNK = 1 << 20


class ManifestError(ValueError):
  """A manifest that cannot be read."""


def sha256_file(path):
  digest = hashlib.sha256()
  with files.open_read(path) as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      digest.update(chunk)
  return digest.hexdigest()


def file_record(path):
  return {"sha256": sha256_file(path), "size": files.size(path)}


def relative_files(directory, root):
  """Every file below `directory`, as sorted paths relative to `root`."""
  return sorted(files.relative(path, root)
                for path in files.files_below(directory))


def checkpoint_files(prefix):
  """The files of the checkpoint at `prefix`: its .index and data shards
  (V2), or the single file of a V1 checkpoint; [] when there is none."""
  if files.isfile(prefix + ".index"):
    pattern = prefix if files.is_remote(prefix) else glob.escape(prefix)
    return sorted([prefix + ".index"] + files.glob(pattern + ".data-*-of-*"))
  return [prefix] if files.isfile(prefix) else []


def checkpoint_digest(prefix):
  """(sha256 over all files, {file name: sha256}, total bytes) of a
  checkpoint.

  The combined digest hashes the sorted "name sha256" lines, so it changes
  when any file's content or name does.
  """
  paths = checkpoint_files(prefix)
  hashes = {os.path.basename(path): sha256_file(path) for path in paths}
  lines = "".join(f"{name} {digest}\n"
                  for name, digest in sorted(hashes.items()))
  return (hashlib.sha256(lines.encode("utf-8")).hexdigest(), hashes,
          sum(files.size(path) for path in paths))


def _fingerprint_without_uuid(data):
  from tensorflow.core.protobuf import fingerprint_pb2  # pylint: disable=g-import-not-at-top
  fingerprint = fingerprint_pb2.FingerprintDef.FromString(data)
  fingerprint.ClearField(RANDOM_FIELD)
  return fingerprint.SerializeToString(deterministic=True)


def content_sha256(path):
  """The sha256 of a module file, with the random field left out."""
  if os.path.basename(path) != FINGERPRINT_FILE:
    return sha256_file(path)
  with open(path, "rb") as f:
    return hashlib.sha256(_fingerprint_without_uuid(f.read())).hexdigest()


def content_digest(module_dir):
  """The content digest of a module: the sha256 of the sorted lines
  "<path in the module> <content_sha256>" of all its files."""
  lines = "".join(
      f"{path} {content_sha256(os.path.join(module_dir, path))}\n"
      for path in relative_files(module_dir, module_dir))
  return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def check_tree(output_dir, manifest_path=None, under=None):
  """Problems of the modules on disk against a manifest: one line per file
  that differs, is missing, or is not recorded, and per module whose content
  digest differs; [] when everything matches. `under` limits the check to
  the modules below that directory."""
  manifest = Manifest(output_dir, manifest_path)
  problems = []
  for key, record in sorted(manifest.modules.items()):
    module_dir = os.path.join(output_dir, key)
    if under and os.path.relpath(module_dir, under).startswith(os.pardir):
      continue
    recorded = record["files"]
    for path, expected in sorted(recorded.items()):
      full = os.path.join(output_dir, path)
      if not os.path.isfile(full):
        problems.append(f"{path}: missing")
        continue
      found = file_record(full)
      if found != expected:
        problems.append(f"{path}: differs from the manifest (sha256 "
                        f"{found['sha256']}, recorded {expected['sha256']})")
    if not os.path.isdir(module_dir):
      continue
    problems += [f"{path}: not in the manifest" for path in
                 sorted(set(relative_files(module_dir, output_dir))
                        - set(recorded))]
    digest = content_digest(module_dir)
    if digest != record["content_sha256"]:
      problems.append(f"{key}: content digest {digest} differs from the "
                      f"manifest's {record['content_sha256']}")
  return problems


def report_tree(manifest_path, under=None, out=print):
  """Prints check_tree's verdict on the tree of `manifest_path`; whether it
  passed."""
  output_dir = os.path.dirname(os.path.abspath(manifest_path))
  if not os.path.isfile(manifest_path):
    raise ManifestError(f"No manifest at {manifest_path}")
  problems = check_tree(output_dir, manifest_path,
                        under and os.path.abspath(under))
  if problems:
    out(f"manifest  FAIL  {len(problems)} problem(s) against {manifest_path}:")
    for problem in problems:
      out(f"  {problem}")
  else:
    out(f"manifest  pass  every file matches {manifest_path}")
  return not problems


def save_text(path, text):
  """Writes `text` atomically: locally by rename, remotely as one object."""
  if files.is_remote(path):
    files.write_remote(path, text.encode("utf-8"))
  else:
    atomic.write_file(path, text)


def records_dir(output_dir):
  """Where engines that write the manifest once commit each record first."""
  return files.join(output_dir, RECORDS_DIR)


def commit_record(directory, record):
  """Commits the record of a module whose files are in place."""
  if not files.is_remote(directory):
    os.makedirs(directory, exist_ok=True)
  name = hashlib.sha256(record["handle"].encode("utf-8")).hexdigest()
  save_text(files.join(directory, name + ".json"), json.dumps(record))


class Manifest:
  """OUT/manifest.json in memory; `save()` writes it atomically."""

  def __init__(self, output_dir, path=None):
    self.output_dir = output_dir
    self.path = path or files.join(output_dir, FILE_NAME)
    self.modules = {}
    if files.isfile(self.path):
      try:
        data = json.loads(files.read_text(self.path))
      except (OSError, ValueError) as error:
        raise ManifestError(f"Cannot read {self.path}: {error}") from None
      if data.get("schema") != SCHEMA:
        raise ManifestError(
            f"{self.path} has schema {data.get('schema')!r}, not {SCHEMA!r}")
      self.modules = data["modules"]

  def save(self):
    data = {"schema": SCHEMA,
            "modules": dict(sorted(self.modules.items()))}
    save_text(self.path, json.dumps(data, indent=2) + "\n")

  def merge_records(self, directory):
    """Adds the records committed in `directory`, saves the manifest once
    and removes them; {key: record} of those merged."""
    paths = files.glob(files.join(directory, "*.json"))
    merged = {}
    for path in paths:
      record = json.loads(files.read_text(path))
      merged[record["handle"]] = self.modules[record["handle"]] = record
    if merged:
      self.save()
    files.delete(paths)
    return merged

  def _file_problem(self, path, expected_record):
    full = files.join(self.output_dir, path)
    if not files.isfile(full):
      return f"{path} is missing"
    if file_record(full) != expected_record:
      return f"{path} changed"
    return None

  def stale_reason(self, key, inputs):
    """Why the module `key` must be (re)built for `inputs`, or None if its
    recorded module files are intact and were built from the same inputs.
    Derived files are derived_changes' business."""
    record = self.modules.get(key)
    if record is None:
      return "not built yet"
    recorded_inputs = module_inputs(record)
    if recorded_inputs != inputs:
      changed = sorted(name for name in set(inputs) | set(recorded_inputs)
                       if inputs.get(name) != recorded_inputs.get(name))
      return f"inputs changed ({', '.join(changed)})"
    derived = {step["path"] for step in derived_steps(record).values()}
    recorded = record["files"]
    for path, expected_record in recorded.items():
      problem = path not in derived and self._file_problem(path,
                                                           expected_record)
      if problem:
        return problem
    extra = sorted(set(relative_files(files.join(self.output_dir, key),
                                      self.output_dir)) - set(recorded))
    if extra:
      return f"unrecorded file {extra[0]} in the module"
    return None

  def derived_changes(self, key, wanted):
    """({step: why it must be made}, [steps to remove]) of the up-to-date
    module `key` for the derived steps `wanted` ({step: {"path",
    "inputs"}}, without the module digest its inputs get)."""
    record = self.modules[key]
    built = derived_steps(record)
    to_make = {}
    for step, spec in wanted.items():
      have = built.get(step)
      inputs = dict(spec["inputs"], module_sha256=record["content_sha256"])
      if have is None:
        to_make[step] = f"{spec['path']} not built yet"
      elif have["inputs"] != inputs or have["path"] != spec["path"]:
        to_make[step] = f"{spec['path']}: inputs changed"
      else:
        problem = self._file_problem(have["path"],
                                     record["files"].get(have["path"]))
        if problem:
          to_make[step] = problem
    return to_make, sorted(set(built) - set(wanted))

  def remove_derived(self, key, steps):
    """Deletes the files of the derived `steps` of module `key` and drops
    them from its record; saves the manifest. The removed paths."""
    record = self.modules[key]
    built = derived_steps(record)
    paths = [built[step]["path"] for step in steps]
    files.delete([path for path in (files.join(self.output_dir, p)
                                    for p in paths) if files.isfile(path)])
    record["derived"] = {step: spec for step, spec in built.items()
                         if step not in steps}
    for path in paths:
      record["files"].pop(path, None)
    describe_derived(record)
    self.save()
    return paths


# Module options of manifests before derived files were build steps.
_LEGACY_OPTIONS = ("archive", "tflite")


def module_inputs(record):
  """The inputs the module of `record` was built from."""
  inputs = dict(record["inputs"])
  inputs["options"] = {name: value
                       for name, value in inputs.get("options", {}).items()
                       if name not in _LEGACY_OPTIONS}
  return inputs


def derived_steps(record):
  """{step: {"path", "inputs"}} of the derived files of `record`; those of
  an older record, which has no "derived", with unknown inputs."""
  if "derived" in record:
    return record["derived"]
  legacy = {"card": record.get("model_card"), "archive": record.get("archive"),
            "tflite": (record.get("tflite") or {}).get("path")}
  return {step: {"path": path, "inputs": None}
          for step, path in legacy.items() if path}


def describe_derived(record):
  """Sets the record's summary fields (model_card, archive, tflite) from
  its derived steps and the TFLite facts in them."""
  steps = record["derived"]
  record["model_card"] = steps.get("card", {}).get("path")
  record["archive"] = steps.get("archive", {}).get("path")
  models = [dict(spec["model"], path=spec["path"])
            for step, spec in sorted(steps.items())
            if step.split(".")[0] == "tflite" and "model" in spec]
  record["tflite"] = models or None
