"""Official TF-Slim checkpoint tarballs: download, check and extract safely.

    prefix = fetch_checkpoint(catalog.find("pnasnet_large"), "ckpts")
    # ckpts/pnasnet-5_large_2017_12_13/model.ckpt

The tarball named in the catalogue is downloaded (from `base_url` instead
of its home when a mirror is given), its SHA-256 is checked when the
catalogue pins one (or the caller passes one), and it is extracted into
``<cache_dir>/<tarball folder>/`` -- the layout slimhub-regenerate reads.
Members with absolute paths, ``..`` components, links that leave the
directory, or device files are refused before anything is extracted, and
extraction also runs under tarfile's "data" filter. Everything happens in a
staging directory that is renamed into place at the end: a failed or killed
fetch caches nothing.
"""

import hashlib
import os
import posixpath
import shutil
import tarfile
import urllib.error
import urllib.request

from slimhub.regenerate import manifest
from slimhub.formats import atomic

_CHUNK = 1 << 20
_DOWNLOAD = ".slimhub-download"
_CONTENTS = ".slimhub-contents"


class FetchError(ValueError):
  """A checkpoint that cannot be fetched; the message says why."""


def tarball_url(entry, base_url=None):
  """The URL of `entry`'s tarball, on the mirror `base_url` if given."""
  if not entry.tarball:
    raise FetchError(f"{entry.name} has no published checkpoint tarball")
  base = base_url.rstrip("/") if base_url else entry.tarball_base
  return f"{base}/{entry.tarball}"


def _download(url, path, timeout, log):
  """Streams `url` into `path`; returns its SHA-256."""
  digest = hashlib.sha256()
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, \
        open(path, "wb") as f:
      total = int(response.headers.get("Content-Length") or 0)
      log(f"Downloading {url}"
          + (f" ({total / 1e6:.1f} MB)" if total else ""))
      for chunk in iter(lambda: response.read(_CHUNK), b""):
        digest.update(chunk)
        f.write(chunk)
  except urllib.error.HTTPError as error:
    raise FetchError(f"Download of {url} failed: HTTP {error.code} "
                     f"{error.reason}") from None
  except (urllib.error.URLError, OSError) as error:
    reason = getattr(error, "reason", error)
    raise FetchError(f"Cannot download {url}: {reason}") from None
  return digest.hexdigest()


def unsafe_member_reason(member):
  """Why extracting tar `member` could write outside the target, or None."""
  name = member.name
  if name.startswith("/"):
    return f"absolute path {name!r}"
  if ".." in name.split("/"):
    return f"path {name!r} leaves the directory"
  if member.issym() or member.islnk():
    target = member.linkname
    base = posixpath.dirname(name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
      kind = "symlink" if member.issym() else "hard link"
      return f"{kind} {name!r} -> {target!r} points outside the directory"
  elif not (member.isfile() or member.isdir()):
    return f"special file {name!r}"
  return None


def _extract(archive, destination, url):
  try:
    tar = tarfile.open(archive, "r:*")
  except tarfile.TarError as error:
    raise FetchError(f"{url} is not a readable tar archive: {error}") from None
  with tar:
    problems = [reason for reason in map(unsafe_member_reason, tar)
                if reason]
    if problems:
      shown = "; ".join(problems[:5])
      more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
      raise FetchError(f"Refusing to extract {url}: {shown}{more}")
    try:
      tar.extractall(destination, filter="data")
    except (tarfile.TarError, OSError) as error:
      raise FetchError(f"Cannot extract {url}: {error}") from None


def _contents_root(extracted, folder):
  """Where the tarball's files start: its only top-level folder when that
  is named like the tarball (mobilenet_v3), else the top level."""
  names = os.listdir(extracted)
  if names == [folder] and os.path.isdir(os.path.join(extracted, folder)):
    return os.path.join(extracted, folder)
  return extracted


def fetch_checkpoint(entry, cache_dir, *, base_url=None, sha256=None,
                     timeout=60, log=None):
  """The prefix of `entry`'s checkpoint in `cache_dir`, fetched if absent.

  sha256: the expected SHA-256 of the tarball (default: the catalogue's
  pin, if any). Raises FetchError; nothing is cached on failure.
  """
  log = log or (lambda message: None)
  if not entry.checkpoint or not entry.tarball:
    raise FetchError(f"{entry.name} has no published checkpoint tarball")
  prefix = os.path.join(cache_dir, entry.checkpoint)
  if manifest.checkpoint_files(prefix):
    log(f"{prefix} is already present")
    return prefix
  folder = entry.tarball_folder
  target = os.path.join(cache_dir, folder)
  if os.path.exists(target):
    raise FetchError(f"{target} exists but holds no checkpoint "
                     f"{entry.checkpoint}; remove it to fetch the tarball "
                     "again")
  url = tarball_url(entry, base_url)
  expected = (sha256 or entry.tarball_sha256 or "").lower()
  os.makedirs(cache_dir, exist_ok=True)
  with atomic.atomic_directory(target) as staging:
    archive = os.path.join(staging, _DOWNLOAD)
    digest = _download(url, archive, timeout, log)
    if expected and digest != expected:
      raise FetchError(f"SHA-256 mismatch for {url}: expected {expected}, "
                       f"got {digest}; nothing was cached")
    log(f"SHA-256 {digest}" + (" (as pinned)" if expected else
                               " (no pinned hash to check against)"))
    extracted = os.path.join(staging, _CONTENTS)
    _extract(archive, extracted, url)
    os.remove(archive)
    root = _contents_root(extracted, folder)
    inside = entry.checkpoint[len(folder) + 1:]
    if not manifest.checkpoint_files(os.path.join(root, inside)):
      found = manifest.relative_files(root, root)[:10]
      raise FetchError(f"{url} holds no checkpoint {inside}; it holds: "
                       f"{', '.join(found) or 'no files'}")
    for name in os.listdir(root):
      os.rename(os.path.join(root, name), os.path.join(staging, name))
    shutil.rmtree(extracted)
  log(f"Extracted {url} into {target}")
  return prefix
