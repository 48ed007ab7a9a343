"""slimhub-mirror and slimhub-regenerate --mirror_*: a regeneration of
mobilenet_v1_025_128/feature_vector v3 (TF1 Hub) and v5 (TF2) served by a
real http.server to hub.load, hub.KerasLayer and hub.Module (hub 0.15), laid
out as a TFHUB_CACHE_DIR that loads tfhub.dev handles with the network cut
off, and its catalogue page driven in headless Chromium."""

import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import numpy as np
import pytest

import hub015_env
import reference_data
from slimhub import catalog
from slimhub.reference import deterministic
from slimhub.reference import untrained as make_checkpoint
from slimhub.regenerate import manifest as manifest_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
HANDLE = "imagenet/mobilenet_v1_025_128/feature_vector"
KEYS = {version: f"google/{HANDLE}/{version}" for version in (3, 5)}
TFHUB = "https://tfhub.dev"
IMAGES = deterministic.images(128, 2)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

# One worker builds the shared regeneration (`-n 2`, --dist=loadgroup).
pytestmark = pytest.mark.xdist_group("mirror")


def _run(command, env=ENV):
  return subprocess.run(command, capture_output=True, text=True, env=env,
                        check=False)


def _mirror(*flags):
  return [sys.executable, "-m", "slimhub.exporters.mirror", *flags]


def _regenerate(paths, *flags):
  return [sys.executable, "-m", "slimhub.exporters.regenerate",
          f"--checkpoint_dir={paths['checkpoints']}",
          f"--output_dir={paths['out']}", f"--handles={HANDLE}",
          "--versions=3,5", "--jobs=2", "--tflite",
          f"--mirror_http_root={paths['www']}",
          f"--mirror_hub_cache_dir={paths['cache']}", *flags]


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
  """One regeneration (with --tflite) mirrored by slimhub-regenerate's
  --mirror_* flags: {"checkpoints", "out", "www", "cache"} paths."""
  root = tmp_path_factory.mktemp("mirrored")
  paths = {name: root / name
           for name in ("checkpoints", "out", "www", "cache")}
  make_checkpoint.make_checkpoint("mobilenet_v1_025_128", 1,
                                  checkpoint_dir=str(paths["checkpoints"]))
  built = _run(_regenerate(paths))
  assert built.returncode == 0, built.stdout + built.stderr
  assert "Mirror: 14 written, 0 already up to date" in built.stdout
  return paths


