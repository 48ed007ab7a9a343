"""The hub cache and static HTTP layouts of a regeneration output.

    report = mirror("out", hub_cache_dir="cache", http_root="www")

Nothing is laid out unless every file of OUT matches OUT/manifest.json
(manifest.check_tree), so a mirror only ever serves the bytes that were
built and verified.

Hub cache: tensorflow_hub resolves an http(s) handle to
``$TFHUB_CACHE_DIR/<sha1 of the handle>`` and loads a non-empty directory
there without touching the network, so each module is put there for its
tfhub.dev handle (and every --handle_base), with the ``.descriptor.txt``
hub writes beside it. Files are hard links into OUT where the filesystem
allows, copies otherwise.

HTTP tree: ``<root>/<key>`` is the module's tarball (root = the module, as
hub expects for ``<url>?tf-hub-format=compressed``; static servers ignore
the query), with ``<key>.md`` (card), ``<key>[.<type>].tflite``, ``<key>.json``
(manifest record) and ``<key>.html`` beside it, plus ``index.html`` and
``catalogue.json`` (the rows of the index; the next run removes the files
of listed modules that the manifest no longer has).

Every file reaches its served path by a rename of a complete temporary
sibling, and a file whose content is already right is left alone, so a
re-run with nothing changed writes nothing and a killed run leaves old or
new files, never partial ones.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import socket
import tarfile

from slimhub import catalog
from slimhub.formats import archive
from slimhub.formats import atomic
from slimhub.formats import metadata as metadata_format
from slimhub.mirror import pages
from slimhub.regenerate import cards
from slimhub.regenerate import manifest as manifest_lib

CATALOGUE_FILE = "catalogue.json"
CATALOGUE_SCHEMA = "slimhub-mirror-catalogue/1"
INDEX_FILE = "index.html"
METADATA_FILE = metadata_format.METADATA_FILE
_CHUNK = 1 << 20


class MirrorError(ValueError):
  """A regeneration output that cannot be mirrored."""


@dataclasses.dataclass
class Report:
  """What a run did: paths written and removed (relative to their root,
  cache directories as `<sha1>/`), and how many were already right."""
  written: list = dataclasses.field(default_factory=list)
  removed: list = dataclasses.field(default_factory=list)
  unchanged: int = 0

  def count(self, changed, path):
    if changed:
      self.written.append(path)
    else:
      self.unchanged += 1

  def summary(self):
    """The line a run ends with."""
    removed = f", {len(self.removed)} removed" if self.removed else ""
    return (f"Mirror: {len(self.written)} written, {self.unchanged} already "
            f"up to date{removed}")


def cache_name(handle):
  """The directory name tensorflow_hub caches `handle` under."""
  return hashlib.sha1(handle.encode("utf8")).hexdigest()


def descriptor_text(handle):
  """The `<dir>.descriptor.txt` text, in the words hub's resolver uses
  (informational only: hub never reads it)."""
  return (f"Module: {handle}\nDownload Time: {datetime.datetime.today()}\n"
          f"Downloader Hostname: {socket.gethostname()} (PID:{os.getpid()})")


def _same_file(path, source, expected):
  """Whether `path` already holds the bytes of `source` (recorded as
  `expected`): the same inode, or the same size and sha256."""
  if not os.path.isfile(path):
    return False
  if os.path.samefile(path, source):
    return True
  return manifest_lib.file_record(path) == expected


def _link_or_copy(source, target):
  try:
    os.link(source, target)
  except OSError:
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)


def _publish_file(source, expected, path):
  """Puts `source` at `path` unless it is already there; whether it wrote."""
  if _same_file(path, source, expected):
    return False
  atomic.replace_with(path,
                      lambda temporary: _link_or_copy(source, temporary))
  return True


def _publish_text(text, path):
  data = text.encode("utf-8")
  if os.path.isfile(path):
    with open(path, "rb") as f:
      if f.read() == data:
        return False
  atomic.write_file(path, data)
  return True


def _module_files(record, key):
  """{path inside the module: recorded {sha256, size}}."""
  prefix = key + "/"
  return {path[len(prefix):]: value for path, value in record["files"].items()
          if path.startswith(prefix)}


def _cache_is_current(directory, module_dir, expected):
  if not os.path.isdir(directory):
    return False
  found = manifest_lib.relative_files(directory, directory)
  return sorted(expected) == found and all(
      _same_file(os.path.join(directory, path),
                 os.path.join(module_dir, path), expected[path])
      for path in found)


def _cache_module(module_dir, expected, handle, cache_dir):
  """Puts the module at hub's cache directory of `handle`; whether it
  wrote anything."""
  directory = os.path.join(cache_dir, cache_name(handle))
  written = False
  if not _cache_is_current(directory, module_dir, expected):
    with atomic.atomic_directory(directory, overwrite=True) as staging:
      for path in sorted(expected):
        target = os.path.join(staging, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _link_or_copy(os.path.join(module_dir, path), target)
    written = True
  descriptor = directory + ".descriptor.txt"
  first_line = f"Module: {handle}\n"
  if written or not _starts_with(descriptor, first_line):
    atomic.write_file(descriptor, descriptor_text(handle))
    written = True
  return written


def _starts_with(path, text):
  if not os.path.isfile(path):
    return False
  with open(path, encoding="utf-8", errors="replace") as f:
    return f.read(len(text)) == text


def _input_size(metadata):
  height, width = metadata["default_image_size"]
  if metadata["variable_input_size"]:
    return f"any (default {height}x{width})"
  return f"{height}x{width}"


def _record_text(record):
  return json.dumps(record, indent=2, sort_keys=True) + "\n"


def _row(key, record, metadata, tarball):
  """What the index says about a module, and which files it serves."""
  entry = catalog.find(record["net"])
  classify = record["kind"] == catalog.CLASSIFICATION
  # Each TFLite model is served under its name beside the module's:
  # <key>.tflite (the default type), <key>.<type>.tflite.
  tflite = [(model["path"][len(key):], model["path"])
            for model in record.get("tflite") or ()]
  served = [key, key + ".md", key + ".json", key + ".html"]
  served += [key + suffix for suffix, _ in tflite]
  return {
      "handle": key, "net": record["net"], "kind": record["kind"],
      "version": record["version"], "format": record["format"],
      "input_size": _input_size(metadata),
      "output_dim": metadata["num_classes" if classify else "num_features"],
      "fine_tunable": not entry.quantized,
      "size": tarball["size"], "sha256": tarball["sha256"],
      "tflite": tflite,
      "files": sorted(served),
  }


def _read_catalogue(http_root):
  path = os.path.join(http_root, CATALOGUE_FILE)
  if not os.path.isfile(path):
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, ValueError) as error:
    raise MirrorError(f"Cannot read {path}: {error}") from None
  if data.get("schema") != CATALOGUE_SCHEMA:
    raise MirrorError(f"{path} has schema {data.get('schema')!r}, not "
                      f"{CATALOGUE_SCHEMA!r}; is http_root another tree?")
  return data["modules"]


def _remove_leftovers(http_root, keys):
  """Removes the temporary files a killed run left beside served paths
  (only in the directories this tree serves from, never elsewhere)."""
  directories = {http_root} | {os.path.dirname(os.path.join(http_root, key))
                               for key in keys}
  for directory in sorted(directories):
    if not os.path.isdir(directory):
      continue
    for name in os.listdir(directory):
      path = os.path.join(directory, name)
      if (name.startswith(".") and name.endswith(atomic.TEMPORARY_SUFFIX)
          and os.path.isfile(path)):
        os.remove(path)


def _remove_empty_parents(directory, root):
  root = os.path.abspath(root)
  directory = os.path.abspath(directory)
  while directory != root and not os.listdir(directory):
    os.rmdir(directory)
    directory = os.path.dirname(directory)


def _tarball_matches(path, expected):
  """Whether the tarball at `path` holds exactly the files `expected`
  ({path: {sha256, size}}), with nothing but directories besides."""
  found = {}
  try:
    with tarfile.open(path) as tar:
      for member in tar:
        if member.isdir():
          continue
        if not member.isfile():
          return False
        digest = hashlib.sha256()
        with tar.extractfile(member) as f:
          for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
        found[member.name] = {"sha256": digest.hexdigest(),
                              "size": member.size}
  except (OSError, EOFError, tarfile.TarError):
    return False
  return found == expected


def _tarball(key, record, module_dir, regenerated, path, report):
  """Puts the module's tarball at `path` (the archive regeneration made,
  if any, else a new one); its {sha256, size}."""
  recorded = record.get("archive")
  if recorded:
    expected = record["files"][recorded]
    report.count(_publish_file(os.path.join(regenerated, recorded), expected,
                               path), key)
    return expected
  if _tarball_matches(path, _module_files(record, key)):
    report.count(False, key)
  else:
    atomic.replace_with(path,
                        lambda temporary: archive.write(module_dir, temporary))
    report.count(True, key)
  return manifest_lib.file_record(path)


def _serve_module(key, record, regenerated, http_root, mirror_url, report):
  module_dir = os.path.join(regenerated, key)
  with open(os.path.join(module_dir, METADATA_FILE), encoding="utf-8") as f:
    metadata = json.load(f)
  target = os.path.join(http_root, key)
  tarball = _tarball(key, record, module_dir, regenerated, target, report)
  row = _row(key, record, metadata, tarball)
  for suffix, recorded in ((".md", record["model_card"]), *row["tflite"]):
    if recorded:
      report.count(_publish_file(os.path.join(regenerated, recorded),
                                 record["files"][recorded], target + suffix),
                   key + suffix)
  with open(os.path.join(regenerated, record["model_card"]),
            encoding="utf-8") as f:
    card = f.read()
  for suffix, text in ((".json", _record_text(record)),
                       (".html", pages.module_page(row, card, mirror_url))):
    report.count(_publish_text(text, target + suffix), key + suffix)
  return row


def _serve(records, regenerated, http_root, mirror_url, report):
  os.makedirs(http_root, exist_ok=True)
  previous = _read_catalogue(http_root)
  _remove_leftovers(http_root, set(records) | set(previous))
  rows = {key: _serve_module(key, record, regenerated, http_root,
                             mirror_url, report)
          for key, record in sorted(records.items())}
  for key in sorted(set(previous) - set(rows)):
    for path in previous[key]["files"]:
      full = os.path.join(http_root, path)
      if os.path.isfile(full):
        os.remove(full)
        report.removed.append(path)
        _remove_empty_parents(os.path.dirname(full), http_root)
  report.count(_publish_text(
      json.dumps({"schema": CATALOGUE_SCHEMA, "modules": rows}, indent=2,
                 sort_keys=True) + "\n",
      os.path.join(http_root, CATALOGUE_FILE)), CATALOGUE_FILE)
  report.count(_publish_text(pages.index_page(list(rows.values()), mirror_url),
                             os.path.join(http_root, INDEX_FILE)), INDEX_FILE)


def handles(key, handle_bases=()):
  """The http(s) handles a module is cached under: its tfhub.dev handle
  and one per extra base URL."""
  return [f"{base.rstrip('/')}/{key}" for base in (cards.TFHUB_URL, *handle_bases)]


def check(regenerated):
  """The manifest records of `regenerated`, or MirrorError naming every
  file that differs from them."""
  manifest_path = os.path.join(regenerated, manifest_lib.FILE_NAME)
  if not os.path.isfile(manifest_path):
    raise MirrorError(f"No manifest at {manifest_path}: is {regenerated} a "
                      "slimhub-regenerate output directory?")
  try:
    records = manifest_lib.Manifest(regenerated).modules
    problems = manifest_lib.check_tree(regenerated)
  except manifest_lib.ManifestError as error:
    raise MirrorError(str(error)) from None
  if problems:
    raise MirrorError(
        f"{regenerated} does not match {manifest_path}, so nothing was laid "
        "out:\n" + "\n".join(f"  {problem}" for problem in problems))
  if not records:
    raise MirrorError(f"{manifest_path} records no module")
  return records


def mirror(regenerated, hub_cache_dir=None, http_root=None, handle_bases=(),
           mirror_url=None):
  """Checks `regenerated` against its manifest, then lays it out as a hub
  cache and/or an HTTP tree; the Report. mirror_url: where http_root is
  served, for the pages' hub.load lines (else the page works it out)."""
  if not hub_cache_dir and not http_root:
    raise MirrorError("Nothing to do: give hub_cache_dir or http_root")
  for base in handle_bases:
    if not base.startswith(("http://", "https://")):
      raise MirrorError(f"handle base {base!r} is not an http(s) URL; hub "
                        "caches only those handles by their sha1")
  regenerated = os.path.abspath(regenerated)
  records = check(regenerated)
  report = Report()
  if hub_cache_dir:
    os.makedirs(hub_cache_dir, exist_ok=True)
    for key, record in sorted(records.items()):
      module_dir = os.path.join(regenerated, key)
      expected = _module_files(record, key)
      for handle in handles(key, handle_bases):
        report.count(_cache_module(module_dir, expected, handle,
                                   hub_cache_dir), cache_name(handle) + "/")
  if http_root:
    _serve(records, regenerated, http_root, mirror_url, report)
  return report
