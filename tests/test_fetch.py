"""Fetching official checkpoint tarballs from a local mirror on 127.0.0.1:
success, pinned and wrong SHA-256, unsafe members, a missing tarball."""

import dataclasses
import functools
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading

import pytest

from slimhub import catalog
from slimhub.regenerate import fetch
from slimhub.exporters import make_checkpoint

NET = "mobilenet_v1_025_128"


class _Server:
  """A threaded HTTP server for `root`, counting the requests per path."""

  def __init__(self, root):
    requests = self.requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        requests.append(self.path)
        super().do_GET()

      def log_message(self, *args):
        del args

    self.httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def mirror(tmp_path):
  root = tmp_path / "mirror"
  root.mkdir()
  server = _Server(root)
  yield root, server
  server.httpd.shutdown()
  server.httpd.server_close()


def _add(tar, name, data=b"", **fields):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  for key, value in fields.items():
    setattr(info, key, value)
  tar.addfile(info, io.BytesIO(data) if data else None)


def _publish(mirror_root, entry, members):
  """Writes a .tgz with `members` [(name, bytes)] where `entry` expects it;
  returns its SHA-256."""
  path = mirror_root / entry.tarball
  path.parent.mkdir(parents=True, exist_ok=True)
  with tarfile.open(path, "w:gz") as tar:
    for name, data in members:
      if data is None:
        _add(tar, name, type=tarfile.DIRTYPE, mode=0o755)
      else:
        _add(tar, name, data)
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
  return members + [("./mobilenet_v1_0.25_128_info.txt", b"info\n")]


def test_fetch_extracts_the_layout_regenerate_reads(tmp_path, mirror,
                                                    official_files):
  root, server = mirror
  entry = catalog.find(NET)
  digest = _publish(root, entry, official_files)
  cache = tmp_path / "cache"
  prefix = fetch.fetch_checkpoint(entry, str(cache), base_url=server.url,
                                  sha256=digest)
  assert prefix == str(cache / "mobilenet_v1_0.25_128" /
                       "mobilenet_v1_0.25_128.ckpt")
  assert os.path.exists(prefix + ".index")
  assert sorted(os.listdir(cache)) == ["mobilenet_v1_0.25_128"]
  assert (cache / "mobilenet_v1_0.25_128" /
          "mobilenet_v1_0.25_128_info.txt").read_bytes() == b"info\n"
  assert server.requests == [f"/{entry.tarball}"]
  # Present now: no second download.
  again = fetch.fetch_checkpoint(entry, str(cache), base_url=server.url)
  assert again == prefix
  assert len(server.requests) == 1


def test_tarball_with_a_top_folder_named_like_it_is_not_nested(tmp_path,
                                                               mirror):
  root, server = mirror
  entry = catalog.find("mobilenet_v3_small_075_224")
  top = entry.tarball_folder
  _publish(root, entry, [
      (f"{top}/", None), (f"{top}/ema/", None),
      (f"{top}/ema/model-497500.index", b"index"),
      (f"{top}/ema/model-497500.data-00000-of-00001", b"data"),
      (f"{top}/pristine/model.ckpt-497500.index", b"index")])
  prefix = fetch.fetch_checkpoint(entry, str(tmp_path / "cache"),
                                  base_url=server.url)
  assert prefix == str(tmp_path / "cache" / entry.checkpoint)
  assert os.path.exists(prefix + ".index")
  assert sorted(os.listdir(tmp_path / "cache" / top)) == ["ema", "pristine"]


def test_catalogue_pin_mismatch_caches_nothing(tmp_path, mirror,
                                               official_files):
  root, server = mirror
  entry = dataclasses.replace(catalog.find(NET), tarball_sha256="ab" * 32)
  digest = _publish(root, entry, official_files)
  cache = tmp_path / "cache"
  with pytest.raises(fetch.FetchError) as error:
    fetch.fetch_checkpoint(entry, str(cache), base_url=server.url)
  message = str(error.value)
  assert "SHA-256 mismatch" in message and digest in message
  assert "ab" * 32 in message and "nothing was cached" in message
  assert os.listdir(cache) == []


@pytest.mark.parametrize("members, reason", [
    ([("../evil.txt", b"x")], "leaves the directory"),
    ([("{tmp_path}/evil.txt", b"x")], "absolute path"),
    ([("mobilenet_v1_0.25_128.ckpt.index", b"x"),
      ("./sub/../../evil.txt", b"x")], "leaves the directory"),
])
def test_unsafe_members_are_refused(tmp_path, mirror, members, reason):
  root, server = mirror
  entry = catalog.find(NET)
  _publish(root, entry, [(name.format(tmp_path=tmp_path), data)
                         for name, data in members])
  cache = tmp_path / "cache"
  with pytest.raises(fetch.FetchError, match=reason) as error:
    fetch.fetch_checkpoint(entry, str(cache), base_url=server.url)
  assert "Refusing to extract" in str(error.value)
  assert os.listdir(cache) == []
  assert not (tmp_path / "evil.txt").exists()


def test_links_leaving_the_directory_are_refused(tmp_path, mirror):
  root, server = mirror
  entry = catalog.find(NET)
  path = root / entry.tarball
  path.parent.mkdir(parents=True)
  with tarfile.open(path, "w:gz") as tar:
    _add(tar, "inside.txt", b"x")
    _add(tar, "ok_link", type=tarfile.SYMTYPE, linkname="inside.txt")
    _add(tar, "passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    _add(tar, "up", type=tarfile.SYMTYPE, linkname="../../outside")
    _add(tar, "hard", type=tarfile.LNKTYPE, linkname="../outside")
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
  digest = _publish(root, catalog.find(NET), official_files)
  command = [sys.executable, "-m", "slimhub.exporters.fetch_checkpoint",
             f"--net={NET}", f"--cache_dir={tmp_path / 'cache'}",
             f"--base_url={server.url}"]
  wrong = subprocess.run(command + ["--sha256=" + "0" * 64],
                         capture_output=True, text=True, check=False)
  assert wrong.returncode == 1
  assert "slimhub-fetch-checkpoint: error: SHA-256 mismatch" in wrong.stderr
  result = subprocess.run(command + [f"--sha256={digest}"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines()[-1] == str(
      tmp_path / "cache" / catalog.find(NET).checkpoint)


def test_every_catalogue_checkpoint_lies_in_its_tarball_folder():
  for entry in catalog.ENTRIES:
    if entry.tarball:
      assert entry.checkpoint.split("/")[0] == entry.tarball_folder, entry
      assert fetch.tarball_url(entry).startswith("https://")
      assert fetch.tarball_url(entry, "http://mirror/x/") == (
          f"http://mirror/x/{entry.tarball}")


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
  assert without.returncode == 0, without.stderr
  assert "1 skipped" in without.stdout and "--download fetches it" in (
      without.stdout)
  result = subprocess.run(command + ["--download", f"--base_url={server.url}"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  assert "Summary: 1 built" in result.stdout
  assert server.requests == [f"/{catalog.find(NET).tarball}"]
  assert (output / "google/imagenet/mobilenet_v1_025_128/feature_vector/1/"
          "saved_model.pb").exists()
