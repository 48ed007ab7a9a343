"""Fetching official checkpoint tarballs from mirrors (file:// and a real
HTTP server on 127.0.0.1): the extracted layout, pinned and wrong SHA-256,
hostile members, decompression bombs and unbounded downloads."""

import ast
import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from slimhub import catalog
from slimhub.regenerate import fetch
from slimhub.reference import untrained as make_checkpoint

NET = "mobilenet_v1_025_128"
STEM = "mobilenet_v1_0.25_128"
# The non-checkpoint files of Google's mobilenet_v1 tarballs.
EXTRAS = [f"{STEM}.ckpt.meta", f"{STEM}_frozen.pb", f"{STEM}.tflite",
          f"{STEM}_eval.pbtxt", f"{STEM}_info.txt"]
_MIB = 1 << 20


class _Server:
  """A threaded HTTP server for `root`, counting the requests per path.

  streams: {path: (Content-Length header or None, bytes of zeros to send)}
  served instead of files; a stream stops at its size or when the client
  hangs up.
  """

  def __init__(self, root, streams=None):
    requests = self.requests = []
    streams = streams or {}

    class Handler(http.server.SimpleHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        requests.append(self.path)
        if self.path not in streams:
          super().do_GET()
          return
        length, size = streams[self.path]
        self.send_response(200)
        if length is not None:
          self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
          for _ in range(size // _MIB):
            self.wfile.write(bytes(_MIB))
        except (BrokenPipeError, ConnectionResetError):
          pass
        self.close_connection = True

      def log_message(self, *args):
        del args

    self.httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    self.httpd.daemon_threads = True
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
    threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                     daemon=True).start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path):
  root = tmp_path / "mirror"
  root.mkdir()
  server = _Server(root)
  yield root, server
  server.close()


def _member(name, data=b"", **fields):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  info.mode = 0o755 if fields.get("type") == tarfile.DIRTYPE else 0o644
  for key, value in fields.items():
    setattr(info, key, value)
  return info


def _publish(mirror_root, entry, members):
  """Writes a .tgz with `members` [(name, bytes, or None for a folder) or
  TarInfo] where `entry` expects it; returns its SHA-256."""
  path = mirror_root / entry.tarball
  path.parent.mkdir(parents=True, exist_ok=True)
  with tarfile.open(path, "w:gz") as tar:
    for member in members:
      if isinstance(member, tarfile.TarInfo):
        tar.addfile(member)
      elif member[1] is None:
        tar.addfile(_member(member[0], type=tarfile.DIRTYPE))
      else:
        tar.addfile(_member(*member), io.BytesIO(member[1]))
  return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
  """[(member name, bytes)] of a mobilenet_v1 tarball as Google packs it:
  './' entries, the checkpoint files and their neighbours at the top."""
  directory = tmp_path_factory.mktemp("checkpoint")
  prefix = make_checkpoint.make_checkpoint(NET, 1, checkpoint_dir=directory)
  files = sorted(os.listdir(os.path.dirname(prefix)))
  members = [("./", None)] + [
      (f"./{name}", open(os.path.join(os.path.dirname(prefix), name),
                         "rb").read()) for name in files]
  return members + [(f"./{name}", name.encode() * 100) for name in EXTRAS]


def _bound():
  """The default bound of NET, computed before anything is timed."""
  return fetch.default_max_bytes(catalog.find(NET))


def test_default_bound_follows_the_variable_shapes():
  """8 float32 copies of the reference checkpoint's variables + 64 MiB."""
  with open(os.path.join(os.path.dirname(__file__), "data", "reference",
                         f"{NET}.json"), encoding="utf-8") as f:
    variables = json.load(f)["checkpoint_variables"]
  weights = 4 * sum(math.prod(shape) for _, shape in variables)
  assert 1.5e6 < weights < 2.5e6  # 0.47 M values
  assert _bound() == 8 * weights + 64 * _MIB


def test_fetch_extracts_only_the_checkpoint_files(tmp_path, mirror,
                                                  official_files):
  root, server = mirror
  entry = catalog.find(NET)
  digest = _publish(root, entry, official_files)
  cache = tmp_path / "cache"
  lines = []
  fetched = fetch.fetch_checkpoint(entry, str(cache), base_url=server.url,
                                   sha256=digest, log=lines.append)
  assert fetched == fetch.Fetched(str(cache / STEM / f"{STEM}.ckpt"), digest)
  assert sorted(os.listdir(cache)) == [STEM]
  assert sorted(os.listdir(cache / STEM)) == [
      f"{STEM}.ckpt.data-00000-of-00001", f"{STEM}.ckpt.index"]
  skipped = [line for line in lines if line.startswith("Skipped")]
  assert skipped == [
      "Skipped 5 members the checkpoint does not need (extract_all keeps "
      f"them): {', '.join(EXTRAS)}"]
  assert server.requests == [f"/{entry.tarball}"]
  # Present now: no second download.
  again = fetch.fetch_checkpoint(entry, str(cache), base_url=server.url)
  assert again == fetch.Fetched(fetched.prefix, None)
  assert len(server.requests) == 1
  everything = tmp_path / "all"
  fetch.fetch_checkpoint(entry, str(everything), base_url=server.url,
                         extract_all=True)
  assert sorted(os.listdir(everything / STEM)) == sorted(
      os.listdir(cache / STEM) + EXTRAS)


