"""slimhub-export as a user runs it: success, bad input, and SIGKILL.

Every failure must exit non-zero with a message naming the problem and
leave --export_dir untouched.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import reference_data
from slimhub.reference import deterministic

STEM = "mobilenet_v1_025_128"


def export_command(checkpoint, export_dir, *extra, net=STEM,
                   kind="feature_vector", version=3):
  return [sys.executable, "-m", "slimhub.exporters.export", f"--net={net}",
          f"--kind={kind}", f"--version={version}",
          f"--checkpoint={checkpoint}", f"--export_dir={export_dir}", *extra]


def run(command):
  return subprocess.run(command, capture_output=True, text=True, check=False)


def _variables(drop=(), reshape=()):
  meta, _ = reference_data.load(STEM)
  out = []
  for name, shape in meta["checkpoint_variables"]:
    if name in drop:
      continue
    out.append((name, [*shape[:-1], shape[-1] + 1] if name in reshape
                else shape))
  return out


def _checkpoint(tmp_path, name, variables):
  return deterministic.write_checkpoint(
      variables, reference_data.SEED, str(tmp_path / name / "model.ckpt"))


def test_export_writes_module_and_notes_ignored_variables(
    tmp_path, reference_checkpoint):
  target = tmp_path / "module"
  result = run(export_command(reference_checkpoint(STEM), target))
  assert result.returncode == 0, result.stderr
  # The reference checkpoint has global_step, the logits a feature vector
  # does not use, and the untrained marker of deterministic checkpoints.
  assert ("ignoring 4 not needed by the module: 1 global_step, 2 not in the "
          "module (MobilenetV1/Logits/Conv2d_1c_1x1/biases, "
          "MobilenetV1/Logits/Conv2d_1c_1x1/weights), 1 untrained-checkpoint "
          "marker.") in result.stdout
  assert sorted(os.listdir(target)) == [
      "assets", "assets.extra", "saved_model.pb", "tfhub_module.pb",
      "variables"]
  # The directory form of --checkpoint finds the only checkpoint inside.
  again = run(export_command(os.path.dirname(reference_checkpoint(STEM)),
                             target, "--overwrite"))
  assert again.returncode == 0, again.stderr


BAD_INPUTS = {
    "missing_variable": (
        lambda tmp: _checkpoint(tmp, "missing", _variables(
            drop={"MobilenetV1/Conv2d_3_pointwise/weights"})),
        {}, ["missing from the checkpoint",
             "MobilenetV1/Conv2d_3_pointwise/weights"]),
    "wrong_shape": (
        lambda tmp: _checkpoint(tmp, "shape", _variables(
            reshape={"MobilenetV1/Conv2d_0/weights"})),
        {}, ["another shape", "MobilenetV1/Conv2d_0/weights",
             "[3, 3, 3, 9]", "[3, 3, 3, 8]"]),
    "unknown_net": (
        None, {"net": "mobilenet_v1_025_12"},
        ["Unknown catalogue net 'mobilenet_v1_025_12'",
         # The completion of the cut name before the others.
         "Close matches: mobilenet_v1_025_128, mobilenet_v1_025_192"]),
    "unknown_version": (
        None, {"version": 2}, ["has no version 2", "1, 3, 4, 5"]),
    "missing_checkpoint": (
        lambda tmp: str(tmp / "nowhere" / "model.ckpt"), {},
        ["does not exist", "nowhere"]),
    "unreadable_checkpoint": (
        lambda tmp: _corrupt(tmp), {}, ["Cannot read checkpoint"]),
}


def _corrupt(tmp_path):
  prefix = _checkpoint(tmp_path, "corrupt", _variables())
  with open(prefix + ".index", "wb") as f:
    f.write(b"this is not a checkpoint index")
  return prefix


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_before_writing(case, tmp_path, reference_checkpoint):
  make_checkpoint, overrides, expected = BAD_INPUTS[case]
  checkpoint = (make_checkpoint(tmp_path) if make_checkpoint
                else reference_checkpoint(STEM))
  target = tmp_path / "module"
  result = run(export_command(checkpoint, target, **overrides))
  assert result.returncode != 0
  message = result.stderr
  assert message.count("slimhub-export: error:") == 1, message
  for fragment in expected:
    assert fragment in message, message
  assert not target.exists()
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".module.tmp")]


def test_non_empty_export_dir_needs_overwrite(tmp_path, reference_checkpoint):
  target = tmp_path / "module"
  target.mkdir()
  (target / "keep.txt").write_text("precious")
  result = run(export_command(reference_checkpoint(STEM), target))
  assert result.returncode != 0
  assert "exists and is not empty; pass --overwrite" in result.stderr
  assert os.listdir(target) == ["keep.txt"]
  assert (target / "keep.txt").read_text() == "precious"
  result = run(export_command(reference_checkpoint(STEM), target,
                              "--overwrite"))
  assert result.returncode == 0, result.stderr
  assert not (target / "keep.txt").exists()


def test_bad_flag_value_is_named(tmp_path, reference_checkpoint):
  result = run(export_command(reference_checkpoint(STEM), tmp_path / "m",
                              kind="features"))
  assert result.returncode != 0
  assert "--kind" in result.stderr and "features" in result.stderr


def test_sigkill_midway_leaves_no_module(tmp_path, reference_checkpoint):
  """Killed while the staging directory is being filled: no module appears;
  the next export completes and removes the orphaned staging directory."""
  target = tmp_path / "module"
  process = subprocess.Popen(
      export_command(reference_checkpoint("inception_v2"), target,
                     net="inception_v2", kind="classification"),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  staging = []
  while time.time() < deadline and process.poll() is None:
    staging = [p for p in os.listdir(tmp_path) if p.startswith(".module.tmp")]
    if staging:
      break
    time.sleep(0.005)
  assert staging, "the export never started writing"
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not target.exists()
  result = run(export_command(reference_checkpoint("inception_v2"), target,
                              net="inception_v2", kind="classification"))
  assert result.returncode == 0, result.stderr
  assert (target / "saved_model.pb").exists()
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".module.tmp")]


def _interrupt_while_staging(command, parent, attempts=3):
  """Runs `command` until SIGINT reaches it while its staging directory is
  being filled: the process is stopped as soon as the directory shows, and
  interrupted only if the directory is still there (nothing committed);
  when a loaded machine let the export finish first, it is tried again.
  The (returncode, stdout, stderr) of the interrupted run."""
  staging = lambda: [p for p in os.listdir(parent)
                     if p.startswith(".module.tmp")]
  for _ in range(attempts):
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not staging():
      time.sleep(0.002)
    process.send_signal(signal.SIGSTOP)
    midway = bool(staging())
    if midway:
      process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=300)
    if midway:
      return process.returncode, stdout, stderr
    shutil.rmtree(parent / "module", ignore_errors=True)
  pytest.fail(f"no SIGINT reached the export while it was writing, in "
              f"{attempts} attempts")


def test_sigint_midway_ends_with_one_line_and_writes_nothing(
    tmp_path, reference_checkpoint):
  """Ctrl-C while the staging directory is being filled: one line, the
  shell's status for SIGINT, no traceback, no module and no staging
  directory; the same export then completes."""
  target = tmp_path / "module"
  command = export_command(reference_checkpoint(STEM), target)
  returncode, stdout, stderr = _interrupt_while_staging(command, tmp_path)
  assert returncode == 130, stdout + stderr
  assert stderr == "slimhub-export: interrupted by SIGINT\n", stderr
  assert "Traceback" not in stdout
  assert os.listdir(tmp_path) == []
  result = run(command)
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(tmp_path)) == ["module"]
  assert (target / "tfhub_module.pb").exists()
