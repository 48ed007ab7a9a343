"""A Beam FileSystem for the tests: slimhubtest:// URLs on a local directory.

slimhubtest://PATH is the file PATH below $SLIMHUBTEST_FS_ROOT, served like
an object store (gs://, s3://): no directories, listing by prefix, an object
visible whole once its writer closes. Importing the module registers the
scheme with Beam's FileSystems; slimhub-regenerate --engine=beam
--beam_plugins=slimhubtest_fs imports it in the driver and the SDK workers
(with this directory on PYTHONPATH).
"""

import io
import os
import shutil
import tempfile

from apache_beam.io import filesystem

SCHEME = "slimhubtest"
ROOT_ENV = "SLIMHUBTEST_FS_ROOT"
_PREFIX = SCHEME + "://"
_UPLOADS = ".uploads"  # below the root, outside every URL


def _root():
  return os.environ[ROOT_ENV]


def _local(url):
  if not url.startswith(_PREFIX):
    raise ValueError(f"{url} is not a {_PREFIX} URL")
  return os.path.join(_root(), url[len(_PREFIX):])


class _Upload(io.BytesIO):
  """A writer whose object appears, whole, when it is closed."""

  def __init__(self, local):
    super().__init__()
    self._local = local

  def close(self):
    if not self.closed:
      uploads = os.path.join(_root(), _UPLOADS)
      os.makedirs(uploads, exist_ok=True)
      handle, partial = tempfile.mkstemp(dir=uploads)
      with os.fdopen(handle, "wb") as f:
        f.write(self.getvalue())
      os.makedirs(os.path.dirname(self._local), exist_ok=True)
      os.replace(partial, self._local)
    super().close()


class SlimhubTestFileSystem(filesystem.FileSystem):
  """slimhubtest:// as an object store on $SLIMHUBTEST_FS_ROOT."""

  @classmethod
  def scheme(cls):
    return SCHEME

  def join(self, basepath, *paths):
    return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

  def split(self, path):
    head, _, tail = path.rstrip("/").rpartition("/")
    return head, tail

  def mkdirs(self, path):
    pass  # an object store has no directories

  def has_dirs(self):
    return False

  def _metadata(self, url, local):
    stat = os.stat(local)
    return filesystem.FileMetadata(url, stat.st_size, stat.st_mtime)

  def _list(self, dir_or_prefix):
    root = _root()
    for parent, directories, names in os.walk(root):
      if parent == root and _UPLOADS in directories:
        directories.remove(_UPLOADS)
      for name in names:
        local = os.path.join(parent, name)
        url = _PREFIX + os.path.relpath(local, root).replace(os.sep, "/")
        if url.startswith(dir_or_prefix):
          yield self._metadata(url, local)

  @staticmethod
  def _compression(path, compression_type):
    if compression_type == filesystem.CompressionTypes.AUTO:
      return filesystem.CompressionTypes.detect_compression_type(path)
    return compression_type

  def create(self, path, mime_type="application/octet-stream",
             compression_type=filesystem.CompressionTypes.AUTO):
    raw = _Upload(_local(path))
    compression = self._compression(path, compression_type)
    if compression == filesystem.CompressionTypes.UNCOMPRESSED:
      return raw
    return filesystem.CompressedFile(raw, compression)

  def open(self, path, mime_type="application/octet-stream",
           compression_type=filesystem.CompressionTypes.AUTO):
    raw = io.open(_local(path), "rb")
    compression = self._compression(path, compression_type)
    if compression == filesystem.CompressionTypes.UNCOMPRESSED:
      return raw
    return filesystem.CompressedFile(raw, compression)

  def _each(self, operation, sources, destinations):
    errors = {}
    for source, destination in zip(sources, destinations):
      try:
        os.makedirs(os.path.dirname(_local(destination)), exist_ok=True)
        operation(_local(source), _local(destination))
      except OSError as error:
        errors[(source, destination)] = error
    if errors:
      raise filesystem.BeamIOError("slimhubtest operation failed", errors)

  def copy(self, source_file_names, destination_file_names):
    self._each(shutil.copyfile, source_file_names, destination_file_names)

  def rename(self, source_file_names, destination_file_names):
    self._each(os.replace, source_file_names, destination_file_names)

  def exists(self, path):
    return os.path.isfile(_local(path))

  def size(self, path):
    return os.path.getsize(_local(path))

  def last_updated(self, path):
    return os.path.getmtime(_local(path))

  def checksum(self, path):
    return str(os.path.getsize(_local(path)))

  def metadata(self, path):
    return self._metadata(path, _local(path))

  def delete(self, paths):
    """Deletes objects, or every object below a prefix ending in "/" or
    naming a "directory" (as FileBasedSink removes its temporary files)."""
    errors = {}
    for path in paths:
      local = _local(path)
      if os.path.isfile(local):
        os.remove(local)
      elif os.path.isdir(local):
        shutil.rmtree(local)
      else:
        errors[path] = FileNotFoundError(f"no object {path}")
    if errors:
      raise filesystem.BeamIOError("slimhubtest delete failed", errors)
