"""slimhub-regenerate as a user runs it: a sample of handles at versions
1/3/5 from deterministic checkpoints, re-runs that skip or rebuild, a run
killed midway, and failures that are reported without stopping the rest."""

import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

import reference_data
import tfhub_doc_checks
from slimhub import catalog
from slimhub.build import checkpoints
from slimhub.reference import deterministic
from slimhub import export
from slimhub.regenerate import build as regenerate_worker
from slimhub.regenerate import manifest as manifest_lib
from slimhub.regenerate import plan as regenerate_lib
from slimhub import slim_nets
from slimhub.reference import untrained as make_checkpoint

SAMPLE_NETS = ("mobilenet_v1_025_128", "mobilenet_v2_035_96",
               "mobilenet_v3_small_075_224")
SAMPLE = ("imagenet/mobilenet_v1_025_128/feature_vector",
          "imagenet/mobilenet_v2_035_96/classification",
          "imagenet/mobilenet_v3_small_075_224/feature_vector")
WORKER = "slimhub.regenerate.worker"


def _sha256(path):
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("checkpoints")
  for net in SAMPLE_NETS:
    make_checkpoint.make_checkpoint(net, 1, checkpoint_dir=str(directory))
  return directory


def regenerate(checkpoint_dir, output_dir, *extra, handles=SAMPLE,
               versions="1,3,5"):
  return [sys.executable, "-m", "slimhub.exporters.regenerate",
          f"--checkpoint_dir={checkpoint_dir}", f"--output_dir={output_dir}",
          f"--handles={','.join(handles)}", f"--versions={versions}", *extra]


def run(command):
  return subprocess.run(command, capture_output=True, text=True, check=False)


def expected_keys(handles, versions):
  return {entry.handle(kind, version)
          for entry, kind, version in catalog.modules(handles, versions)}


def _module_files(directory):
  return sorted(os.path.relpath(path, directory)
                for path in glob.glob(f"{directory}/**", recursive=True)
                if os.path.isfile(path))


def check_outputs(output_dir, checkpoint_dir):
  """Asserts that every manifest record matches the files on disk; the
  manifest."""
  with open(os.path.join(output_dir, "manifest.json")) as f:
    manifest = json.load(f)
  assert manifest["schema"] == "slimhub-regenerate-manifest/1"
  for key, record in manifest["modules"].items():
    module_dir = os.path.join(output_dir, key)
    for path, expected in record["files"].items():
      full = os.path.join(output_dir, path)
      assert {"sha256": _sha256(full), "size": os.path.getsize(full)} == (
          expected), path
    assert [f"{key}/{p}" for p in _module_files(module_dir)] == sorted(
        p for p in record["files"] if p.startswith(key + "/"))
    card = os.path.join(output_dir, record["model_card"])
    assert record["model_card"] == f"{key}.md"
    with open(card) as f:
      tfhub_doc_checks.check_card(f.read(), card, output_dir)
    if record["archive"]:
      _check_archive(os.path.join(output_dir, record["archive"]), module_dir)
    verification = record["verification"]
    assert verification["passed"] and verification["counts"]["fail"] == 0
    for check in ("module.identity", "golden_layout", "checkpoint_parity"):
      assert verification["checks"][check] == "pass", (key, check)
    checkpoint = os.path.join(checkpoint_dir, record["inputs"]["checkpoint"])
    files = [checkpoint] if os.path.isfile(checkpoint) else [
        p for p in glob.glob(checkpoint + ".*") if not p.endswith(".meta")]
    assert record["checkpoint_files"] == {
        os.path.basename(path): _sha256(path) for path in files}
  return manifest


def _check_archive(path, module_dir):
  tfhub_doc_checks.check_archive(path)
  with tarfile.open(path) as tar:
    members = {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest()
               for m in tar if m.isfile()}
  assert members == {name: _sha256(os.path.join(module_dir, name))
                     for name in _module_files(module_dir)}


def _summary_counts(stdout):
  (line,) = [l for l in stdout.splitlines() if l.startswith("Summary: ")]
  return line


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, checkpoint_dir):
  """The local engine's run on the sample: (output dir, its process)."""
  output = tmp_path_factory.mktemp("first_run") / "out"
  return output, run(regenerate(checkpoint_dir, output, "--jobs=2",
                                "--archive"))


# A line of TensorFlow's native logging; group 1 is the logging thread's id,
# which for the start-up lines is the process id.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +(\d+) \S+\.cc:\d+\]",
                         re.MULTILINE)


