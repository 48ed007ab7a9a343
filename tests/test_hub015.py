"""TF1 modules in the real TF1 consumer: hub.Module of tensorflow-hub 0.15 on
tensorflow-cpu 2.15.1, run in a separate virtualenv (tests/hub015_env.py)."""

import json
import os
import subprocess

import numpy as np
import pytest

import hub015_env
import reference_data
from slimhub import catalog

pytestmark = pytest.mark.hub015

TOLERANCE = 1e-4
PROBE = os.path.join(os.path.dirname(__file__), "hub015_probe.py")
MODULES = [pytest.param(stem, kind, version, id=f"{stem}-{kind}-{version}")
           for stem in ("inception_v2", "mobilenet_v1_050_160",
                        "mobilenet_v1_025_128")
           for kind in catalog.KINDS for version in (1, 3)]


@pytest.fixture(scope="session")
def hub015_python():
  return hub015_env.python()


def probe(python, module_dir, images, tmp_path, bn_hparams,
          inference_only=False):
  images_file = tmp_path / "images.npy"
  np.save(images_file, images)
  command = [python, PROBE, module_dir, str(images_file)]
  if bn_hparams:
    command.append("--bn_hparams")
  if inference_only:
    command.append("--inference_only")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
  result = subprocess.run(command, capture_output=True, text=True, env=env,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stem,kind,version", MODULES)
def test_hub_module_contract(stem, kind, version, exported_module,
                             hub015_python, tmp_path):
  _, golden = reference_data.load(stem)
  size = catalog.find(stem).image_size
  seen = probe(hub015_python, exported_module(stem, kind, version),
               golden["images"], tmp_path, bn_hparams=version >= 3)
  assert seen["tf_version"] == "2.15.1" and seen["hub_version"] == "0.15.0"
  assert seen["expected_image_size"] == [size, size]
  assert seen["tags"] == [[], ["train"]]
  expected = golden["logits" if kind == catalog.CLASSIFICATION
                    else "feature_vector"]
  assert reference_data.relative_error(
      seen["inference"]["default"], expected) < TOLERANCE
  # Default loading: nothing trains, nothing updates.
  assert seen["inference"]["num_update_ops"] == 0
  assert seen["inference"]["num_trainable"] == 0
  assert not any(seen["inference"]["moving_mean_change"].values())
  # tags={"train"} without trainable: batch statistics, no updates.
  assert seen["train_frozen"]["num_update_ops"] == 0
  # tags={"train"}, trainable=True: UPDATE_OPS move every moving_mean.
  train = seen["train"]
  changes = train["moving_mean_change"]
  assert train["num_update_ops"] == 2 * len(changes) > 0
  assert train["num_trainable"] > 0 and train["num_regularization_losses"] > 0
  assert all(change > 0 for change in changes.values())
  if version >= 3:
    slow = seen["train_momentum_0.99"]["moving_mean_change"]
    fast = seen["train_momentum_0.5"]["moving_mean_change"]
    for name in slow:
      assert fast[name] / slow[name] == pytest.approx(50.0, rel=1e-2), name
    # The default momentum is 0.99.
    for name in slow:
      assert changes[name] == pytest.approx(slow[name], rel=1e-4), name
    assert not any(
        seen["inference_momentum_0.5"]["moving_mean_change"].values())