def test_tarball_with_a_top_folder_named_like_it_is_not_nested(tmp_path,
                                                               mirror):
  root, server = mirror
  entry = catalog.find("mobilenet_v3_small_075_224")
  top = entry.tarball_folder
  _publish(root, entry, [
      (f"{top}/", None), (f"{top}/ema/", None),
      (f"{top}/ema/model-497500.index", b"index"),
      (f"{top}/ema/model-497500.data-00000-of-00001", b"data"),
      (f"{top}/ema/checkpoint", b"model_checkpoint_path: 'model-497500'"),
      (f"{top}/pristine/model.ckpt-497500.index", b"index")])
  lines = []
  prefix = fetch.fetch_checkpoint(entry, str(tmp_path / "cache"),
                                  base_url=server.url, max_bytes=_MIB,
                                  log=lines.append).prefix
  assert prefix == str(tmp_path / "cache" / entry.checkpoint)
  assert sorted(os.listdir(tmp_path / "cache" / top)) == ["ema"]
  assert sorted(os.listdir(tmp_path / "cache" / top / "ema")) == [
      "checkpoint", "model-497500.data-00000-of-00001", "model-497500.index"]
  assert f"them): {top}/pristine/model.ckpt-497500.index" in "".join(lines)


def _bomb(path, official_files, size=2 << 30):
  """A .tgz of `official_files` plus zeros.bin, `size` zero bytes, written
  as a multi-member gzip whose zeros are one small gzip member repeated:
  about 2 MB, built without ever holding or writing `size` bytes."""
  head = io.BytesIO()
  for name, data in official_files:
    info = _member(name, data or b"",
                   **({} if data is not None else {"type": tarfile.DIRTYPE}))
    head.write(info.tobuf(tarfile.GNU_FORMAT))
    if data:
      head.write(data + bytes(-len(data) % tarfile.BLOCKSIZE))
  head.write(_member("./zeros.bin", size=size).tobuf(tarfile.GNU_FORMAT))
  zeros = gzip.compress(bytes(_MIB), compresslevel=9)
  with open(path, "wb") as f:
    f.write(gzip.compress(head.getvalue()))
    for _ in range(size // _MIB):
      f.write(zeros)
    f.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE)))


@pytest.mark.parametrize("transport", ["file", "http"])
def test_decompression_bomb_is_refused_quickly(tmp_path, mirror,
                                               official_files, transport):
  root, server = mirror
  entry = catalog.find(NET)
  tarball = root / entry.tarball
  tarball.parent.mkdir(parents=True)
  _bomb(tarball, official_files)
  assert tarball.stat().st_size < 5 * _MIB  # 2 MB of it the zeros
  with tarfile.open(tarball) as tar:  # Valid, as tarfile reads it.
    bomb = next(member for member in tar if member.name == "./zeros.bin")
    assert bomb.isfile() and bomb.size == 2 << 30
  base_url = server.url if transport == "http" else root.as_uri()
  bound, cache = _bound(), tmp_path / "cache"
  start = time.monotonic()
  with pytest.raises(fetch.FetchError) as error:
    fetch.fetch_checkpoint(entry, str(cache), base_url=base_url)
  # Writing 2 GiB takes 20 s or more; the header alone refuses it.
  assert time.monotonic() - start < 5
  assert str(error.value) == (
      f"Refusing {base_url}/{entry.tarball}: member './zeros.bin' "
      f"({2 << 30} bytes declared) passes the bound of {bound} bytes "
      "(max_bytes raises it); nothing was cached")
  assert os.listdir(cache) == []


