"""Access to the reference data in tests/data/reference (copied from the
shared reference set so the tests run from a fresh clone)."""

import functools
import json
import pathlib

import numpy as np

REFERENCE_DIR = pathlib.Path(__file__).parent / "data" / "reference"
SEED = 1


def stems():
  """Catalogue stems that have reference data, sorted."""
  return sorted(path.stem for path in REFERENCE_DIR.glob("*.json"))


@functools.lru_cache(maxsize=None)
def load(stem):
  """(metadata dict, {"images", "logits", "feature_vector"}) of `stem`."""
  meta = json.loads((REFERENCE_DIR / f"{stem}.json").read_text())
  with np.load(REFERENCE_DIR / f"{stem}.npz") as arrays:
    return meta, {key: arrays[key] for key in arrays.files}


def is_module_variable(name):
  """Whether a reference checkpoint variable belongs in a hub module.

  Not aux heads, nor any global step: research/slim's nasnet_large and
  pnasnet_large create theirs inside the first drop path
  (cell_stem_0/comb_iter_0/left/global_step).
  """
  parts = name.split("/")
  return parts[-1] != "global_step" and not any(
      part == "AuxLogits" or part.startswith("aux_") for part in parts)


def module_variables(stem):
  """{name: shape} of `stem`'s checkpoint minus aux heads and global_step."""
  meta, _ = load(stem)
  return {name: list(shape) for name, shape in meta["checkpoint_variables"]
          if is_module_variable(name)}


def relative_error(actual, expected):
  """Relative L2 error, the reference comparison metric."""
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))
