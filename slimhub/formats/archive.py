"""Module archives laid out like tfhub.dev's compressed modules.

The module's files sit at the top level of the .tar.gz (``saved_model.pb``,
``variables/variables.index``, ...), as `hub.resolve` expects them. The
archive is deterministic -- sorted members, mtime 0, no owner names, fixed
modes, a gzip header without name or time -- so equal modules give
byte-identical archives and the manifest hash of an archive is reproducible.
"""

import gzip
import os
import tarfile


def _members(directory):
  """(relative path, full path) of every directory and file, sorted."""
  members = []
  for parent, dirs, files in os.walk(directory):
    for name in dirs + files:
      full = os.path.join(parent, name)
      members.append((os.path.relpath(full, directory).replace(os.sep, "/"),
                      full))
  return sorted(members)


def write(module_dir, path):
  """Writes the archive of `module_dir` to `path`."""
  with open(path, "wb") as raw, \
      gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
      tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
    for name, full in _members(module_dir):
      info = tar.gettarinfo(full, arcname=name)
      info.mtime = 0
      info.uid = info.gid = 0
      info.uname = info.gname = ""
      if info.isdir():
        info.mode = 0o755
        tar.addfile(info)
      else:
        info.mode = 0o644
        with open(full, "rb") as f:
          tar.addfile(info, f)
