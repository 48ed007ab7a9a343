"""hub.Module's colocation rules: the exporter refuses graphs that break
them (formats.tf1_hub), and slimhub-verify's tf1.colocation fails TF1 Hub
modules made elsewhere that break them."""

import shutil
import types

import pytest
import tensorflow as tf

from slimhub import catalog
from slimhub.formats import tf1_hub
from slimhub.verify import checks
from slimhub.verify import reading
from slimhub.verify import tf1_checks

STEM = "mobilenet_v1_025_128"
WEIGHTS = "MobilenetV1/Conv2d_0/weights"


def _graph(colocate_variable=False, colocate_input=False):
  """A tiny graph: an input, a resource variable, their product."""
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, [None, 2], name="images")
    if colocate_variable:
      with tf.compat.v1.colocate_with(images.op):
        weights = tf.compat.v1.get_variable("weights", [2, 1],
                                            use_resource=True)
    else:
      weights = tf.compat.v1.get_variable("weights", [2, 1], use_resource=True)
    if colocate_input:
      with tf.compat.v1.colocate_with(weights.op):
        images = tf.compat.v1.placeholder(tf.float32, [None, 2],
                                          name="colocated")
    tf.matmul(images, weights, name="default")
  return graph, images


def test_rules_find_nothing_in_a_plain_graph():
  graph, images = _graph()
  graph_def = graph.as_graph_def()
  assert tf1_hub.find_state_op_colocation_error(graph_def, ()) is None
  assert tf1_hub.find_signature_input_colocation_error(
      "default", {"images": images.name}, graph_def) is None


def test_a_variable_colocated_with_a_stateless_op_breaks_the_rule():
  graph, _ = _graph(colocate_variable=True)
  error = tf1_hub.find_state_op_colocation_error(graph.as_graph_def(),
                                                 {"train"})
  assert error.startswith("A state-holding node")
  assert ("in the graph for tags ['train'], state op weights (VarHandleOp) "
          "is colocated with non-state op images") in error


def test_a_colocated_signature_input_breaks_the_rule():
  graph, images = _graph(colocate_input=True)
  error = tf1_hub.find_signature_input_colocation_error(
      "default", {"images": images.name}, graph.as_graph_def())
  assert ("input 'images' of signature 'default' is colocated:0, colocated "
          "with weights") in error


def test_the_exporter_refuses_a_colocated_variable():
  def module_fn(**unused_kwargs):
    with tf.compat.v1.colocate_with(
        tf.compat.v1.placeholder(tf.float32, [None, 2], name="images").op):
      tf.compat.v1.get_variable("weights", [2, 1])
    return types.SimpleNamespace(signatures={}, attachments={})
  with pytest.raises(tf1_hub.ModuleGraphError, match="state op weights"):
    tf1_hub.build_meta_graph(module_fn, (), {})


def _colocate_weights_with_images(meta_graph):
  images = meta_graph.signature_def["default"].inputs["images"].name
  node = next(n for n in meta_graph.graph_def.node if n.name == WEIGHTS)
  node.attr["_class"].list.s.append(f"loc:@{images.split(':')[0]}".encode())


def _colocate_images_with_weights(meta_graph):
  images = meta_graph.signature_def["default"].inputs["images"].name
  node = next(n for n in meta_graph.graph_def.node
              if n.name == images.split(":")[0])
  node.attr["_class"].list.s.append(f"loc:@{WEIGHTS}".encode())


@pytest.mark.parametrize("mutate,fragment", [
    (_colocate_weights_with_images,
     f"state op {WEIGHTS} (VarHandleOp) is colocated with non-state op "),
    (_colocate_images_with_weights,
     "input 'images' of signature 'default' is "),
])
def test_a_module_breaking_a_rule_fails_tf1_colocation(
    mutate, fragment, exported_module, tmp_path):
  directory = tmp_path / "module"
  shutil.copytree(exported_module(STEM, catalog.FEATURE_VECTOR, 3), directory)
  saved_model = tf1_hub.read_saved_model(directory)
  for meta_graph in saved_model.meta_graphs:
    mutate(meta_graph)
  (directory / "saved_model.pb").write_bytes(saved_model.SerializeToString())
  context = types.SimpleNamespace(module=reading.read(directory))
  with pytest.raises(checks.Failed) as failed:
    tf1_checks.colocation.function(context)
  assert fragment in str(failed.value)
  assert "(in [] and [train])" in str(failed.value)


def test_slimhub_modules_keep_the_rules(exported_module):
  context = types.SimpleNamespace(module=reading.read(
      exported_module(STEM, catalog.CLASSIFICATION, 3)))
  assert tf1_checks.colocation.function(context).startswith("no variable")