@pytest.fixture(scope="module")
def server(mirrored):
  """http.server on 127.0.0.1 serving the mirror tree: its base URL."""
  process = subprocess.Popen(
      [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1",
       "--directory", str(mirrored["www"]), "0"],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  line = process.stdout.readline()
  port = re.search(r"port (\d+)", line).group(1)
  yield f"http://127.0.0.1:{port}"
  process.kill()
  process.wait()


def _files(directory):
  """{relative path: sha256} of every file below `directory`."""
  return {path: manifest_lib.sha256_file(os.path.join(directory, path))
          for path in manifest_lib.relative_files(directory, directory)}


def _stat_snapshot(*directories):
  """(inode, mtime_ns, size) of every file: what a rewrite would change."""
  snapshot = {}
  for directory in directories:
    for parent, _, names in os.walk(directory):
      for name in names:
        path = os.path.join(parent, name)
        info = os.stat(path)
        snapshot[path] = (info.st_ino, info.st_mtime_ns, info.st_size)
  return snapshot


def _sha1(handle):
  return hashlib.sha1(handle.encode("utf8")).hexdigest()


def _features(handle, version):
  """The feature vectors of IMAGES from the module at `handle`, by
  hub.load (TF1 Hub modules through their default signature)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  loaded, images = hub.load(handle), tf.constant(IMAGES)
  if version == 3:
    return loaded.signatures["default"](images=images)["default"].numpy()
  return loaded(images, training=False).numpy()


@pytest.fixture(scope="module")
def local_features(mirrored):
  """{version: feature vectors of IMAGES from the regenerated module}."""
  return {version: _features(str(mirrored["out"] / key), version)
          for version, key in KEYS.items()}


def test_hub_loads_and_keras_layer_by_url(mirrored, server, local_features,
                                          tmp_path, monkeypatch):
  """hub.resolve downloads <url>?tf-hub-format=compressed into
  TFHUB_CACHE_DIR/<sha1(url)>, byte for byte the regenerated module, and
  hub.load / hub.KerasLayer on the URL compute what the local module does."""
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  cache = tmp_path / "downloads"
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
  for version, key in KEYS.items():
    url = f"{server}/{key}"
    assert hub.resolve(url) == str(cache / _sha1(url))
    assert _files(cache / _sha1(url)) == _files(mirrored["out"] / key)
    expected = local_features[version]
    assert expected.shape == (2, 256)
    np.testing.assert_array_equal(_features(url, version), expected)
    layer = (hub.KerasLayer(url, signature="image_feature_vector",
                            output_key="default") if version == 3
             else hub.KerasLayer(url))
    np.testing.assert_array_equal(layer(IMAGES).numpy(), expected)


HUB015_SCRIPT = textwrap.dedent("""
    import json, os, socket, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub
    tf.compat.v1.disable_eager_execution()
    url, local, images = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
    seeded, handle = sys.argv[4], sys.argv[5]

    def features(handle):
      with tf.Graph().as_default():
        outputs = hub.Module(handle)(tf.constant(images))
        with tf.compat.v1.Session() as session:
          session.run(tf.compat.v1.global_variables_initializer())
          return session.run(outputs)

    seen = {"hub": hub.__version__, "resolved": hub.resolve(url),
            "url": features(url).tolist(), "local": features(local).tolist()}

    def refuse(*args):
      raise OSError("network access blocked")

    socket.socket.connect = socket.getaddrinfo = refuse
    os.environ["TFHUB_CACHE_DIR"] = seeded  # hub reads it on every load
    seen["offline"] = features(handle).tolist()
    print(json.dumps(seen))
    """)


@pytest.mark.hub015
def test_hub_module_of_hub015_loads_the_tf1_module_by_url(mirrored, server,
                                                           tmp_path):
  """hub.Module of hub 0.15 on TF 2.15 loads the v3 URL from the server,
  and its tfhub.dev handle offline from the seeded cache."""
  images = tmp_path / "images.npy"
  np.save(images, IMAGES)
  cache = tmp_path / "hub015_cache"
  url = f"{server}/{KEYS[3]}"
  result = _run([hub015_env.python(), "-c", HUB015_SCRIPT, url,
                 str(mirrored["out"] / KEYS[3]), str(images),
                 str(mirrored["cache"]), f"{TFHUB}/{KEYS[3]}"],
                env=dict(ENV, TFHUB_CACHE_DIR=str(cache), PYTHONPATH=""))
  assert result.returncode == 0, result.stderr[-3000:]
  seen = json.loads(result.stdout.strip().splitlines()[-1])
  assert seen["hub"] == "0.15.0"
  assert seen["resolved"] == str(cache / _sha1(url))
  assert np.array(seen["url"]).shape == (2, 256)
  for loaded in ("url", "offline"):
    assert reference_data.relative_error(seen[loaded], seen["local"]) < 1e-6


OFFLINE_SCRIPT = textwrap.dedent("""
    import json, socket, sys

    def refuse(*args):
      raise OSError(f"network access blocked {args[1:]}")

    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub
    images = tf.constant(np.load(sys.argv[1]))
    handle = "https://tfhub.dev/google/imagenet/mobilenet_v1_025_128/"
    seen = {
        "v5": hub.load(handle + "feature_vector/5")(images).numpy().tolist(),
        "v5_layer": hub.KerasLayer(handle + "feature_vector/5")(
            images).numpy().tolist(),
        "v3": hub.load(handle + "feature_vector/3").signatures["default"](
            images=images)["default"].numpy().tolist()}
    # slimhub's own consumers resolve the handles through the same cache.
    import slimhub.hub_module as slimhub_hub
    from slimhub.keras import KerasLayer
    with tf.Graph().as_default():
      module = slimhub_hub.Module(handle + "feature_vector/3")
      features = module(tf.constant(np.load(sys.argv[1])))
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        seen["v3_hub_module"] = session.run(features).tolist()
    seen["v5_keras3"] = KerasLayer(handle + "feature_vector/5")(
        images).numpy().tolist()
    try:
      hub.load(handle + "feature_vector/4")  # not in the cache
    except Exception as error:  # pylint: disable=broad-except
      seen["uncached"] = str(error)
    print(json.dumps(seen))
    """)


def test_seeded_cache_loads_tfhub_handles_offline(mirrored, local_features,
                                                  tmp_path):
  """With TFHUB_CACHE_DIR seeded and every name lookup and socket
  connection failing, hub.load and hub.KerasLayer, slimhub.hub_module and
  slimhub.keras.KerasLayer of the tfhub.dev handles load the regenerated
  modules (hard links, with hub's descriptor file); a
  handle the cache lacks fails on the blocked network."""
  cache = mirrored["cache"]
  for key in KEYS.values():
    directory = cache / _sha1(f"{TFHUB}/{key}")
    module = mirrored["out"] / key
    assert _files(directory) == _files(module)
    for path in _files(module):  # hard links into the regeneration
      assert os.path.samefile(directory / path, module / path)
    descriptor = (cache / (directory.name + ".descriptor.txt")).read_text()
    assert re.fullmatch(
        rf"Module: {TFHUB}/{key}\nDownload Time: \d{{4}}-\d\d-\d\d "
        r"[\d:.]+\nDownloader Hostname: \S+ \(PID:\d+\)", descriptor)
  images = tmp_path / "images.npy"
  np.save(images, IMAGES)
  result = _run([sys.executable, "-c", OFFLINE_SCRIPT, str(images)],
                env=dict(ENV, TFHUB_CACHE_DIR=str(cache)))
  assert result.returncode == 0, result.stderr[-3000:]
  seen = json.loads(result.stdout.strip().splitlines()[-1])
  assert "network access blocked" in seen["uncached"]
  np.testing.assert_array_equal(seen["v5"], local_features[5])
  np.testing.assert_array_equal(seen["v5_layer"], local_features[5])
  np.testing.assert_array_equal(seen["v3"], local_features[3])
  np.testing.assert_allclose(seen["v3_hub_module"], local_features[3],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(seen["v5_keras3"], local_features[5],
                             rtol=1e-5, atol=1e-6)


def test_http_tree_layout(mirrored):
  """<key> is the module's deterministic tarball (root = the module); card,
  TFLite model and manifest record sit beside it; catalogue.json has a row
  per module."""
  www, out = mirrored["www"], mirrored["out"]
  with open(out / "manifest.json") as f:
    records = json.load(f)["modules"]
  with open(www / "catalogue.json") as f:
    rows = json.load(f)["modules"]
  assert sorted(rows) == sorted(records) == sorted(KEYS.values())
  for version, key in KEYS.items():
    with tarfile.open(www / key) as tar:
      members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert {name: hashlib.sha256(data).hexdigest()
            for name, data in members.items()} == _files(out / key)
    for suffix in (".md", ".tflite"):
      assert os.path.samefile(www / (key + suffix), out / (key + suffix))
    assert json.loads((www / (key + ".json")).read_text()) == records[key]
    row = rows[key]
    assert row["format"] == ("tf1_hub" if version == 3 else "tf2_saved_model")
    variable = catalog.version_spec(catalog.find("mobilenet_v1_025_128"),
                                    version).variable_size
    assert (row["input_size"], row["output_dim"], row["fine_tunable"]) == (
        "any (default 128x128)" if variable else "128x128", 256, True)
    assert (row["size"], row["sha256"]) == (
        os.path.getsize(www / key), manifest_lib.sha256_file(www / key))


def _chromium(profile):
  """A headless Chromium driven by selenium, with a fresh profile; skipped
  without one, except on CI, where its absence is a failure."""
  try:
    from selenium import webdriver  # pylint: disable=g-import-not-at-top
    from selenium.webdriver.chrome import service  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    missing = f"selenium is not installed ({error})"
  else:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
      options = webdriver.ChromeOptions()
      options.binary_location = browser
      for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-background-networking",
                   "--disable-component-update", "--disable-sync",
                   "--no-first-run", "--window-size=1400,1000",
                   f"--user-data-dir={profile}"):
        options.add_argument(flag)
      options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
      return webdriver.Chrome(options=options,
                              service=service.Service(executable_path=driver))
    missing = "chromium and chromium-driver are not installed"
  if os.environ.get("CI"):
    pytest.fail(f"{missing}; CI must install them (apt-get install chromium "
                "chromium-driver)")
  pytest.skip(missing)


def _artifacts_dir():
  directory = pathlib.Path(os.environ.get("SLIMHUB_ARTIFACTS_DIR",
                                          REPO / "test-artifacts"))
  directory.mkdir(parents=True, exist_ok=True)
  return directory


def test_catalogue_page_in_chromium(mirrored, server, tmp_path):
  """The index served over HTTP lists every module, filters and sorts its
  rows; a module page shows its card's headings and usage code and the
  hub.load line of this server; the same index works from file://; the
  console logs no error."""
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  browser = _chromium(tmp_path / "profile")
  try:
    browser.get(f"{server}/index.html")
    rows = lambda: browser.find_elements(By.CSS_SELECTOR, "#modules tbody tr")
    visible = lambda: [row.find_element(By.CSS_SELECTOR, "a").text
                       for row in rows() if row.is_displayed()]
    assert visible() == [KEYS[3], KEYS[5]]
    assert browser.find_element(By.ID, "count").text == "2 of 2 modules"
    filter_box = browser.find_element(By.ID, "filter")
    filter_box.send_keys("tf2_saved")
    assert visible() == [KEYS[5]]
    assert browser.find_element(By.ID, "count").text == "1 of 2 modules"
    filter_box.clear()
    filter_box.send_keys(" ")  # input event with no terms: every row again
    assert visible() == [KEYS[3], KEYS[5]]
    version = browser.find_element(By.XPATH, "//th/button[.='Version']")
    version.click()
    version.click()  # descending
    assert visible() == [KEYS[5], KEYS[3]]
    browser.save_screenshot(str(_artifacts_dir() / "mirror_index.png"))

    browser.find_element(By.LINK_TEXT, KEYS[3]).click()
    card = (mirrored["out"] / (KEYS[3] + ".md")).read_text()
    headings = re.findall(r"^#+ (.+)$", card, re.MULTILINE)
    assert len(headings) >= 4
    shown = [h.text for h in browser.find_elements(
        By.CSS_SELECTOR, ", ".join(f"article h{n}" for n in range(1, 7)))]
    assert shown == headings
    code = [c.text for c in browser.find_elements(
        By.CSS_SELECTOR, "article pre code.language-python")]
    assert any('hub.Module("https://tfhub.dev/' + KEYS[3] in c for c in code)
    assert browser.find_element(By.ID, "mirror-line").text == (
        f'hub.load("{server}/{KEYS[3]}")')
    links = {a.text: a.get_attribute("href") for a in
             browser.find_elements(By.CSS_SELECTOR, ".downloads a")}
    assert links == {what: f"{server}/{KEYS[3]}{suffix}" for what, suffix in (
        ("module tarball", ""), ("TFLite model", ".tflite"),
        ("model card", ".md"), ("manifest record", ".json"))}
    browser.save_screenshot(str(_artifacts_dir() / "mirror_module.png"))

    browser.get((mirrored["www"] / "index.html").as_uri())
    assert visible() == [KEYS[3], KEYS[5]]
    browser.find_element(By.ID, "filter").send_keys("/3")
    assert visible() == [KEYS[3]]
    errors = [entry for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE"]
    assert not errors
  finally:
    browser.quit()


def test_a_dropped_module_and_a_tampered_file(mirrored, tmp_path):
  """--handle_base caches under a second handle and --mirror_url goes into
  the pages; a module dropped from the manifest leaves the HTTP tree and
  the other one is not touched; a file that differs from the manifest
  stops slimhub-mirror before it writes anything."""
  out = tmp_path / "out"
  shutil.copytree(mirrored["out"], out)
  www, cache = tmp_path / "www", tmp_path / "cache"
  base = "https://models.example.org/hub"
  command = _mirror(f"--regenerated={out}", f"--http_root={www}",
                    f"--hub_cache_dir={cache}", f"--handle_base={base}",
                    f"--mirror_url={base}")
  first = _run(command)
  assert first.returncode == 0, first.stderr
  assert first.stdout.endswith("Mirror: 16 written, 0 already up to date\n")
  for key in KEYS.values():
    assert _files(cache / _sha1(f"{base}/{key}")) == _files(out / key)
    page = (www / (key + ".html")).read_text()
    assert f'data-fixed>hub.load(&quot;{base}/{key}&quot;)</code>' in page
  served_v5 = {path: stat for path, stat in _stat_snapshot(www).items()
               if f"/{KEYS[5]}" in path}
  manifest_path = out / "manifest.json"
  manifest = json.loads(manifest_path.read_text())
  dropped = manifest["modules"].pop(KEYS[3])
  manifest_path.write_text(json.dumps(manifest))
  shutil.rmtree(out / KEYS[3])
  for path in dropped["files"]:
    if os.path.exists(out / path):
      os.remove(out / path)
  removed = _run(command)
  assert removed.returncode == 0, removed.stderr
  assert sorted(re.findall(r"^removed +(\S+)$", removed.stdout, re.M)) == [
      KEYS[3] + suffix for suffix in ("", ".html", ".json", ".md", ".tflite")]
  assert sorted(json.loads((www / "catalogue.json").read_text())["modules"]) \
      == [KEYS[5]]
  assert not (www / KEYS[3]).exists()
  assert all(_stat_snapshot(www)[path] == stat
             for path, stat in served_v5.items())
  before = _stat_snapshot(www, cache)

  tampered = f"{KEYS[5]}/variables/variables.index"
  data = bytearray((out / tampered).read_bytes())
  data[-1] ^= 1
  replacement = tmp_path / "replacement"
  replacement.write_bytes(bytes(data))
  os.replace(replacement, out / tampered)  # a new file, not the linked one
  refused = _run(command)
  assert refused.returncode == 1
  assert f"  {tampered}: differs from the manifest" in refused.stderr
  assert "nothing was laid out" in refused.stderr
  assert refused.stdout == ""
  assert _stat_snapshot(www, cache) == before


def _served_files(www):
  """Files at served paths (not the hidden temporaries of a rename)."""
  return {path for path in manifest_lib.relative_files(www, www)
          if not os.path.basename(path).startswith(".")}


def test_killed_run_leaves_whole_files_and_reruns_rewrite_nothing(
    mirrored, tmp_path):
  """SIGKILL while files are being written leaves each served path either
  absent or complete; the next run writes only what is missing; a run with
  nothing changed rewrites nothing, in the HTTP tree and the hub cache."""
  reference = _files(mirrored["www"])
  www = tmp_path / "www"
  command = _mirror(f"--regenerated={mirrored['out']}", f"--http_root={www}")
  for _ in range(3):
    shutil.rmtree(www, ignore_errors=True)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=ENV)
    while process.poll() is None and not (www.is_dir() and _served_files(www)):
      time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    if process.wait() == -signal.SIGKILL:
      break
  assert process.returncode == -signal.SIGKILL, "the run ended before a kill"
  served = _served_files(www)
  assert served and served < set(reference)
  for path in served:
    assert manifest_lib.sha256_file(www / path) == reference[path], path
  kept = {path: stat for path, stat in _stat_snapshot(www).items()
          if os.path.relpath(path, www) in served}

  completed = _run(command)
  assert completed.returncode == 0, completed.stderr
  assert _files(www) == reference  # and no temporary left behind
  written = re.findall(r"^wrote +(\S+)$", completed.stdout, re.MULTILINE)
  assert not set(written) & served, "complete files were written again"
  after = _stat_snapshot(www)
  assert all(after[path] == kept[path] for path in kept
             if os.path.relpath(path, www) not in written)

  before = _stat_snapshot(mirrored["www"], mirrored["cache"])
  again = _run(_mirror(f"--regenerated={mirrored['out']}",
                       f"--http_root={mirrored['www']}",
                       f"--hub_cache_dir={mirrored['cache']}"))
  assert again.returncode == 0, again.stderr
  assert again.stdout == "Mirror: 0 written, 14 already up to date\n"
  assert _stat_snapshot(mirrored["www"], mirrored["cache"]) == before


@pytest.mark.slow
def test_beam_engine_mirrors_once_from_the_driver(mirrored, tmp_path):
  """With --engine=beam the driver lays the mirror out once, after the
  pipeline: here it rebuilt v3 alone, and the mirror has both modules."""
  pytest.importorskip("apache_beam")
  paths = dict(mirrored, out=tmp_path / "out", www=tmp_path / "www",
               cache=tmp_path / "cache")
  shutil.copytree(mirrored["out"], paths["out"])
  shutil.rmtree(paths["out"] / KEYS[3])
  built = _run(_regenerate(paths, "--engine=beam", "--direct_num_workers=1"))
  assert built.returncode == 0, built.stdout + built.stderr
  assert "Summary: 1 built, 1 up to date, 0 skipped, 0 failed" in built.stdout
  assert re.findall(r"^Mirror: .*$", built.stdout, re.MULTILINE) == [
      "Mirror: 14 written, 0 already up to date"]
  rows = json.loads((paths["www"] / "catalogue.json").read_text())["modules"]
  assert sorted(rows) == sorted(KEYS.values())
  for key in KEYS.values():
    assert _files(paths["cache"] / _sha1(f"{TFHUB}/{key}")) == _files(
        paths["out"] / key)


def test_every_tflite_model_of_a_module_is_served_and_linked():
  from slimhub.mirror import layout, pages  # pylint: disable=g-import-not-at-top
  key = KEYS[3]
  record = {"net": "mobilenet_v1_025_128", "kind": "feature_vector",
            "version": 3, "format": "tf1_hub",
            "tflite": [{"path": key + ".tflite", "type": "float"},
                       {"path": key + ".int8.tflite", "type": "int8"}]}
  metadata = {"default_image_size": [128, 128], "variable_input_size": True,
              "num_features": 256}
  row = layout._row(key, record, metadata, {"size": 1, "sha256": "0" * 64})  # pylint: disable=protected-access
  assert row["tflite"] == [(".tflite", key + ".tflite"),
                           (".int8.tflite", key + ".int8.tflite")]
  assert {key + ".tflite", key + ".int8.tflite"} <= set(row["files"])
  page = pages.module_page(row, "# Module x\n")
  assert '<a href="3.int8.tflite">TFLite model (int8)</a>' in page
  assert '<a href="3.tflite">TFLite model</a>' in page