def test_total_and_actual_bytes_are_bounded(tmp_path, mirror,
                                            official_files):
  """Members each under the bound whose sum passes it, and header bytes no
  member size declares, are refused too."""
  root, server = mirror
  entry = catalog.find(NET)
  files = official_files + [("./big.tflite", bytes(_MIB))]
  total = sum(len(data or b"") for _, data in files)
  _publish(root, entry, files)
  with pytest.raises(fetch.FetchError,
                     match=f"member './big.tflite' \\({_MIB} bytes declared"
                     f"\\) passes the bound of {total - 1} bytes"):
    fetch.fetch_checkpoint(entry, str(tmp_path / "cache"),
                           base_url=server.url, max_bytes=total - 1)
  fetch.fetch_checkpoint(entry, str(tmp_path / "roomy"), base_url=server.url,
                         max_bytes=total + 64 * 1024)
  padded = _member("./padded.txt", pax_headers={"comment": "x" * _MIB})
  _publish(root, entry, [("./notes.txt", b"x"), padded])
  with pytest.raises(fetch.FetchError,
                     match="the decompressed tarball, after member "
                     f"'./notes.txt', passes the bound of {_MIB} bytes"):
    fetch.fetch_checkpoint(entry, str(tmp_path / "cache"),
                           base_url=server.url, max_bytes=_MIB)
  assert os.listdir(tmp_path / "cache") == []


def test_downloads_are_bounded(tmp_path):
  entry = catalog.find(NET)
  bound = _bound()
  root = tmp_path / "mirror"
  root.mkdir()
  server = _Server(root, streams={
      "/declared/" + entry.tarball: (1 << 40, 4 * _MIB),
      "/endless/" + entry.tarball: (None, 256 * _MIB)})
  try:
    with pytest.raises(fetch.FetchError) as declared:
      fetch.fetch_checkpoint(entry, str(tmp_path / "cache"),
                             base_url=server.url + "/declared")
    assert f"its Content-Length of {1 << 40} bytes passes the bound of " \
        f"{bound} bytes" in str(declared.value)
    with pytest.raises(fetch.FetchError) as endless:
      fetch.fetch_checkpoint(entry, str(tmp_path / "cache"),
                             base_url=server.url + "/endless",
                             max_bytes=8 * _MIB)
    assert ("the download passes the bound of 8388608 bytes (max_bytes "
            "raises it); nothing was cached") in str(endless.value)
  finally:
    server.close()
  assert os.listdir(tmp_path / "cache") == []


def test_catalogue_pin_mismatch_caches_nothing(tmp_path, mirror,
                                               official_files):
  root, server = mirror
  entry = dataclasses.replace(catalog.find(NET), tarball_sha256="ab" * 32)
  digest = _publish(root, entry, official_files)
  cache = tmp_path / "cache"
  with pytest.raises(fetch.FetchError) as error:
    fetch.fetch_checkpoint(entry, str(cache), base_url=server.url,
                           max_bytes=64 * _MIB)
  message = str(error.value)
  assert "SHA-256 mismatch" in message and digest in message
  assert "ab" * 32 in message and "nothing was cached" in message
  assert os.listdir(cache) == []


@pytest.mark.parametrize("hostile, reason", [
    ([("../../escape.txt", b"x")], "path '../../escape.txt' leaves the "),
    ([("{tmp_path}/escape.txt", b"x")], "absolute path '{tmp_path}/escape"),
    ([_member("out", type=tarfile.SYMTYPE, linkname="../.."),
      ("out/escape.txt", b"x")], "symlink 'out' -> '../..' points outside"),
    ([_member("passwd", type=tarfile.LNKTYPE, linkname="/etc/passwd")],
     "hard link 'passwd' -> '/etc/passwd' points outside"),
    ([_member("fifo", type=tarfile.FIFOTYPE)], "special file 'fifo'"),
])
def test_hostile_members_are_refused(tmp_path, official_files, hostile,
                                     reason):
  """The five attacks of issue 24, each added to a real tarball."""
  root = tmp_path / "mirror"
  entry = catalog.find(NET)
  hostile = [member if isinstance(member, tarfile.TarInfo) else
             (member[0].format(tmp_path=tmp_path), member[1])
             for member in hostile]
  _publish(root, entry, official_files + hostile)
  cache = tmp_path / "a" / "b" / "cache"
  with pytest.raises(fetch.FetchError) as error:
    fetch.fetch_checkpoint(entry, str(cache), base_url=root.as_uri())
  assert str(error.value).startswith(
      f"Refusing to extract {root.as_uri()}/{entry.tarball}: "
      + reason.format(tmp_path=tmp_path))
  assert os.listdir(cache) == []
  assert sorted(os.listdir(tmp_path)) == ["a", "mirror"]
  assert os.listdir(tmp_path / "a") == ["b"]


