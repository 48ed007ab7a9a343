"""The binaries as a new user meets them: one TensorFlow, --help, quiet
stderr, closed pipes. Each runs the installed console scripts."""

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from slimhub.exporters import catalog_cli
from slimhub import quiet
from slimhub.exporters import common

BIN = os.path.dirname(sys.executable)
STEM = "mobilenet_v1_025_128"
# A line of TensorFlow's native logging ("I0000 00:00:17... port.cc:153] ...")
# or the banner absl prints before its logging is initialised.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\]|"
                         r"absl::InitializeLog", re.MULTILINE)
# Each binary's own flags (others may be added; these must be listed).
OWN_FLAGS = {
    "slimhub-export": ["net", "kind", "version", "checkpoint", "export_dir",
                       "overwrite", "use_ema", "preprocessing",
                       "checkpoint_source", "training_note"],
    "slimhub-catalog": ["json", "filter", "all"],
    "slimhub-make-checkpoint": ["net", "seed", "output", "checkpoint_dir"],
    "slimhub-verify": ["module_dir", "expect", "checkpoint", "against",
                       "json", "allow_ops", "max_bytes", "timeout", "jobs",
                       "junit_xml", "checkpoint_dir"],
    "slimhub-regenerate": ["checkpoint_dir", "output_dir", "handles",
                           "versions", "jobs", "archive", "download",
                           "mirror_http_root", "mirror_hub_cache_dir",
                           "allow_missing", "checkpoint_source",
                           "tflite", "calibration_images", "calibration",
                           "calibration_count"],
    "slimhub-fetch-checkpoint": ["net", "cache_dir", "base_url", "sha256",
                                 "timeout", "max_bytes", "extract_all",
                                 "print_sha256"],
    "slimhub-tflite": ["module_dir", "output", "type", "io_type", "batch",
                       "calibration_images", "calibration",
                       "calibration_count", "labels"],
    "slimhub-mirror": ["regenerated", "hub_cache_dir", "handle_base",
                       "http_root", "mirror_url"],
}
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                    "tensorflow-intel", "tensorflow-macos")


def run(binary, *args, **kwargs):
  return subprocess.run([os.path.join(BIN, binary), *args],
                        capture_output=True, text=True, check=False,
                        **kwargs)


def test_exactly_one_tensorflow_distribution():
  installed = []
  for name in TF_DISTRIBUTIONS:
    try:
      installed.append((name, importlib.metadata.version(name)))
    except importlib.metadata.PackageNotFoundError:
      pass
  # tf-keras requires `tensorflow`: any other distribution would be a
  # second copy in the same site-packages/tensorflow.
  assert [name for name, _ in installed] == ["tensorflow"], installed
  assert installed[0][1] == importlib.metadata.version("tf-keras")
  cuda = [d.metadata["Name"] for d in importlib.metadata.distributions()
          if d.metadata["Name"].lower().startswith("nvidia-")]
  assert not cuda, f"CUDA libraries pulled in: {cuda}"
  probe = ("import tf_keras, tensorflow_hub as hub;"
           "layer = hub.KerasLayer(lambda x: 2 * x);"
           "print(tf_keras.Sequential([tf_keras.Input((1,)), layer])"
           ".predict([[3.0]], verbose=0)[0][0])")
  result = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                          text=True, check=True)
  assert result.stdout.split()[-1] == "6.0"


def test_tensorflow_hub_is_a_main_dependency():
  """A plain `pip install .` can run the cards' hub.load / hub.KerasLayer
  snippets: tensorflow-hub is required without any extra."""
  main = [requirement for requirement in importlib.metadata.requires("slimhub")
          if "extra ==" not in requirement]
  assert "tensorflow-hub==0.16.1" in main, main


@pytest.mark.parametrize("binary", sorted(OWN_FLAGS))
def test_help_lists_own_flags_and_exits_0(binary):
  result = run(binary, "--help")
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"{binary}: "), result.stdout
  for flag in OWN_FLAGS[binary]:
    assert re.search(rf"^  --(\[no\])?{flag}: \S", result.stdout,
                     re.MULTILINE), (flag, result.stdout)
  # Not absl's or TensorFlow's flags: those are --helpfull's.
  assert "logtostderr" not in result.stdout
  assert "--helpfull" in result.stdout
  assert result.stderr == ""


