"""Official TF-Slim checkpoint tarballs: download, check and extract safely.

    fetched = fetch_checkpoint(catalog.find("pnasnet_large"), "ckpts")
    fetched.prefix  # ckpts/pnasnet-5_large_2017_12_13/model.ckpt

The tarball named in the catalogue is downloaded (from `base_url` instead
of its home when a mirror is given), its SHA-256 is checked when the
catalogue pins one (or the caller passes one), and the checkpoint's files
are extracted into ``<cache_dir>/<tarball folder>/`` -- the layout
slimhub-regenerate reads. The mirror is not trusted:

* only the checkpoint's own members are written (``<prefix>.index``,
  ``<prefix>.data-*``, a V1 checkpoint's single ``<prefix>`` file and the
  ``checkpoint`` state file beside them); the rest is listed and skipped
  unless `extract_all`;
* the download and the tarball's decompressed bytes are bounded by
  `max_bytes` (default: default_max_bytes, derived from the net's variable
  shapes), checked against the declared sizes first and the bytes actually
  streamed always;
* members with absolute paths, ``..`` components, links that leave the
  directory or device files refuse the whole tarball, and what is written
  also passes tarfile's "data" filter.

Everything happens in a staging directory that is renamed into place at the
end: a failed or killed fetch caches nothing.
"""

import dataclasses
import functools
import gzip
import hashlib
import http.client
import math
import os
import posixpath
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from typing import Optional

from slimhub.regenerate import manifest
from slimhub.formats import atomic

_CHUNK = 1 << 20
_DOWNLOAD = ".slimhub-download"
_CONTENTS = ".slimhub-contents"

# A published Slim checkpoint may hold each variable four times over: its
# value, its ExponentialMovingAverage and two RMSProp slots (Momentum has
# one). Google's tarballs add a frozen graph and a TFLite file, each about
# the size of the weights: six copies at most, and 8 leaves headroom. Graph
# and text files (.meta, .pbtxt, info) do not grow with the weights; a fixed
# allowance covers them and the tar headers.
_WEIGHT_COPIES = 8
_FIXED_ALLOWANCE = 64 << 20
_BYTES_PER_VALUE = 4  # float32


class FetchError(ValueError):
  """A checkpoint that cannot be fetched; the message says why."""


@dataclasses.dataclass(frozen=True)
class Fetched:
  """prefix: the checkpoint prefix. sha256: the downloaded tarball's
  SHA-256, or None when the checkpoint was present and nothing was
  downloaded."""
  prefix: str
  sha256: Optional[str] = None


def tarball_url(entry, base_url=None):
  """The URL of `entry`'s tarball, on the mirror `base_url` if given."""
  if not entry.tarball:
    raise FetchError(f"{entry.name} has no published checkpoint tarball")
  base = base_url.rstrip("/") if base_url else entry.tarball_base
  return f"{base}/{entry.tarball}"


@functools.lru_cache(maxsize=None)
def default_max_bytes(entry):
  """The most bytes `entry`'s tarball may download or expand to.

  _WEIGHT_COPIES times the float32 size of the net's variables (as built
  by net_graph, so TensorFlow is imported here only) plus _FIXED_ALLOWANCE.
  """
  from slimhub.reference import net_graph  # pylint: disable=g-import-not-at-top
  values = sum(math.prod(shape)
               for _, shape in net_graph.checkpoint_variables(entry))
  return _WEIGHT_COPIES * _BYTES_PER_VALUE * values + _FIXED_ALLOWANCE


def _past_bound(url, max_bytes, what):
  return FetchError(f"Refusing {url}: {what} passes the bound of "
                    f"{max_bytes} bytes (max_bytes raises it); nothing was "
                    "cached")


def _content_length(headers):
  try:
    return int(headers.get("Content-Length"))
  except (TypeError, ValueError):
    return None


def _download(url, path, timeout, max_bytes, log):
  """Streams at most `max_bytes` of `url` into `path`; returns its
  SHA-256."""
  digest = hashlib.sha256()
  received = 0
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, \
        open(path, "wb") as f:
      declared = _content_length(response.headers)
      if declared is not None and declared > max_bytes:
        raise _past_bound(url, max_bytes,
                          f"its Content-Length of {declared} bytes")
      log(f"Downloading {url}"
          + (f" ({declared / 1e6:.1f} MB)" if declared else ""))
      for chunk in iter(lambda: response.read(_CHUNK), b""):
        received += len(chunk)
        if received > max_bytes:
          raise _past_bound(url, max_bytes, "the download")
        digest.update(chunk)
        f.write(chunk)
  except urllib.error.HTTPError as error:
    raise FetchError(f"Download of {url} failed: HTTP {error.code} "
                     f"{error.reason}") from None
  except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
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


class _Overflow(Exception):
  """The decompressed tarball passed its bound."""


class _BoundedReader:
  """Reads a file, raising _Overflow once more than `limit` bytes came."""

  def __init__(self, fileobj, limit):
    self._fileobj = fileobj
    self._left = limit

  def read(self, size=-1):
    data = self._fileobj.read(size)
    self._left -= len(data)
    if self._left < 0:
      raise _Overflow()
    return data


def _decompressed(raw):
  """`raw`'s bytes, gunzipped when it is gzip (the catalogue's tarballs are
  .tgz/.tar.gz): the tar stream whose size is bounded."""
  is_gzip = raw.read(2) == b"\x1f\x8b"
  raw.seek(0)
  return gzip.GzipFile(fileobj=raw) if is_gzip else raw