def test_links_leaving_the_directory_are_refused(tmp_path, mirror):
  root, server = mirror
  entry = catalog.find(NET)
  _publish(root, entry, [
      ("inside.txt", b"x"),
      _member("ok_link", type=tarfile.SYMTYPE, linkname="inside.txt"),
      _member("passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
      _member("up", type=tarfile.SYMTYPE, linkname="../../outside"),
      _member("hard", type=tarfile.LNKTYPE, linkname="../outside")])
  with pytest.raises(fetch.FetchError) as error:
    fetch.fetch_checkpoint(entry, str(tmp_path / "cache"), base_url=server.url)
  message = str(error.value)
  for name in ("'passwd'", "'up'", "'hard'"):
    assert name in message
  assert "ok_link" not in message
  assert os.listdir(tmp_path / "cache") == []


def test_missing_tarball_and_missing_checkpoint_are_named(tmp_path, mirror):
  root, server = mirror
  entry = catalog.find(NET)
  with pytest.raises(fetch.FetchError, match="HTTP 404"):
    fetch.fetch_checkpoint(entry, str(tmp_path / "cache"), base_url=server.url)
  _publish(root, entry, [("README.txt", b"no checkpoint here")])
  with pytest.raises(fetch.FetchError,
                     match="holds no checkpoint mobilenet_v1_0.25_128.ckpt; "
                     "it holds: README.txt"):
    fetch.fetch_checkpoint(entry, str(tmp_path / "cache"), base_url=server.url)
  assert os.listdir(tmp_path / "cache") == []


def test_fetch_binary(tmp_path, mirror, official_files):
  root, server = mirror
  entry = catalog.find(NET)
  digest = _publish(root, entry, official_files)
  command = [sys.executable, "-m", "slimhub.exporters.fetch_checkpoint",
             f"--net={NET}", f"--cache_dir={tmp_path / 'cache'}",
             f"--base_url={server.url}", f"--max_bytes={64 * _MIB}"]
  wrong = subprocess.run(command + ["--sha256=" + "0" * 64],
                         capture_output=True, text=True, check=False)
  assert wrong.returncode == 1
  assert "slimhub-fetch-checkpoint: error: SHA-256 mismatch" in wrong.stderr
  result = subprocess.run(
      command + [f"--sha256={digest}", "--print_sha256", "--extract_all"],
      capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  *_, prefix, pin = result.stdout.splitlines()
  assert prefix == str(tmp_path / "cache" / entry.checkpoint)
  assert ast.literal_eval("{" + pin + "}") == {entry.tarball: digest}
  assert set(EXTRAS) < set(os.listdir(tmp_path / "cache" / STEM))
  again = subprocess.run(command + ["--print_sha256"], capture_output=True,
                         text=True, check=False)
  assert again.returncode == 1
  assert again.stderr.strip().endswith(
      "was already present, so no tarball was downloaded to hash; use an "
      "empty --cache_dir")


def test_every_catalogue_checkpoint_lies_in_its_tarball_folder():
  for entry in catalog.ENTRIES:
    if entry.tarball:
      assert entry.checkpoint.split("/")[0] == entry.tarball_folder, entry
      assert fetch.tarball_url(entry).startswith("https://")
      assert fetch.tarball_url(entry, "http://mirror/x/") == (
          f"http://mirror/x/{entry.tarball}")
      assert entry.tarball_sha256 == catalog.TARBALL_SHA256.get(
          entry.tarball)


def test_regenerate_downloads_missing_checkpoints(tmp_path, mirror,
                                                  official_files):
  root, server = mirror
  _publish(root, catalog.find(NET), official_files)
  output = tmp_path / "out"
  (tmp_path / "checkpoints").mkdir()
  command = [sys.executable, "-m", "slimhub.exporters.regenerate",
             f"--checkpoint_dir={tmp_path / 'checkpoints'}",
             f"--output_dir={output}", f"--handles={NET}/feature_vector",
             "--versions=1"]
  without = subprocess.run(command, capture_output=True, text=True,
                           check=False)
  # A handle named without a wildcard whose checkpoint is missing fails.
  assert without.returncode == 1, without.stderr
  assert "1 skipped" in without.stdout and "--download fetches it" in (
      without.stdout)
  assert "--allow_missing" in without.stderr
  download = ["--download", f"--base_url={server.url}"]
  bounded = subprocess.run(command + download + ["--max_bytes=1000"],
                           capture_output=True, text=True, check=False)
  assert bounded.returncode == 1, bounded.stdout + bounded.stderr
  assert "passes the bound of 1000 bytes" in bounded.stdout
  assert os.listdir(tmp_path / "checkpoints") == []
  result = subprocess.run(command + download, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  assert "Summary: 1 built" in result.stdout
  assert "Skipped 5 members the checkpoint does not need" in result.stdout
  assert server.requests == [f"/{catalog.find(NET).tarball}"] * 2
  assert (output / "google/imagenet/mobilenet_v1_025_128/feature_vector/1/"
          "saved_model.pb").exists()
