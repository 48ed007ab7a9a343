"""The regeneration's file operations, on local paths or remote URLs.

A local path (or one on a shared filesystem) goes through os and open, as
before. A path with a scheme other than file:// (gs://, s3://, hdfs://, or
any filesystem a Beam plugin registers) goes through Beam's FileSystems;
such paths are for --engine=beam, which installs apache-beam. Remote files
are read and written whole and uncompressed (FileSystems would otherwise
gunzip a .tar.gz), and listed by prefix, since object stores have no
directories.
"""

import glob as glob_lib
import os
import re

_SCHEME = re.compile(r"^([a-zA-Z][-a-zA-Z0-9+.]*)://")


def is_remote(path):
  """Whether `path` is a URL that Beam's FileSystems must handle."""
  match = _SCHEME.match(str(path))
  return bool(match) and match.group(1).lower() != "file"


def _filesystems():
  from apache_beam.io import filesystems  # pylint: disable=g-import-not-at-top
  return filesystems.FileSystems


def _uncompressed():
  from apache_beam.io import filesystem  # pylint: disable=g-import-not-at-top
  return filesystem.CompressionTypes.UNCOMPRESSED


def join(base, *parts):
  if is_remote(base):
    return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])
  return os.path.join(base, *parts)


def isfile(path):
  if is_remote(path):
    return _filesystems().exists(path)
  return os.path.isfile(path)


def size(path):
  if is_remote(path):
    return _filesystems().match([path])[0].metadata_list[0].size_in_bytes
  return os.path.getsize(path)


def open_read(path):
  """A binary file object reading `path`."""
  if is_remote(path):
    return _filesystems().open(path, compression_type=_uncompressed())
  return open(path, "rb")


def read_text(path):
  with open_read(path) as f:
    return f.read().decode("utf-8")


def write_remote(path, data):
  """Writes bytes `data` to the remote file `path` (object stores make it
  visible whole once closed)."""
  with _filesystems().create(path, compression_type=_uncompressed()) as f:
    f.write(data)


def copy_from_remote(remote_path, local_path, chunk=1 << 22):
  with open_read(remote_path) as source, open(local_path, "wb") as target:
    for data in iter(lambda: source.read(chunk), b""):
      target.write(data)


def copy_to_remote(local_path, remote_path, chunk=1 << 22):
  with open(local_path, "rb") as source, _filesystems().create(
      remote_path, compression_type=_uncompressed()) as target:
    for data in iter(lambda: source.read(chunk), b""):
      target.write(data)


def glob(pattern):
  """Sorted paths matching `pattern` (* stays within one path segment)."""
  if is_remote(pattern):
    result = _filesystems().match([pattern])[0]
    return sorted(metadata.path for metadata in result.metadata_list)
  return sorted(glob_lib.glob(pattern))


def files_below(directory):
  """Every file below `directory`, as full paths (remote: by prefix)."""
  if is_remote(directory):
    return glob(directory.rstrip("/") + "/**")
  return [os.path.join(parent, name)
          for parent, _, names in os.walk(directory) for name in names]


def relative(path, root):
  if is_remote(root):
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
      raise ValueError(f"{path} is not below {root}")
    return path[len(prefix):]
  return os.path.relpath(path, root).replace(os.sep, "/")


def delete(paths):
  """Deletes files (all local, or all remote)."""
  paths = list(paths)
  if paths and is_remote(paths[0]):
    _filesystems().delete(paths)
  else:
    for path in paths:
      os.remove(path)
