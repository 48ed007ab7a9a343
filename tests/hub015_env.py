"""The tensorflow-hub 0.15 / TF 2.15 virtualenv that hub.Module tests use.

hub.Module cannot run on TF 2.21, so the tests build (once, cached) a second
virtualenv with the last TF1-capable consumer stack and run probes in it.
Location: $SLIMHUB_HUB015_VENV, default <repo>/.venv-hub015.
"""

import fcntl
import os
import pathlib
import subprocess
import sys

REQUIREMENTS = ("tensorflow-cpu==2.15.1", "tensorflow-hub==0.15.0",
                "numpy<2")
REPO = pathlib.Path(__file__).resolve().parent.parent


def venv_dir():
  return pathlib.Path(os.environ.get("SLIMHUB_HUB015_VENV",
                                     REPO / ".venv-hub015"))


def python():
  """Path of the venv's python, creating the venv if needed."""
  root = venv_dir()
  stamp = root / "slimhub-requirements.txt"
  wanted = "\n".join(REQUIREMENTS) + "\n"
  root.parent.mkdir(parents=True, exist_ok=True)
  with open(str(root) + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not stamp.exists() or stamp.read_text() != wanted:
      subprocess.run([_base_python(), "-m", "venv", "--clear", str(root)],
                     check=True)
      pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check"]
      subprocess.run(pip + list(REQUIREMENTS), check=True)
      stamp.write_text(wanted)
  return str(root / "bin" / "python")


def _base_python():
  return getattr(sys, "_base_executable", None) or sys.executable


if __name__ == "__main__":
  print(python())