def _checkpoint_member(entry):
  """A predicate: is a member name one of `entry`'s checkpoint files?"""
  folder = entry.tarball_folder
  directory, base = posixpath.split(entry.checkpoint[len(folder) + 1:])

  def wanted(name):
    path = posixpath.normpath(name)
    if path.startswith(folder + "/"):  # Inside a top folder (mobilenet_v3).
      path = path[len(folder) + 1:]
    parent, file_name = posixpath.split(path)
    return parent == directory and (
        file_name in (base, base + ".index", "checkpoint")
        or file_name.startswith(base + ".data-"))

  return wanted


def _extract(archive, destination, url, *, wanted, max_bytes, log):
  """Streams the tarball once, extracting the members `wanted` accepts
  (all when it is None); returns the names of its non-directory members.

  Every member is checked (and any unsafe one refuses the tarball) and every
  decompressed byte counts against `max_bytes`, skipped members included:
  declared sizes refuse a bomb at its header, the byte count whatever the
  headers claim.
  """
  problems, skipped, names = [], [], []
  declared = 0
  where = "at its first header"
  with open(archive, "rb") as raw:
    try:
      with _decompressed(raw) as stream, tarfile.open(
          fileobj=_BoundedReader(stream, max_bytes), mode="r|") as tar:
        for member in tar:
          declared += member.size
          if declared > max_bytes:
            raise _past_bound(url, max_bytes, f"member {member.name!r} "
                              f"({member.size} bytes declared)")
          if not member.isdir():
            names.append(posixpath.normpath(member.name))
          reason = unsafe_member_reason(member)
          if reason:
            problems.append(reason)
          elif wanted is None or wanted(member.name):
            if not problems:  # Nothing more is written once refused.
              where = f"at member {member.name!r}"
              tar.extract(member, destination, filter="data")
          elif not member.isdir():
            skipped.append(names[-1])
          where = f"after member {member.name!r}"
    except _Overflow:
      raise _past_bound(url, max_bytes,
                        f"the decompressed tarball, {where},") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
      raise FetchError(f"Cannot extract {url}: {error}") from None
  if problems:
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise FetchError(f"Refusing to extract {url}: {shown}{more}")
  if skipped:
    log(f"Skipped {len(skipped)} members the checkpoint does not need "
        f"(extract_all keeps them): {', '.join(skipped)}")
  return names


def _contents_root(extracted, folder):
  """Where the tarball's files start: its only top-level folder when that
  is named like the tarball (mobilenet_v3), else the top level."""
  names = os.listdir(extracted)
  if names == [folder] and os.path.isdir(os.path.join(extracted, folder)):
    return os.path.join(extracted, folder)
  return extracted


def fetch_checkpoint(entry, cache_dir, *, base_url=None, sha256=None,
                     max_bytes=None, extract_all=False, timeout=60, log=None):
  """Fetches `entry`'s checkpoint into `cache_dir` unless it is present.

  sha256: the expected SHA-256 of the tarball (default: the catalogue's
  pin, if any). max_bytes: the most bytes the download and the extracted
  tarball may hold (default: default_max_bytes(entry)). extract_all: also
  extract the members the checkpoint does not need. Returns a Fetched;
  raises FetchError, and nothing is cached on failure.
  """
  log = log or (lambda message: None)
  if not entry.checkpoint or not entry.tarball:
    raise FetchError(f"{entry.name} has no published checkpoint tarball")
  prefix = os.path.join(cache_dir, entry.checkpoint)
  if manifest.checkpoint_files(prefix):
    log(f"{prefix} is already present")
    return Fetched(prefix)
  folder = entry.tarball_folder
  target = os.path.join(cache_dir, folder)
  if os.path.exists(target):
    raise FetchError(f"{target} exists but holds no checkpoint "
                     f"{entry.checkpoint}; remove it to fetch the tarball "
                     "again")
  if max_bytes is not None and max_bytes <= 0:
    raise FetchError(f"max_bytes must be positive, not {max_bytes}")
  max_bytes = max_bytes or default_max_bytes(entry)
  url = tarball_url(entry, base_url)
  expected = (sha256 or entry.tarball_sha256 or "").lower()
  os.makedirs(cache_dir, exist_ok=True)
  with atomic.atomic_directory(target) as staging:
    archive = os.path.join(staging, _DOWNLOAD)
    digest = _download(url, archive, timeout, max_bytes, log)
    if expected and digest != expected:
      raise FetchError(f"SHA-256 mismatch for {url}: expected {expected}, "
                       f"got {digest}; nothing was cached")
    log(f"SHA-256 {digest}" + (" (as pinned)" if expected else
                               " (no pinned hash to check against)"))
    extracted = os.path.join(staging, _CONTENTS)
    names = _extract(archive, extracted, url, max_bytes=max_bytes, log=log,
                     wanted=None if extract_all else _checkpoint_member(entry))
    os.remove(archive)
    os.makedirs(extracted, exist_ok=True)
    root = _contents_root(extracted, folder)
    inside = entry.checkpoint[len(folder) + 1:]
    if not manifest.checkpoint_files(os.path.join(root, inside)):
      raise FetchError(f"{url} holds no checkpoint {inside}; it holds: "
                       f"{', '.join(names[:10]) or 'no files'}")
    for name in os.listdir(root):
      os.rename(os.path.join(root, name), os.path.join(staging, name))
    shutil.rmtree(extracted)
  log(f"Extracted {url} into {target}")
  return Fetched(prefix, digest)