def test_helpfull_stays_absls():
  result = run("slimhub-catalog", "--helpfull")
  assert "absl.logging:" in result.stdout
  assert "--[no]json: Print a JSON list" in result.stdout


def _with_closed_stdout(binary, *args):
  """Runs `binary` with its stdout a pipe whose reader is already gone."""
  read_end, write_end = os.pipe()
  os.close(read_end)
  try:
    return subprocess.run([os.path.join(BIN, binary), *args],
                          stdout=write_end, stderr=subprocess.PIPE,
                          text=True, check=False)
  finally:
    os.close(write_end)


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_closed_pipe_ends_catalog_quietly(args):
  result = _with_closed_stdout("slimhub-catalog", *args)
  assert result.returncode == common.CLOSED_PIPE_STATUS
  assert result.stderr == ""


def test_closed_pipe_ends_tensorflow_binary_quietly(tmp_path):
  prefix = tmp_path / "model.ckpt"
  result = _with_closed_stdout("slimhub-make-checkpoint", f"--net={STEM}",
                               f"--output={prefix}")
  assert result.returncode == common.CLOSED_PIPE_STATUS
  assert result.stderr == ""
  assert os.path.exists(f"{prefix}.index")  # the work itself was done


def test_catalog_prints_legend_but_json_stays_clean():
  table = run("slimhub-catalog")
  assert table.returncode == 0 and table.stderr == ""
  assert re.search(r"^google/imagenet/inception_v3/feature_vector +1F 3V 4V "
                   r"5V ", table.stdout, re.MULTILINE)
  assert table.stdout.endswith(catalog_cli.LEGEND + "\n")
  assert "V = variable" in table.stdout and "F = fixed" in table.stdout
  listing = run("slimhub-catalog", "--json", "--filter=inception_v3")
  rows = json.loads(listing.stdout)
  assert {row["handle"] for row in rows} == {
      "google/imagenet/inception_v3/feature_vector",
      "google/imagenet/inception_v3/classification"}


def test_stderr_has_no_tensorflow_lines(tmp_path):
  """A real session: checkpoint, export, verify, catalogue; stderr empty."""
  checkpoint = tmp_path / "ckpt" / "model.ckpt"
  module = tmp_path / STEM / "feature_vector" / "3"
  steps = [
      ("slimhub-make-checkpoint", f"--net={STEM}", f"--output={checkpoint}"),
      ("slimhub-export", f"--net={STEM}", "--kind=feature_vector",
       "--version=3", f"--checkpoint={checkpoint}", f"--export_dir={module}"),
      ("slimhub-verify", f"--module_dir={module}",
       f"--checkpoint={checkpoint}"),
      ("slimhub-catalog", "--filter=inception_v2"),
  ]
  for step in steps:
    result = run(*step)
    assert result.returncode == 0, (step, result.stdout, result.stderr)
    assert result.stderr == "", (step, result.stderr)
    assert not TF_LOG_LINE.search(result.stdout), (step, result.stdout)
  assert os.path.exists(module / "tfhub_module.pb")


def test_verbosity_brings_tensorflow_lines_back():
  quiet = run("slimhub-catalog", "--filter=inception_v2")
  loud = run("slimhub-catalog", "--filter=inception_v2", "--verbosity=1")
  assert quiet.returncode == loud.returncode == 0
  assert not TF_LOG_LINE.search(quiet.stderr)
  assert TF_LOG_LINE.search(loud.stderr), loud.stderr
  assert loud.stdout == quiet.stdout


@pytest.mark.parametrize("argv, wanted", [
    (["prog", "--verbosity=1"], True), (["prog", "-v", "1"], True),
    (["prog", "--v=0"], True), (["prog", "--net=x"], False),
    (["prog", "--", "-v"], False), (["prog", "--verbose_x"], False)])
def test_verbosity_requested(argv, wanted):
  assert common.verbosity_requested(argv) == wanted


def test_hidden_stderr_is_replayed_when_the_import_fails(capfd):
  with pytest.raises(ImportError):
    with quiet.stderr_hidden():
      os.write(2, b"native start-up line\n")
      raise ImportError("broken install")
  assert capfd.readouterr().err == "native start-up line\n"
  with quiet.stderr_hidden():
    os.write(2, b"native start-up line\n")
  os.write(2, b"after\n")
  assert capfd.readouterr().err == "after\n"