def test_verbosity_reaches_the_workers(tmp_path, checkpoint_dir, first_run):
  """-v shows TensorFlow's lines from each worker process (the driver never
  imports TensorFlow); the quiet first run shows none."""
  assert not TF_LOG_LINE.search(first_run[1].stderr), first_run[1].stderr
  process = subprocess.Popen(
      regenerate(checkpoint_dir, tmp_path / "out", "--jobs=2", "-v=1",
                 handles=SAMPLE[:2], versions="1"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stdout + stderr
  workers = {int(pid) for pid in TF_LOG_LINE.findall(stderr)}
  assert process.pid not in workers
  assert len(workers) >= 2, stderr


def test_regenerate_skip_and_rebuild(tmp_path, checkpoint_dir, first_run):
  """The first run builds and records the sample, a second one skips it,
  and a deleted module or a changed card is rebuilt alone."""
  output = tmp_path / "out"
  command = regenerate(checkpoint_dir, output, "--jobs=2", "--archive")
  shutil.copytree(first_run[0], output)
  first = first_run[1]
  assert first.returncode == 0, first.stdout + first.stderr
  keys = expected_keys(SAMPLE, (1, 3, 5))
  assert len(keys) == 7
  assert _summary_counts(first.stdout) == (
      "Summary: 7 built, 0 up to date, 0 skipped, 0 failed")
  assert "ETA" in first.stdout
  manifest = check_outputs(output, checkpoint_dir)
  assert set(manifest["modules"]) == keys
  record = manifest["modules"][
      "google/imagenet/mobilenet_v2_035_96/classification/3"]
  assert record["format"] == catalog.TF1_HUB
  assert record["signatures"]["[train]"][
      "image_classification_with_bn_hparams"]["default"].startswith(
          "float32 [?,1001] ")
  assert record["inputs"]["options"] == {"publisher": "google"}
  assert record["derived"]["archive"]["path"] == record["archive"]
  v5 = manifest["modules"][
      "google/imagenet/mobilenet_v3_small_075_224/feature_vector/5"]
  assert v5["signatures"]["[serve]"]["serving_default"]["default"].startswith(
      "float32 [?,1024] ")
  assert v5["signatures"]["__call__"][
      "training=True, return_endpoints=False"] == {
          "inputs": "float32 [?,224,224,3]", "default": "float32 [?,1024]"}
  assert not os.path.exists(output / ".regenerate-work")

  second = run(command)
  assert second.returncode == 0, second.stderr
  assert _summary_counts(second.stdout) == (
      "Summary: 0 built, 7 up to date, 0 skipped, 0 failed")
  assert json.loads((output / "manifest.json").read_text()) == manifest

  deleted = "google/imagenet/mobilenet_v1_025_128/feature_vector/5"
  edited = "google/imagenet/mobilenet_v2_035_96/classification/1"
  shutil.rmtree(output / deleted)
  with open(output / f"{edited}.md", "a") as f:
    f.write("local edit\n")
  third = run(command)
  assert third.returncode == 0, third.stderr
  assert _summary_counts(third.stdout) == (
      "Summary: 2 built, 5 up to date, 0 skipped, 0 failed")
  rebuilt = check_outputs(output, checkpoint_dir)["modules"]
  for key in keys - {deleted, edited}:
    assert rebuilt[key] == manifest["modules"][key]
  assert f"({deleted}/" in third.stdout and f"({edited}.md changed)" in (
      third.stdout)
  # The card is a build step of its own: its module was not exported again
  # (same build time), and the card is rendered back as it was.
  for field in ("content_sha256", "built_at", "files"):
    assert rebuilt[edited][field] == manifest["modules"][edited][field]


def _worker_pids(output_dir):
  pids = []
  for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
    try:
      with open(cmdline, "rb") as f:
        arguments = f.read().decode(errors="replace")
    except OSError:
      continue
    if WORKER in arguments and str(output_dir) in arguments:
      pids.append(int(cmdline.split("/")[2]))
  return pids


def test_killed_run_is_completed_by_the_next(tmp_path, checkpoint_dir):
  output = tmp_path / "out"
  handles = ("mobilenet_v1_025_128/feature_vector",)
  command = regenerate(checkpoint_dir, output, "--jobs=2", handles=handles)
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  manifest_path = output / "manifest.json"
  deadline = time.time() + 600
  while time.time() < deadline and process.poll() is None:
    done = (json.loads(manifest_path.read_text())["modules"]
            if manifest_path.exists() else {})
    if done and _worker_pids(output):
      break
    time.sleep(0.05)
  assert process.poll() is None, "the run ended before it could be killed"
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_with = json.loads(manifest_path.read_text())["modules"]
  assert 1 <= len(killed_with) < 3
  deadline = time.time() + 60
  while _worker_pids(output) and time.time() < deadline:
    time.sleep(0.1)
  assert not _worker_pids(output), "workers outlived their parent"
  for version_dir in glob.glob(f"{output}/google/imagenet/*/*/[0-9]"):
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.exists(os.path.join(version_dir, "variables",
                                       "variables.index"))

  again = run(command)
  assert again.returncode == 0, again.stdout + again.stderr
  assert _summary_counts(again.stdout) == (
      f"Summary: {3 - len(killed_with)} built, {len(killed_with)} up to "
      "date, 0 skipped, 0 failed")
  manifest = check_outputs(output, checkpoint_dir)
  assert set(manifest["modules"]) == expected_keys(handles, (1, 3, 5))
  assert not os.path.exists(output / ".regenerate-work")


def test_failures_are_reported_and_the_rest_is_built(tmp_path,
                                                      checkpoint_dir):
  broken = tmp_path / "checkpoints"
  shutil.copytree(checkpoint_dir, broken)
  entry = catalog.find("mobilenet_v2_035_96")
  meta, _ = reference_data.load("mobilenet_v2_035_96")
  dropped = "MobilenetV2/Conv/weights"
  variables = [(name, shape) for name, shape in meta["checkpoint_variables"]
               if name != dropped]
  shutil.rmtree(broken / entry.tarball_folder)
  deterministic.write_checkpoint(variables, 1, str(broken / entry.checkpoint))
  handles = ("mobilenet_v1_025_128", "mobilenet_v2_035_96", "inception_v1")
  output = tmp_path / "out"
  result = run(regenerate(broken, output, "--jobs=2", handles=handles,
                          versions="1"))
  assert result.returncode == 1
  assert _summary_counts(result.stdout) == (
      "Summary: 2 built, 0 up to date, 2 skipped, 2 failed")
  failed = [line for line in result.stdout.splitlines()
            if line.startswith("failed ")]
  assert len(failed) == 2
  assert all("mobilenet_v2_035_96" in line and "missing from the checkpoint"
             in line for line in failed)
  assert dropped in result.stdout
  assert (f"no checkpoint at {broken}/inception_v1_2016_08_28/inception_v1.ckpt"
          " (the catalogue's path") in result.stdout
  manifest = check_outputs(output, broken)
  assert set(manifest["modules"]) == expected_keys(("mobilenet_v1_025_128",),
                                                   (1,))
  assert not glob.glob(f"{output}/google/imagenet/mobilenet_v2_035_96/*/1")


def test_exit_status_of_runs_that_build_nothing(tmp_path, checkpoint_dir,
                                                first_run):
  """Exit status 1 when a module --handles names has no checkpoint (the
  line says where it was looked for), or when nothing was built or up to
  date; --allow_missing accepts both. A glob takes the checkpoints there
  are."""
  output = tmp_path / "out"
  shutil.copytree(first_run[0], output)
  present = "imagenet/mobilenet_v1_025_128/feature_vector"

  def run_with(*handles, allow_missing=False):
    extra = ["--allow_missing"] if allow_missing else []
    return run(regenerate(checkpoint_dir, output, "--archive", *extra,
                          handles=handles, versions="1"))

  named = run_with("inception_v2")
  assert named.returncode == 1, named.stdout + named.stderr
  assert named.stderr == (
      "slimhub-regenerate: error: no checkpoint for 2 modules --handles "
      "names (google/imagenet/inception_v2/classification/1, "
      "google/imagenet/inception_v2/feature_vector/1); --allow_missing "
      "accepts that\n")
  assert (f"no checkpoint at {checkpoint_dir}/inception_v2_2016_08_28/"
          "inception_v2.ckpt (the catalogue's path inception_v2_2016_08_28/"
          "inception_v2.ckpt under --checkpoint_dir") in named.stdout
  beside = run_with(present, "inception_v2")
  assert beside.returncode == 1, beside.stdout + beside.stderr
  assert _summary_counts(beside.stdout) == (
      "Summary: 0 built, 1 up to date, 2 skipped, 0 failed")
  globbed = run_with(present, "inception_v*")
  assert globbed.returncode == 0, globbed.stdout + globbed.stderr
  empty = run_with("inception_v*")
  assert empty.returncode == 1, empty.stdout + empty.stderr
  assert empty.stderr == (
      "slimhub-regenerate: error: nothing was built and nothing is up to "
      "date (--allow_missing accepts that)\n")
  for handles in (("inception_v2",), ("inception_v*",)):
    allowed = run_with(*handles, allow_missing=True)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert allowed.stderr == ""
  assert sorted(json.loads((output / "manifest.json").read_text())[
      "modules"]) == sorted(expected_keys(SAMPLE, (1, 3, 5)))


def _interrupt_when(process, line_start, signum):
  """Sends `signum` to `process` once it printed a line starting with
  `line_start`; (stdout, stderr) once it ended."""
  lines = []
  for line in process.stdout:
    lines.append(line)
    if line.lstrip().startswith(line_start):
      process.send_signal(signum)
      break
  stdout, stderr = process.communicate(timeout=600)
  return "".join(lines) + stdout, stderr


def test_signals_stop_a_run_cleanly_and_the_next_completes(tmp_path,
                                                          checkpoint_dir):
  """SIGINT starts no more modules and finishes the one in flight; SIGTERM
  stops it too. Each ends the run with one line and 130 / 143, no
  traceback, no worker left and no work directory; the next run builds
  what is left."""
  output = tmp_path / "out"
  handles = ("mobilenet_v1_025_128/feature_vector",)
  command = regenerate(checkpoint_dir, output, handles=handles)
  popen = lambda: subprocess.Popen(command, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
  manifest_path = output / "manifest.json"

  process = popen()
  stdout, stderr = _interrupt_when(process, "start", signal.SIGINT)
  assert process.returncode == 130, stdout + stderr
  assert stderr == ("slimhub-regenerate: interrupted by SIGINT; the next run "
                    "builds the 2 modules not built\n"), stdout + stderr
  assert "Traceback" not in stdout
  assert "SIGINT: no more modules are started; finishing the 1 in flight" in (
      stdout)
  assert _summary_counts(stdout) == (
      "Summary: 1 built, 0 up to date, 0 skipped, 0 failed")
  assert len(json.loads(manifest_path.read_text())["modules"]) == 1
  assert not _worker_pids(output)

  process = popen()
  stdout, stderr = _interrupt_when(process, "start", signal.SIGTERM)
  assert process.returncode == 143, stdout + stderr
  assert stderr == ("slimhub-regenerate: interrupted by SIGTERM; the next "
                    "run builds the 2 modules not built\n"), stdout + stderr
  assert "SIGTERM: no more modules are started; stopping the 1 in flight" in (
      stdout)
  assert "Traceback" not in stdout
  assert not _worker_pids(output)
  assert not os.path.exists(output / ".regenerate-work")
  assert len(json.loads(manifest_path.read_text())["modules"]) == 1

  again = run(command)
  assert again.returncode == 0, again.stdout + again.stderr
  assert _summary_counts(again.stdout) == (
      "Summary: 2 built, 1 up to date, 0 skipped, 0 failed")
  check_outputs(output, checkpoint_dir)


def _write_v1_checkpoint(variables, seed, path):
  """A single-file V1 checkpoint, the format of the 2016/2017 tarballs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(path))
  with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    for name, shape in variables:
      tf.compat.v1.Variable(deterministic.variable_value(name, shape, seed),
                            name=name)
    session.run(tf.compat.v1.global_variables_initializer())
    saver = tf.compat.v1.train.Saver(
        write_version=tf.compat.v1.train.SaverDef.V1)
    saver.save(session, path, write_meta_graph=False, write_state=False)
  assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


def test_a_v1_checkpoint_file_regenerates(tmp_path):
  entry = catalog.find("mobilenet_v1_025_128")
  meta, _ = reference_data.load(entry.name)
  _write_v1_checkpoint(meta["checkpoint_variables"], 1,
                       str(tmp_path / entry.checkpoint))
  output = tmp_path / "out"
  result = run(regenerate(tmp_path, output, handles=(entry.name,),
                          versions="5"))
  assert result.returncode == 0, result.stdout + result.stderr
  manifest = check_outputs(output, tmp_path)
  record = manifest["modules"][entry.handle("classification", 5)]
  assert list(record["checkpoint_files"]) == ["mobilenet_v1_0.25_128.ckpt"]
  v1_file = str(tmp_path / entry.checkpoint)
  assert checkpoints.resolve_prefix(os.path.dirname(v1_file)) == v1_file


def test_a_module_that_fails_verification_is_not_placed(
    tmp_path, checkpoint_dir, monkeypatch):
  """Exported from other weights than the checkpoint it claims: the
  checkpoint_parity check fails and nothing reaches the output directory."""
  other = make_checkpoint.make_checkpoint(
      "mobilenet_v1_025_128", 2, prefix=str(tmp_path / "seed2" / "model.ckpt"))
  export_from_checkpoint = export.export_module
  monkeypatch.setattr(
      export, "export_module",
      lambda net, kind, version, checkpoint, export_dir, **options:
      export_from_checkpoint(net, kind, version, other, export_dir,
                             **options))
  output = tmp_path / "out"
  options = regenerate_lib.Options(
      checkpoint_dir=str(checkpoint_dir), output_dir=str(output),
      patterns=("mobilenet_v1_025_128/feature_vector",), versions=(1,))
  (job,), _ = regenerate_lib.plan(options, manifest_lib.Manifest(output),
                                  str(tmp_path / "work"), log=lambda m: None)
  os.makedirs(job.task["work_dir"])
  with pytest.raises(regenerate_worker.BuildError,
                     match="slimhub-verify failed:\ncheckpoint_parity: "):
    regenerate_worker.build(job.task)
  assert not output.exists()


def test_bad_flags_and_a_locked_output_dir(tmp_path, checkpoint_dir):
  result = run(regenerate(checkpoint_dir, tmp_path / "out", versions="one"))
  assert result.returncode != 0 and "--versions takes integers" in (
      result.stderr)
  typo = run(regenerate(checkpoint_dir, tmp_path / "out",
                        handles=("mobilenet_v1_025_12",)))
  assert typo.returncode == 1
  assert "No catalogue module matches --handles=mobilenet_v1_025_12" in (
      typo.stderr)
  nothing = run(regenerate(checkpoint_dir, tmp_path / "out",
                           handles=("no_such_net_*",)))
  assert nothing.returncode == 1
  assert nothing.stderr.count("No catalogue module matches") == 1
  assert not (tmp_path / "out").exists()  # no directory, no lock file
  missing = run(regenerate(tmp_path / "nowhere", tmp_path / "out"))
  assert missing.returncode == 1
  assert "slimhub-regenerate: error: Checkpoint directory" in missing.stderr
  import fcntl  # pylint: disable=g-import-not-at-top
  (tmp_path / "out").mkdir(exist_ok=True)
  with open(tmp_path / "out" / ".regenerate.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    locked = run(regenerate(checkpoint_dir, tmp_path / "out"))
  assert locked.returncode == 1
  assert "Another slimhub-regenerate is writing to" in locked.stderr


# One net per family with a Slim net in this slimhub, at versions 1/3/5.
FAMILY_SAMPLE = ("inception_v1", "resnet_v2_50", "vgg_16",
                 "mobilenet_v1_025_128", "mobilenet_v2_035_96",
                 "mobilenet_v3_small_075_224", "nasnet_mobile")


@pytest.mark.slow
def test_one_net_per_family(tmp_path):
  nets = [net for net in FAMILY_SAMPLE
          if catalog.find(net).net in slim_nets.names()]
  for net in nets:
    make_checkpoint.make_checkpoint(net, 1, checkpoint_dir=str(tmp_path))
  output = tmp_path / "out"
  result = run(regenerate(tmp_path, output, "--jobs=2", handles=nets))
  assert result.returncode == 0, result.stdout + result.stderr
  manifest = check_outputs(output, tmp_path)
  assert set(manifest["modules"]) == expected_keys(nets, (1, 3, 5))


def _parent_pid(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return int(f.read().rsplit(")", 1)[1].split()[1])
  except OSError:
    return None


def test_a_killed_build_fails_its_module_and_is_rebuilt(tmp_path,
                                                        checkpoint_dir):
  """SIGKILL of the process building a module (as the kernel's OOM killer
  would) fails that module, not the run; the next run builds it."""
  output = tmp_path / "out"
  command = regenerate(checkpoint_dir, output, versions="1",
                       handles=("mobilenet_v1_025_128/feature_vector",))
  process = subprocess.Popen(command, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 600
  builders, seen = [], set()
  while not builders and time.time() < deadline and process.poll() is None:
    workers = _worker_pids(output)
    # A child of the worker seen twice: not a short-lived process that a
    # worker or its child starts (it bears their command line until exec).
    children = {pid for pid in workers if _parent_pid(pid) in workers}
    builders = sorted(children & seen)
    seen = children
    time.sleep(0.2)
  assert builders, "no build process was seen"
  os.kill(builders[0], signal.SIGKILL)
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 1, stdout + stderr
  assert _summary_counts(stdout) == (
      "Summary: 0 built, 0 up to date, 0 skipped, 1 failed")
  assert "build process died (signal 9)" in stdout
  assert not os.path.exists(
      output / "google/imagenet/mobilenet_v1_025_128/feature_vector/1")

  again = run(command)
  assert again.returncode == 0, again.stdout + again.stderr
  assert _summary_counts(again.stdout) == (
      "Summary: 1 built, 0 up to date, 0 skipped, 0 failed")
  check_outputs(output, checkpoint_dir)


def _fingerprint_without_uuid(path):
  from tensorflow.core.protobuf import fingerprint_pb2  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(f.read())
  assert fingerprint.uuid, path
  fingerprint.ClearField("uuid")
  return fingerprint


def _archive_members(path):
  with tarfile.open(path) as tar:
    return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def _assert_same_trees(left, right, keys=None):
  """Same files; byte-identical but for the uuid of fingerprint.pb (also
  inside archives); manifest records equal but for timings and the hashes
  of the files holding that uuid. `keys` limits `left` to those modules."""
  ignored = ("manifest.json", ".regenerate.lock")
  files = [p for p in _module_files(left) if p not in ignored and (
      keys is None or any(p == k + ".md" or p == k + ".tar.gz"
                          or p.startswith(k + "/") for k in keys))]
  assert files == [p for p in _module_files(right) if p not in ignored]
  with_uuid = set()
  for path in files:
    a, b = os.path.join(left, path), os.path.join(right, path)
    if path.endswith("/fingerprint.pb"):
      assert _fingerprint_without_uuid(a) == _fingerprint_without_uuid(b)
      with_uuid.add(path)
    elif path.endswith(".tar.gz"):
      members_a, members_b = _archive_members(a), _archive_members(b)
      assert set(members_a) == set(members_b), path
      for name in members_a:
        if name == "fingerprint.pb":
          with_uuid.add(path)
        else:
          assert members_a[name] == members_b[name], (path, name)
    else:
      with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read(), path
  records = []
  for tree in (left, right):
    with open(os.path.join(tree, "manifest.json")) as f:
      modules = json.load(f)["modules"]
    modules = {key: record for key, record in modules.items()
               if keys is None or key in keys}
    for record in modules.values():
      del record["built_at"], record["build_seconds"]
      for path in with_uuid & set(record["files"]):
        del record["files"][path]
    records.append(modules)
  assert records[0] == records[1]


def verify_manifest(output):
  return run([sys.executable, "-m", "slimhub.exporters.verify",
              f"--manifest={output}/manifest.json"])


def test_beam_builds_what_local_builds(tmp_path, checkpoint_dir, first_run):
  """--engine=beam on the local multi-process runner with 2 workers gives
  the local engine's files, byte for byte but for fingerprint.pb's uuid;
  reruns skip what is built and rebuild a deleted module alone;
  slimhub-verify --manifest passes on both and names a changed file."""
  pytest.importorskip("apache_beam", reason="apache-beam is not installed "
                      "(pip install -e '.[test,beam]')")
  local, local_run = first_run
  assert local_run.returncode == 0, local_run.stdout + local_run.stderr
  output = tmp_path / "beam"
  command = regenerate(checkpoint_dir, output, "--engine=beam", "--archive",
                       "--direct_num_workers=2")
  built = run(command)
  assert built.returncode == 0, built.stdout + built.stderr
  assert "Beam pipeline on FnApiRunner for 7 modules" in built.stdout
  # Beam's workers and TensorFlow stay quiet: stderr has no INFO lines.
  assert built.stderr == "", built.stderr
  assert _summary_counts(built.stdout) == (
      "Summary: 7 built, 0 up to date, 0 skipped, 0 failed")
  check_outputs(output, checkpoint_dir)
  _assert_same_trees(local, output)
  for tree in (local, output):
    verified = verify_manifest(tree)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "manifest  pass" in verified.stdout

  again = run(command)
  assert again.returncode == 0, again.stdout + again.stderr
  assert _summary_counts(again.stdout) == (
      "Summary: 0 built, 7 up to date, 0 skipped, 0 failed")
  deleted = "google/imagenet/mobilenet_v3_small_075_224/feature_vector/5"
  shutil.rmtree(output / deleted)
  rebuilt = run(command)
  assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
  assert _summary_counts(rebuilt.stdout) == (
      "Summary: 1 built, 6 up to date, 0 skipped, 0 failed")
  assert f"built  {deleted}" in rebuilt.stdout
  _assert_same_trees(local, output)

  changed = f"{deleted}/variables/variables.data-00000-of-00001"
  with open(output / changed, "r+b") as f:
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 1]))
  tampered = verify_manifest(output)
  assert tampered.returncode == 1
  problems = [line.strip() for line in tampered.stdout.splitlines()
              if line.startswith("  ")]
  assert problems[0].startswith(f"{changed}: differs from the manifest")
  assert problems[1].startswith(f"{deleted}: content digest ")
  assert len(problems) == 2


def test_beam_beside_a_clone_reports_progress_and_failures(tmp_path,
                                                           checkpoint_dir):
  """--engine=beam run from a directory holding a `slimhub/` folder (a
  clone, no __init__.py) builds with the installed slimhub; it prints the
  local engine's progress lines as modules end; a module that cannot be
  built fails alone, once, with its reason in the summary, and the run
  exits 1; no scratch directory is left."""
  pytest.importorskip("apache_beam", reason="apache-beam is not installed "
                      "(pip install -e '.[test,beam]')")
  good = catalog.find("mobilenet_v1_025_128")
  bad = catalog.find("mobilenet_v2_035_96")
  checkpoints_dir = tmp_path / "ckpts"
  shutil.copytree(checkpoint_dir / good.tarball_folder,
                  checkpoints_dir / good.tarball_folder)
  meta, _ = reference_data.load(bad.name)
  dropped = "MobilenetV2/Conv/weights"
  deterministic.write_checkpoint(
      [(name, shape) for name, shape in meta["checkpoint_variables"]
       if name != dropped], 1, str(checkpoints_dir / bad.checkpoint))
  (tmp_path / "slimhub" / "slimhub").mkdir(parents=True)  # a clone
  (tmp_path / "temp").mkdir()
  good_key = good.handle("feature_vector", 1)
  bad_key = bad.handle("feature_vector", 1)
  command = regenerate("ckpts", "out", "--engine=beam",
                       "--direct_num_workers=2", versions="1",
                       handles=(f"{good.name}/feature_vector",
                                f"{bad.name}/feature_vector"))
  # The installed binary: `python -m` would put the clone on the driver's
  # sys.path too.
  binary = os.path.join(os.path.dirname(sys.executable), "slimhub-regenerate")
  result = subprocess.run(
      [binary] + command[3:],
      capture_output=True, text=True, check=False, cwd=tmp_path,
      env=dict(os.environ, TMPDIR=str(tmp_path / "temp")))
  assert result.returncode == 1, result.stdout + result.stderr
  assert result.stderr == "slimhub-regenerate: error: 1 module failed\n"
  assert _summary_counts(result.stdout) == (
      "Summary: 1 built, 0 up to date, 0 skipped, 1 failed")
  assert re.search(rf"^\[[12]/2\] built  {good_key} in [\d.]+s \(not built "
                   r"yet\); [01] left, ETA \d:\d\d:\d\d$",
                   result.stdout, re.MULTILINE), result.stdout
  assert re.search(rf"^\[[12]/2\] failed {bad_key} in ", result.stdout,
                   re.MULTILINE), result.stdout
  (row,) = [line for line in result.stdout.splitlines()
            if line.startswith("failed  ")]
  assert bad_key in row and "missing from the checkpoint" in row
  assert dropped in row
  assert result.stdout.count(bad_key) == 2  # its progress line and its row
  assert "Traceback" not in result.stdout
  check_outputs(tmp_path / "out", checkpoints_dir)
  assert not os.path.exists(tmp_path / "out" / bad_key)
  assert os.listdir(tmp_path / "temp") == []


def test_beam_builds_into_a_beam_filesystem(tmp_path, checkpoint_dir,
                                            first_run):
  """--engine=beam reads checkpoints from and writes modules to a filesystem
  only Beam's FileSystems knows (slimhubtest://, an object store registered
  by a --beam_plugins module in the driver and both SDK workers): the same
  bytes and records as the local engine's, a manifest, a clean output, and
  a rerun that skips everything. --engine=local refuses such paths."""
  pytest.importorskip("apache_beam", reason="apache-beam is not installed "
                      "(pip install -e '.[test,beam]')")
  local, local_run = first_run
  assert local_run.returncode == 0, local_run.stdout + local_run.stderr
  entry = catalog.find("mobilenet_v1_025_128")
  root = tmp_path / "bucket"
  shutil.copytree(checkpoint_dir / entry.tarball_folder,
                  root / "ckpts" / entry.tarball_folder)
  environment = dict(os.environ, SLIMHUBTEST_FS_ROOT=str(root),
                     PYTHONPATH=os.pathsep.join(
                         [os.path.dirname(__file__)]
                         + [p for p in [os.environ.get("PYTHONPATH")] if p]))
  handles = (f"{entry.name}/feature_vector",)
  command = regenerate("slimhubtest://ckpts", "slimhubtest://out",
                       "--engine=beam", "--archive", "--direct_num_workers=2",
                       "--beam_plugins=slimhubtest_fs", handles=handles,
                       versions="3,5")
  run_remote = lambda: subprocess.run(command, capture_output=True, text=True,
                                      env=environment, check=False)
  built = run_remote()
  assert built.returncode == 0, built.stdout + built.stderr
  assert _summary_counts(built.stdout) == (
      "Summary: 2 built, 0 up to date, 0 skipped, 0 failed")
  # Only slimhub's own lines: no INFO from Beam's workers or TensorFlow.
  assert built.stderr == ""
  keys = [entry.handle("feature_vector", version) for version in (3, 5)]
  output = root / "out"
  # No lock, record or work object is left (empty directories are not
  # objects).
  assert [path for path in _module_files(output)
          if not path.startswith(tuple(keys))] == ["manifest.json"]
  _assert_same_trees(local, output, keys)
  with open(output / "manifest.json") as f:
    remote_modules = json.load(f)["modules"]
  with open(local / "manifest.json") as f:
    local_modules = json.load(f)["modules"]
  assert sorted(remote_modules) == keys
  for key in keys:
    assert (remote_modules[key]["content_sha256"]
            == local_modules[key]["content_sha256"]
            == manifest_lib.content_digest(str(output / key)))

  again = run_remote()
  assert again.returncode == 0, again.stdout + again.stderr
  assert _summary_counts(again.stdout) == (
      "Summary: 0 built, 2 up to date, 0 skipped, 0 failed")
  assert "Beam pipeline" not in again.stdout

  lock = output / regenerate_lib.LOCK_FILE
  lock.write_text("another run")
  locked = run_remote()
  assert locked.returncode == 1, locked.stdout + locked.stderr
  assert ("Another slimhub-regenerate is writing to slimhubtest://out "
          "(slimhubtest://out/.regenerate.lock exists") in locked.stderr
  assert lock.read_text() == "another run"

  refused = subprocess.run(
      regenerate("slimhubtest://ckpts", tmp_path / "local_out",
                 handles=handles, versions="3"),
      capture_output=True, text=True, env=environment, check=False)
  assert refused.returncode == 1
  assert "slimhubtest://ckpts: remote paths" in refused.stderr
  assert "need --engine=beam" in refused.stderr


TFLITE_SAMPLE = ("imagenet/mobilenet_v1_025_128/quantops/classification",
                 "imagenet/mobilenet_v1_025_128/feature_vector")


def _module_stats(output, keys):
  """(inode, mtime) of every file of the modules `keys`."""
  stats = {}
  for key in keys:
    for path in _module_files(output / key):
      info = os.stat(output / key / path)
      stats[f"{key}/{path}"] = (info.st_ino, info.st_mtime_ns)
  return stats


def _tflite_files(output):
  return sorted(os.path.relpath(path, output) for path in
                glob.glob(f"{output}/**/*.tflite", recursive=True))


def test_tflite_models_beside_the_modules(tmp_path):
  """--tflite writes a uint8 model beside a quantops module and a float one
  beside a TF2 module and records them; --tflite=float,int8 then replaces
  them by typed models, and a run without --tflite removes them: neither
  exports a module again."""
  import test_tflite  # pylint: disable=g-import-not-at-top
  from slimhub.tflite import runtime as tflite_runtime  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  checkpoints = tmp_path / "checkpoints"
  for net in ("mobilenet_v1_025_128/quantops", "mobilenet_v1_025_128"):
    make_checkpoint.make_checkpoint(net, 1, checkpoint_dir=str(checkpoints))
  output = tmp_path / "out"
  quant_key = "google/imagenet/mobilenet_v1_025_128/quantops/classification/3"
  float_key = "google/imagenet/mobilenet_v1_025_128/feature_vector/5"
  keys = [quant_key, float_key, float_key[:-1] + "3"]  # quantops has no v5
  built = run(regenerate(checkpoints, output, "--tflite", "--jobs=2",
                         handles=TFLITE_SAMPLE, versions="3,5"))
  assert built.returncode == 0, built.stdout + built.stderr
  with open(output / "manifest.json") as f:
    records = json.load(f)["modules"]
  assert set(records) == set(keys)
  for key, inference_type in ((quant_key, "uint8"), (float_key, "float32")):
    record = records[key]
    (model,) = record["tflite"]
    assert model["path"] == key + ".tflite"
    assert model["inference_type"] == inference_type
    assert model["image_size"] == [128, 128]
    assert model["deviation"]["held_out"]["images"] == 8
    assert record["derived"]["tflite"]["path"] == key + ".tflite"
    assert record["files"][key + ".tflite"]["sha256"] == _sha256(
        output / (key + ".tflite"))
  conv_inputs = [inputs[0] for name, inputs, _ in tflite_runtime.operators(
      str(output / (quant_key + ".tflite")))
                 if name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
  assert len(conv_inputs) == 28 and set(conv_inputs) == {"uint8"}
  image = deterministic.images(128, 3)[:1]
  features = tflite_runtime.run(
      tflite_runtime.interpreter(output / (float_key + ".tflite")), image)
  module = tf.saved_model.load(str(output / float_key))
  expected = module(tf.constant(image), training=False).numpy()
  assert reference_data.relative_error(features, expected) < 1e-4
  assert verify_manifest(output).returncode == 0
  modules = _module_stats(output, keys)

  typed = run(regenerate(checkpoints, output, "--tflite=float,int8",
                         "--calibration=synthetic", "--calibration_count=4",
                         "--jobs=2", handles=TFLITE_SAMPLE, versions="3,5"))
  assert typed.returncode == 0, typed.stdout + typed.stderr
  assert _module_stats(output, keys) == modules  # no module touched
  starts = [line for line in typed.stdout.splitlines() if " start " in line]
  assert len(starts) == 3 and all(".int8.tflite not built yet" in line
                                  for line in starts), typed.stdout
  assert typed.stdout.count(".tflite (no longer asked for)") == 3
  assert _tflite_files(output) == sorted(
      f"{key}.{model_type}.tflite" for key in keys
      for model_type in ("float", "int8"))
  for key in keys:
    test_tflite.assert_all_integer(str(output / f"{key}.int8.tflite"),
                                   "int8")
  assert verify_manifest(output).returncode == 0

  without = run(regenerate(checkpoints, output, handles=TFLITE_SAMPLE,
                           versions="3,5"))
  assert without.returncode == 0, without.stdout + without.stderr
  assert _summary_counts(without.stdout) == (
      "Summary: 0 built, 3 up to date, 0 skipped, 0 failed")
  assert without.stdout.count("(no longer asked for)") == 6
  assert not _tflite_files(output)
  assert _module_stats(output, keys) == modules
  with open(output / "manifest.json") as f:
    records = json.load(f)["modules"]
  assert all(records[key]["tflite"] is None for key in keys)
  assert verify_manifest(output).returncode == 0


def test_tflite_flag_refusals(tmp_path, checkpoint_dir):
  """--tflite's type list and the calibration int8 needs, refused before
  any work: one line, nothing written."""
  output = tmp_path / "out"
  for flags, message in (
      (["--tflite=int8"], "--tflite=...int8 needs --calibration_images=DIR "
       "or --calibration=synthetic"),
      (["--tflite=int4"], "unknown TFLite type(s) int4"),
      (["--calibration=synthetic"], "Calibration flags are for "
       "--tflite=...,int8")):
    result = run(regenerate(checkpoint_dir, output, *flags))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not output.exists()


def _job(net, version, megabytes):
  return regenerate_lib.Job(f"{net}/{version}", {"net": net}, "test",
                            int(megabytes * 1e6))


def test_build_order_puts_large_nets_first_and_nets_side_by_side():
  """The local engine hands out the largest nets first, and the modules of
  `jobs` nets in turn (so two workers never start on the same net)."""
  jobs = [_job(net, version, size)
          for net, size in (("small", 2), ("large", 300), ("medium", 90))
          for version in (1, 2, 3)]
  order = [job.key for job in regenerate_lib.in_build_order(jobs, 2)]
  assert order == ["large/1", "medium/1", "large/2", "medium/2", "large/3",
                   "medium/3", "small/1", "small/2", "small/3"]
  assert [job.key for job in regenerate_lib.in_build_order(jobs, 1)] == [
      "large/1", "large/2", "large/3", "medium/1", "medium/2", "medium/3",
      "small/1", "small/2", "small/3"]


def test_beam_slots_balance_the_estimated_build_time():
  """The offline Beam runner splits its input among workers once, by count:
  the engine gives it one slot per worker of about equal estimated time."""
  pytest.importorskip("apache_beam", reason="apache-beam is not installed "
                      "(pip install -e '.[test,beam]')")
  from slimhub.regenerate.engines import beam as beam_engine  # pylint: disable=g-import-not-at-top
  jobs = ([_job("large", version, 300) for version in (1, 2, 3)]
          + [_job(f"small{index}", 1, 2) for index in range(9)])
  keyed = beam_engine.slotted(jobs, 2)
  assert sorted(task["net"] for _, task in keyed) == sorted(
      job.task["net"] for job in jobs)
  loads = {}
  for slot, task in keyed:
    job = next(j for j in jobs if j.task is task)
    loads[slot] = loads.get(slot, 0) + job.estimated_seconds()
  assert set(loads) == {0, 1}
  assert max(loads.values()) - min(loads.values()) <= max(
      job.estimated_seconds() for job in jobs)
  # By count alone, a slot would hold two of the three large modules.
  assert {slot for slot, task in keyed if task["net"] == "large"} == {0, 1}
  assert [slot for slot, _ in beam_engine.slotted(jobs)] == list(range(12))
