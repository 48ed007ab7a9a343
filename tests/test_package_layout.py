"""The package's layers, as docs/architecture.md draws them: imports point
from the binaries down to the library, never back; the verifier reads
modules without the exporter; moved modules keep their old paths for one
release."""

import ast
import importlib
import os
import pathlib
import sys
import warnings

import pytest

import slimhub

PACKAGE = pathlib.Path(slimhub.__file__).parent
# Old path -> new path of the modules moved by the restructuring (#25).
MOVED = {
    "slimhub.module_fn": "slimhub.build.module_fn",
    "slimhub.checkpoints": "slimhub.build.checkpoints",
    "slimhub.preprocessing": "slimhub.build.preprocessing",
    "slimhub.provenance": "slimhub.build.provenance",
    "slimhub.image_size": "slimhub.formats.image_size",
    "slimhub.net_graph": "slimhub.reference.net_graph",
    "slimhub.deterministic": "slimhub.reference.deterministic",
    "slimhub.quant_calibration": "slimhub.reference.quant_calibration",
    "slimhub.tflite_runtime": "slimhub.tflite.runtime",
    "slimhub.tflite_calibration": "slimhub.tflite.calibration",
}


def _module_name(path):
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
  """Every slimhub module that `path` imports, at any depth of its code
  (lazy imports inside functions too), as dotted names."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      found.add(node.module)
      found.update(f"{node.module}.{alias.name}" for alias in node.names)
  return {name for name in found if name.split(".")[0] == "slimhub"}


def _library_modules():
  """(dotted name, imports) of every module outside slimhub.exporters."""
  return [(_module_name(path), _imports(path))
          for path in sorted(PACKAGE.rglob("*.py"))
          if "exporters" not in path.relative_to(PACKAGE).parts]


def _reaching(imports, prefix):
  return sorted(name for name in imports
                if name == prefix or name.startswith(prefix + "."))


def test_the_scan_sees_imports():
  """The scan itself finds lazy and from-imports (so that the tests below
  cannot pass by finding nothing)."""
  imports = _imports(PACKAGE / "exporters" / "export.py")
  assert "slimhub.exporters.common" in imports
  assert "slimhub.export" in imports  # imported inside main()
  assert "slimhub.build.checkpoints" in imports


def test_library_code_never_imports_the_binaries():
  offenders = {name: _reaching(imports, "slimhub.exporters")
               for name, imports in _library_modules()}
  assert not {k: v for k, v in offenders.items() if v}


def test_the_verifier_does_not_import_the_exporter():
  """slimhub-verify checks modules made by slimhub or not: it reads the
  formats, and never builds a module."""
  offenders = {}
  for name, imports in _library_modules():
    if name.startswith("slimhub.verify"):
      found = (_reaching(imports, "slimhub.export")
               + _reaching(imports, "slimhub.build.module_fn")
               + _reaching(imports, "slimhub.module_fn"))
      if found:
        offenders[name] = found
  assert not offenders


def test_formats_and_nets_know_no_pipelines():
  """The lowest layers: format writers know no nets, nets know no files;
  neither imports the pipelines above them."""
  above = ("slimhub.export", "slimhub.build", "slimhub.verify",
           "slimhub.regenerate", "slimhub.mirror", "slimhub.tflite")
  offenders = {}
  for name, imports in _library_modules():
    if name.startswith(("slimhub.formats", "slimhub.slim_nets")):
      found = [n for prefix in above for n in _reaching(imports, prefix)]
      if name.startswith("slimhub.formats"):
        found += _reaching(imports, "slimhub.slim_nets")
      if found:
        offenders[name] = found
  assert not offenders


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_paths_are_the_moved_modules(old, new):
  sys.modules.pop(old, None)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    module = importlib.import_module(old)
  assert module is importlib.import_module(new)
  assert any(issubclass(w.category, FutureWarning) and new in str(w.message)
             for w in caught)
  assert os.path.exists(PACKAGE.parent / (new.replace(".", "/") + ".py"))


def test_every_package_directory_has_an_init():
  """A directory of modules without __init__.py would import here as a
  namespace package but be left out of an installed wheel."""
  missing = sorted(str(d.relative_to(PACKAGE)) for d in PACKAGE.rglob("*")
                   if d.is_dir() and d.name != "__pycache__"
                   and any(d.glob("*.py")) and not (d / "__init__.py").exists())
  assert not missing
