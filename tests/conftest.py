"""Shared fixtures and the slow tier.

Tests marked ``@pytest.mark.slow`` run with ``--slow=all``; by default
(``--slow=sample``) only those marked ``slow(sample=True)`` run, which is what
CI does; ``--slow=skip`` leaves all of them out for a quick local loop.
"""

import pytest

import reference_data


def pytest_addoption(parser):
  parser.addoption(
      "--slow", choices=("skip", "sample", "all"), default="sample",
      help="slow tier: skip it, run its CI sample (default), or run all")


def pytest_collection_modifyitems(config, items):
  mode = config.getoption("--slow")
  for item in items:
    marker = item.get_closest_marker("slow")
    if marker is None or mode == "all":
      continue
    if mode == "sample" and marker.kwargs.get("sample"):
      continue
    item.add_marker(pytest.mark.skip(
        reason=f"slow tier (--slow={mode}); run with --slow=all"))


@pytest.fixture(scope="session")
def reference_checkpoint(tmp_path_factory):
  """Returns a function stem -> prefix of the stem's deterministic checkpoint.

  Written once per session from the reference variable list (aux heads and
  global_step included, like a real Slim checkpoint).
  """
  from slimhub.reference import deterministic  # pylint: disable=g-import-not-at-top
  cache = {}
  root = tmp_path_factory.mktemp("reference_checkpoints")

  def checkpoint(stem):
    if stem not in cache:
      meta, _ = reference_data.load(stem)
      cache[stem] = deterministic.write_checkpoint(
          meta["checkpoint_variables"], reference_data.SEED,
          str(root / stem / "model.ckpt"))
    return cache[stem]

  return checkpoint


def export_once(root, checkpoint):
  """Returns a function (stem, kind, version) -> directory of that module,
  exported under `root` on first use from checkpoint(stem)."""
  from slimhub import export  # pylint: disable=g-import-not-at-top
  cache = {}

  def module(stem, kind, version):
    key = (stem, kind, version)
    if key not in cache:
      target = root / stem / kind / str(version)
      export.export_module(stem, kind, version, checkpoint(stem),
                           str(target))
      cache[key] = str(target)
    return cache[key]

  return module


@pytest.fixture(scope="session")
def exported_module(tmp_path_factory, reference_checkpoint):
  """Returns a function (stem, kind, version) -> directory of that module,
  exported once per session from the stem's deterministic checkpoint."""
  return export_once(tmp_path_factory.mktemp("modules"), reference_checkpoint)


@pytest.fixture(scope="session")
def exported_reference_module(tmp_path_factory, reference_checkpoint):
  """As exported_module, but the TF1 modules are built with TF 1.x's
  reference variables (VariableV2, Assign, AssignSub), as Google's published
  TF1 Hub modules were."""
  from slimhub.formats import tf1_hub  # pylint: disable=g-import-not-at-top
  export = export_once(tmp_path_factory.mktemp("reference_variable_modules"),
                       reference_checkpoint)

  def module(stem, kind, version):
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(tf1_hub, "RESOURCE_VARIABLES", False)
      return export(stem, kind, version)

  return module
