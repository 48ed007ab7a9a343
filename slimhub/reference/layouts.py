"""Modules and layouts as slimhub would export them, built without weights.

The building half of the golden layouts: ``tools/make_golden_layouts.py``
writes ``build_layout``'s result into slimhub/golden_layouts/ (read and
compared by slimhub.verify.golden), ``tools/module_op_types.py`` scans
``built_module``'s graphs, and the tests compare both with the stored
layouts. It uses the exporter; the verifier does not import this module.
"""

import contextlib
import tempfile

from slimhub import catalog
from slimhub import export
from slimhub.build import module_fn as module_fn_lib
from slimhub.formats import tf1_hub
from slimhub.formats import tf2_saved_model
from slimhub.verify import layout as layout_lib
from slimhub.verify import reading


@contextlib.contextmanager
def built_module(entry, kind, version):
  """The reading.Module of a module as slimhub would export it, built
  without weights: the TF1 meta graphs, or the TF2 object saved with its
  initial values into a temporary directory (removed on exit)."""
  spec = catalog.version_spec(entry, version)
  options = module_fn_lib.options_for(entry, kind, version)
  if spec.format == catalog.TF1_HUB:
    meta_graphs, _ = export.tf1_meta_graphs(options)
    saved_model = tf1_hub.saved_model_proto(meta_graphs)
    yield reading.Module(
        directory="", format=reading.TF1_HUB, saved_model=saved_model,
        module_def=None,
        variants=tuple(map(reading.graph_variant, meta_graphs)))
    return
  module, serving = export.tf2_module(options, spec, lambda variables: None)
  with tempfile.TemporaryDirectory() as directory:
    tf2_saved_model.save(module, directory, serving)
    yield reading.read(directory)


def build_layout(entry, kind, version):
  """The layout of a module as slimhub would export it (built_module)."""
  with built_module(entry, kind, version) as module:
    return layout_lib.of_module(module)