def test_a_crash_while_stderr_is_hidden_still_shows_where():
  probe = ("from slimhub import quiet\n"
           "with quiet.stderr_hidden():\n"
           "  import os; os.abort()\n")
  result = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                          text=True, check=False)
  assert result.returncode != 0
  assert "Fatal Python error: Aborted" in result.stderr, result.stderr
  assert '"<string>", line 3' in result.stderr, result.stderr


def test_tensorflow_is_imported_lazily_and_quietly():
  """slimhub-regenerate's driver (and Beam's side of its engine) never
  imports TensorFlow; the first import of it, wherever it happens in a
  slimhub program, hides the start-up lines and keeps TensorFlow's loader."""
  engines = ["slimhub.regenerate.engines.local"]
  if importlib.util.find_spec("apache_beam"):
    engines.append("slimhub.regenerate.engines.beam")
  probe = "\n".join(
      ["import sys", "import slimhub.exporters.regenerate"]
      + [f"import {engine}" for engine in engines]
      + ["assert 'tensorflow' not in sys.modules, 'imported TensorFlow'",
         "from tensorflow.core.protobuf import fingerprint_pb2",
         "import tensorflow as tf",
         "print(type(tf.__loader__).__name__, tf.constant(2).numpy())"])
  environment = {key: value for key, value in os.environ.items()
                 if key != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                          text=True, env=environment, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout == "SourceFileLoader 2\n"
  assert not TF_LOG_LINE.search(result.stderr), result.stderr


def _imported_modules(binary, *args):
  """(result, names of the modules imported) of the installed `binary`
  run by this Python with -X importtime."""
  result = subprocess.run(
      [sys.executable, "-X", "importtime", os.path.join(BIN, binary), *args],
      capture_output=True, text=True, check=False)
  imported = {line.rsplit("|", 1)[-1].strip()
              for line in result.stderr.splitlines()
              if line.startswith("import time:")}
  return result, imported


@pytest.mark.parametrize("binary, args, status", [
    ("slimhub-export", ["--help"], 0),
    ("slimhub-export", ["--net=mobilenet_v1_025_12", "--kind=feature_vector",
                        "--version=3", "--checkpoint=c", "--export_dir=d"], 1),
    ("slimhub-regenerate", ["--help"], 0),
    ("slimhub-verify", ["--help"], 0),
    ("slimhub-catalog", ["--help"], 0),
    ("slimhub-fetch-checkpoint", ["--help"], 0)])
def test_answers_without_importing_tensorflow(binary, args, status):
  """--help, and slimhub-export's answer to a mistyped net, come without
  TensorFlow's seconds of import."""
  result, imported = _imported_modules(binary, *args)
  assert result.returncode == status, result.stderr[-2000:]
  assert "absl.flags" in imported  # the probe sees the binary's imports
  assert "tensorflow" not in imported
  if status:
    assert "Unknown catalogue net 'mobilenet_v1_025_12'" in result.stderr


# A binary whose work turns the SIGINT it receives into another error, as
# pybind11 does when the signal lands while TensorFlow's C++ raises one
# ("MISMATCH of original and normalized active exception types"), and then
# either lets that error out or words it as its own (common.fail).
_SWALLOWING_BINARY = '''"""slimhub-swallow: test binary."""
import os, signal, sys, time
from slimhub.exporters import common

def main(argv):
  try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
  except KeyboardInterrupt as interrupted:
    error = RuntimeError(f"REPLACED BY {type(interrupted).__name__}")
  if sys.argv[1] == "fail":
    common.fail("slimhub-swallow", error)
  raise error

if __name__ == "__main__":
  common.run(main)
'''


@pytest.mark.parametrize("how", ["raise", "fail"])
def test_a_signal_turned_into_another_error_still_ends_with_one_line(
    tmp_path, how):
  script = tmp_path / "swallow.py"
  script.write_text(_SWALLOWING_BINARY)
  result = subprocess.run([sys.executable, str(script), how],
                          capture_output=True, text=True, check=False,
                          timeout=120)
  assert result.returncode == 130, result.stderr
  assert result.stderr == "slimhub-swallow: interrupted by SIGINT\n"
