"""Atomic export directories and files: they appear complete or not at all.

Writers fill a temporary sibling of the target (same filesystem), which is
renamed into place only after everything was written. A crash or SIGKILL
leaves the target untouched; the orphaned temporary directory is removed by
the next export to the same target.
"""

import contextlib
import os
import re
import shutil
import tempfile


class ExportDirError(ValueError):
  """The export target cannot be used."""


def check_target(target, overwrite, names=("target", "overwrite=True")):
  """Raises ExportDirError if writing `target` would clobber something.

  names: what the caller calls the target and the overwrite choice, for
  the message (a library its parameters, a binary its flags).
  """
  target_name, overwrite_name = names
  target = os.path.abspath(target)
  if os.path.isfile(target):
    raise ExportDirError(
        f"{target_name} {target} is a file, not a directory")
  if os.path.isdir(target) and os.listdir(target) and not overwrite:
    raise ExportDirError(
        f"{target_name} {target} exists and is not empty; pass "
        f"{overwrite_name} to replace it")


def _pid_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _remove_orphans(parent, base):
  pattern = re.compile(re.escape(f".{base}.tmp-") + r"(\d+)-")
  for name in os.listdir(parent):
    match = pattern.match(name)
    if match and not _pid_alive(int(match.group(1))):
      shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target, overwrite=False):
  """Yields a temporary directory that becomes `target` on success."""
  target = os.path.abspath(target)
  check_target(target, overwrite)
  parent, base = os.path.split(target)
  os.makedirs(parent, exist_ok=True)
  _remove_orphans(parent, base)
  staging = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(staging, 0o777 & ~umask)
  try:
    yield staging
    check_target(target, overwrite)
    if os.path.isdir(target):
      retired = staging + ".old"
      os.rename(target, retired)
      os.rename(staging, target)
      shutil.rmtree(retired)
    else:
      os.rename(staging, target)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


# Temporaries are hidden siblings ".<name>.<pid>.<token>" + TEMPORARY_SUFFIX,
# so that a reader of the directory (e.g. the mirror's clean-up after a
# killed run) can tell them from finished files.
TEMPORARY_SUFFIX = ".tmp"


def replace_with(path, write):
  """Calls write(temporary) for a temporary sibling of `path` that does not
  exist yet, syncs it and renames it to `path`; the directory is created if
  needed. A failed write leaves neither `path` changed nor the temporary."""
  directory, name = os.path.split(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  temporary = os.path.join(
      directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
      f"{TEMPORARY_SUFFIX}")
  try:
    write(temporary)
    with open(temporary, "rb") as f:
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    if os.path.lexists(temporary):
      os.remove(temporary)
    raise


def write_file(path, data):
  """Writes `data` (str or bytes) to `path` through a synced temporary
  sibling and a rename (replace_with)."""

  def write(temporary):
    with open(temporary, "w" if isinstance(data, str) else "wb") as f:
      f.write(data)
    os.chmod(temporary, 0o644)

  replace_with(path, write)
