"""The README's first session runs as written, in a fresh directory."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language):
  return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(),
                    re.M | re.S)


def test_first_session_and_using_a_module(tmp_path):
  session, = [b for b in _blocks("bash") if "slimhub-make-checkpoint" in b]
  env = dict(os.environ,
             PATH=os.path.dirname(sys.executable) + os.pathsep
             + os.environ["PATH"])
  run = subprocess.run(["bash", "-euo", "pipefail", "-c", session],
                       cwd=tmp_path, env=env, capture_output=True, text=True)
  assert run.returncode == 0, run.stdout + run.stderr
  assert "google/imagenet/mobilenet_v1_025_128/feature_vector" in run.stdout
  assert "PASSED: all 2 modules passed" in run.stdout
  for path in ("verify.xml", "fv5.tflite"):
    assert (tmp_path / path).exists(), path

  using, = [b for b in _blocks("python") if "hub.load" in b]
  probe = using + "\nimport numpy\nnumpy.save('features.npy', features)\n"
  run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path,
                       capture_output=True, text=True)
  assert run.returncode == 0, run.stderr
  features = np.load(tmp_path / "features.npy")
  assert features.shape == (2, 256) and np.isfinite(features).all()
