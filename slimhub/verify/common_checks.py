"""Checks of every module, whatever its format: identity, variables, golden
layout and parity with the Slim checkpoint."""

import hashlib
import io
import json
import os

import numpy as np
import tensorflow as tf

from slimhub import catalog
from slimhub.build import checkpoints
from slimhub.reference import net_graph
from slimhub import slim_nets
from slimhub.formats import atomic
from slimhub.verify import golden
from slimhub.verify import layout
from slimhub.verify import reading
from slimhub.verify import runtime
from slimhub.verify.checks import Failed
from slimhub.verify.checks import Skipped
from slimhub.verify.checks import check
from slimhub.verify.checks import require_none

PARITY_TOLERANCE = 1e-4  # relative L2, as for the reference data


@check("module.identity")
def identity(context):
  """What the module should be is known and consistent: --expect, its metadata
  and its format agree."""
  require_none(context.identity_problems)
  return context.expectation.describe()


def _declares_variables(module):
  if module.format == reading.TF1_HUB:
    return any(variant.variables for variant in module.variants)
  return bool(module.saved_object.variables)


@check("variables.readable", loads=True)
def variables_readable(context):
  """Every tensor of variables/variables reads back, index and data."""
  module = context.module
  prefix = module.variables_prefix
  if not os.path.exists(prefix + ".index"):
    if not _declares_variables(module):
      raise Skipped("the module has no variables")
    raise Failed("no variables/variables.index")
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as error:
    raise Failed("variables/variables.index is unreadable: "
                 f"{str(error).strip().splitlines()[0]}") from None
  names = sorted(reader.get_variable_to_shape_map())
  unreadable, size = [], 0
  for name in names:
    try:
      size += np.asarray(reader.get_tensor(name)).nbytes
    # A checksum mismatch raises DataLossError, a short file IndexError.
    except (tf.errors.OpError, ValueError, IndexError) as error:
      message = getattr(error, "message", str(error)).strip().splitlines()[0]
      unreadable.append(f"{name}: {message}")
  if unreadable:
    raise Failed(f"{len(unreadable)} of {len(names)} tensors of "
                 f"variables/variables cannot be read "
                 f"({unreadable[0]})", unreadable)
  return f"{len(names)} tensors, {size / 2**20:.1f} MiB"


@check("golden_layout")
def golden_layout(context):
  """The layout equals the reviewed golden layout of the --expect module and
  version, or of the catalogue module the slimhub metadata names."""
  if context.expect is None:
    raise Skipped("no catalogue module named (by --expect or the slimhub "
                  "metadata), or --expect=none")
  entry, kind, version = context.expect
  path = golden.path_for(entry, kind, context.golden_root)
  shown = os.path.relpath(path, os.path.dirname(context.golden_root))
  layouts = golden.load(entry, kind, context.golden_root)
  if version not in layouts:
    raise Failed(f"no golden layout for {entry.handle(kind, version)} in "
                 f"{shown}; generate it with tools/make_golden_layouts.py")
  found = layout.differences(layouts[version],
                             layout.of_module(context.module))
  if found:
    raise Failed(f"{len(found)} differences from {shown} version {version} "
                 f"(golden -> module), e.g. {found[0].describe()}",
                 layout.summarize(found))
  return f"equal to {shown} version {version}"


def _module_default(context, images):
  """The module's default output on `images` (inference mode)."""
  module = context.module
  if module.format == reading.TF1_HUB:
    variant = module.variant() or module.variants[0]
    signature = variant.signatures["default"]
    (images_input,) = signature.inputs.values()
    return context.session(*variant.tags).run(
        signature.outputs["default"].name, {images_input.name: images})
  kwargs = ({"training": False}
            if "training" in module.saved_object.parameters else {})
  return context.loaded().call(images, **kwargs).numpy()


@check("checkpoint_parity", needs=("variables.readable",), loads=True)
def checkpoint_parity(context):
  """The module's default output equals the Slim net restored from --checkpoint
  (or the module's checkpoint in --checkpoint_dir), on the same images."""
  if context.checkpoint_problem:
    raise Failed(context.checkpoint_problem)
  if not context.checkpoint:
    raise Skipped("no --checkpoint")
  expectation = context.expectation
  if not expectation.net or not expectation.kind:
    raise Failed("--checkpoint needs the module's Slim net and kind: pass "
                 "--expect (the module has no slimhub metadata)")
  if expectation.net not in slim_nets.names():
    raise Failed(f"Slim net {expectation.net} is not implemented in this "
                 "slimhub")
  height, width = context.image_size
  classify = expectation.kind == catalog.CLASSIFICATION
  images = context.images()
  try:
    reference = _slim_outputs(context, images)
  except checkpoints.CheckpointError as error:
    lines = str(error).splitlines()
    raise Failed(lines[0], lines[1:]) from None
  expected = reference["logits" if classify else "features"]
  error = runtime.relative_error(_module_default(context, images), expected)
  what = "logits" if classify else "features"
  if not error <= PARITY_TOLERANCE:
    raise Failed(f"the default output differs from the Slim net's {what}: "
                 f"relative error {error:.3g} > {PARITY_TOLERANCE}")
  return (f"default output = Slim {what} from "
          f"{os.path.basename(context.checkpoint)} (relative error "
          f"{error:.1e} on {len(images)} images of {height}x{width})")


def _slim_outputs(context, images):
  """{"features", "logits"} of the Slim net restored from the checkpoint.

  Both kinds and every version of a net share them, so with a reference
  cache (a regeneration run) they are computed once per checkpoint, net,
  classes, size and scaling instead of once per module.
  """
  expectation = context.expectation
  net = slim_nets.get(expectation.net)
  height, width = context.image_size
  classify = expectation.kind == catalog.CLASSIFICATION
  graph_args = dict(
      num_classes=(expectation.num_classes if classify else None)
      or net.num_classes,
      image_size=height if height == width else None,
      preprocessing_kind=expectation.preprocessing,
      input_quant_range=expectation.input_quant_range)
  cached = None
  if context.reference_cache:
    key = json.dumps([os.path.realpath(context.checkpoint), net.name,
                      height, width, graph_args], default=list)
    cached = os.path.join(context.reference_cache,
                          hashlib.sha256(key.encode()).hexdigest() + ".npz")
    if os.path.exists(cached):
      with np.load(cached) as stored:
        return dict(stored)
  outputs = net_graph.run(net_graph.build(net, **graph_args),
                          context.checkpoint, images)
  if cached:
    # Written whole, then renamed: a concurrent module never reads half.
    data = io.BytesIO()
    np.savez(data, **outputs)
    atomic.write_file(cached, data.getvalue())
  return outputs


CHECKS = (identity, variables_readable)
FINAL_CHECKS = (golden_layout, checkpoint_parity)
