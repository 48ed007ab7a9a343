"""Checks of TF1 Hub modules: signatures.md §8 and tf1-hub-format.md.

Structural checks read the MetaGraphDefs; the fine-tunability checks import
a variant with ``import_meta_graph``, restore ``variables/variables`` and
run its UPDATE_OPS on a random batch.
"""

import functools

import numpy as np
import tensorflow as tf
from google.protobuf import message as protobuf_message

from slimhub import catalog
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub
from slimhub.verify import batch_norm
from slimhub.verify import contract
from slimhub.verify import expectations
from slimhub.verify import randomness
from slimhub.verify import reading
from slimhub.verify import runtime
from slimhub.verify.checks import Failed
from slimhub.verify.checks import Skipped
from slimhub.verify.checks import check
from slimhub.verify.checks import listing
from slimhub.verify.checks import require_none

TRAIN = ("train",)
FEATURES = "image_feature_vector"
CLASSES = "image_classification"
IMAGES = expectations.IMAGES
MOMENTUM = expectations.BATCH_NORM_MOMENTUM
BN_SUFFIX = expectations.BN_SUFFIX
# hub writes saved_model_assets on export only; it is legal on disk.
ON_DISK_COLLECTIONS = tf1_hub.SUPPORTED_COLLECTIONS | {"saved_model_assets"}


def _variants_text(labels):
  return " and ".join(labels)


def _per_variant(module, find):
  """find(variant)'s problems (it yields strings), each once with the
  variants it occurs in."""
  where = {}
  for variant in module.variants:
    for problem in find(variant):
      where.setdefault(problem, []).append(variant.label)
  return [f"{problem} (in {_variants_text(labels)})"
          for problem, labels in where.items()]


def _expected_signatures(kind, bn_hparams):
  """The signature names of signatures.md §3.1."""
  names = {"default", FEATURES}
  if kind == catalog.CLASSIFICATION:
    names.add(CLASSES)
  if bn_hparams:
    names |= {name + BN_SUFFIX for name in names - {"default"}}
  return names


@check("tf1.module_def")
def module_def(context):
  """tfhub_module.pb is ModuleDef(format=FORMAT_V3) with no required
  features."""
  try:
    proto = hub_protos.ModuleDef.FromString(context.module.module_def)
  except protobuf_message.DecodeError:
    raise Failed("tfhub_module.pb is not a tensorflow_hub.ModuleDef proto: "
                 f"{context.module.module_def[:16]!r}") from None
  if proto.format != hub_protos.FORMAT_V3:
    raise Failed(f"tfhub_module.pb has format {proto.format}; hub.Module "
                 f"reads only FORMAT_V3 ({hub_protos.FORMAT_V3})")
  if proto.required_features:
    raise Failed("tfhub_module.pb requires features "
                 f"{list(proto.required_features)}, which hub.Module refuses")
  return "ModuleDef format 3, no required features"


@check("tf1.tags")
def tags(context):
  """The graph variants are exactly [] (inference) and [train], once each;
  an inference-only (quantops) module has [] alone."""
  tag_sets = [variant.tags for variant in context.module.variants]
  labels = [variant.label for variant in context.module.variants]
  if context.expectation.inference_only:
    if tag_sets != [()]:
      raise Failed(f"tag sets {', '.join(labels)}; an inference-only module "
                   "has the [] variant alone")
    return "tag set [] alone (inference-only module)"
  problems = [f"tag set {label} appears {labels.count(label)} times"
              for label in sorted(set(labels)) if labels.count(label) > 1]
  if () not in tag_sets:
    problems.append("no [] variant, which hub.Module and hub.load use by "
                    "default")
  if TRAIN not in tag_sets:
    problems.append("no [train] variant, so the module cannot be fine-tuned")
  extra = sorted({label for tags_, label in zip(tag_sets, labels)
                  if tags_ not in ((), TRAIN)})
  if extra:
    problems.append(f"unexpected tag sets {', '.join(extra)}")
  require_none(problems)
  return "tag sets [] and [train]"


@check("tf1.method_names")
def method_names(context):
  """Every signature's method_name is empty, as hub writes them."""
  require_none(_per_variant(context.module, lambda variant: [
      f"signature {name} has method_name {signature.method_name!r}"
      for name, signature in sorted(variant.signatures.items())
      if signature.method_name]))
  return "all empty"


@check("tf1.signature_names")
def signature_names(context):
  """Each variant has the signatures of its kind and version (signatures.md
  §3.1)."""
  expectation = context.expectation
  names = set().union(*(v.signatures for v in context.module.variants))
  kind = expectation.kind
  if kind is None and CLASSES in names:
    kind = catalog.CLASSIFICATION
  expected = _expected_signatures(kind, expectation.bn_hparams)

  def find(variant):
    have = set(variant.signatures)
    problems = [f"missing signature {name}"
                for name in sorted(expected - have)]
    if expectation.catalogued:
      problems += [f"unexpected signature {name}"
                   for name in sorted(have - expected)]
    return problems

  require_none(_per_variant(context.module, find))
  return f"{', '.join(sorted(expected))} in every variant"


@check("tf1.signature_inputs")
def signature_inputs(context):
  """Inputs are images, float32 [None,h|None,w|None,3], plus a float32 scalar
  batch_norm_momentum in *_with_bn_hparams."""
  expectation = context.expectation

  def find(variant):
    for name, signature in sorted(variant.signatures.items()):
      expected = {IMAGES} | ({MOMENTUM} if name.endswith(BN_SUFFIX) else set())
      have = set(signature.inputs)
      for key in sorted(expected - have):
        found = ", ".join(repr(k) for k in sorted(have)) or "none"
        yield f"signature {name}: input {key!r} missing (found {found})"
      for key in sorted(have - expected):
        yield f"signature {name}: unexpected input {key!r}"
      if IMAGES in signature.inputs:
        problem = expectations.image_shape_problem(signature.inputs[IMAGES],
                                                   expectation)
        if problem:
          yield f"signature {name}: input 'images' {problem}"
      problem = contract.momentum_problem(signature.inputs.get(MOMENTUM))
      if problem:
        yield f"signature {name}: input '{MOMENTUM}' {problem}"

  require_none(_per_variant(context.module, find))
  shape = reading.shape_text(expectation.images_shape)
  return f"images float32 {shape} in every signature"


def _family(name, kind):
  """The named signature whose `default` output `name` must match."""
  if name.startswith(CLASSES) or (name == "default"
                                  and kind == catalog.CLASSIFICATION):
    return CLASSES
  return FEATURES


def _declared_dim(variant, name):
  signature = variant.signatures.get(name)
  tensor = signature.outputs.get("default") if signature else None
  if tensor is None or tensor.shape is None or len(tensor.shape) != 2:
    return None
  return tensor.shape[1]


def _expected_dim(context, variant, name):
  """(width of `name`'s default output, where that number comes from)."""
  expectation = context.expectation
  kind = expectation.kind or (catalog.CLASSIFICATION
                              if CLASSES in variant.signatures else None)
  family = _family(name, kind)
  return contract.expected_dim(expectation, family == CLASSES,
                               _declared_dim(variant, family),
                               f"as in {family}")


@check("tf1.default_output")
def default_output(context):
  """Output default is float32 [None, num_features] or [None, num_classes],
  as the kind and signature require."""
  def find(variant):
    for name, signature in sorted(variant.signatures.items()):
      tensor = signature.outputs.get("default")
      if tensor is None:
        yield f"signature {name} has no output 'default'"
        continue
      dim, source = _expected_dim(context, variant, name)
      shape = tensor.shape
      if (tensor.dtype != "float32" or shape is None or len(shape) != 2
          or shape[0] is not None or shape[1] is None
          or (dim is not None and shape[1] != dim)):
        want = f"[?,{dim if dim is not None else 'n'}]"
        yield (f"signature {name}: output 'default' is "
               f"{tensor.dtype} {reading.shape_text(shape)}, expected "
               f"float32 {want} ({source})")

  require_none(_per_variant(context.module, find))
  inference = context.module.variant() or context.module.variants[0]
  dims = {name: _declared_dim(inference, name)
          for name in sorted(inference.signatures)}
  return "default: " + ", ".join(f"{name} [?,{dim}]"
                                 for name, dim in dims.items())


@check("tf1.end_points")
def end_points(context):
  """Named signatures also return the net's end points, keyed "<Scope>/<end
  point>"; *_with_bn_hparams returns the end points of its plain signature."""
  expectation = context.expectation
  prefix = expectation.end_point_prefix

  def find(variant):
    for name, signature in sorted(variant.signatures.items()):
      if name == "default":
        continue
      keys = sorted(set(signature.outputs) - {"default"})
      if not keys and expectation.catalogued:
        yield f"signature {name} returns no end points"
      scopes = sorted({key.split("/")[0] for key in keys})
      problem = contract.end_points_problem(keys, prefix)
      if problem:
        yield f"signature {name}: {problem}"
      elif not prefix and len(scopes) > 1:
        yield f"signature {name}: end points under several scopes {scopes}"
      plain = variant.signatures.get(name[:-len(BN_SUFFIX)])
      if name.endswith(BN_SUFFIX) and plain:
        ours, theirs = (
            {k: v for k, v in outputs.items() if k != "default"}
            for outputs in (signature.outputs, plain.outputs))
        differ = sorted(key for key in set(ours) | set(theirs)
                        if ours.get(key) != theirs.get(key))
        if differ:
          yield (f"signature {name} returns other end points than "
                 f"{name[:-len(BN_SUFFIX)]}: {listing(differ, 3)}")

  require_none(_per_variant(context.module, find))
  inference = context.module.variant() or context.module.variants[0]
  counts = {name: len(signature.outputs) - 1
            for name, signature in sorted(inference.signatures.items())
            if name != "default"}
  if not any(counts.values()):
    return f"no end points ({contract.OPTIONAL})"
  return "end points: " + ", ".join(f"{name} {count}"
                                    for name, count in counts.items())


@check("tf1.image_module_info")
def image_module_info(context):
  """ImageModuleInfo is attached to every variant with the default image size
  (from version 3, and whenever the input size is variable)."""
  expectation = context.expectation
  variable = any(
      expectations.has_variable_size(expectations.image_input(v.signatures))
      for v in context.module.variants)
  required = expectation.image_module_info or variable
  sizes = {}

  def find(variant):
    try:
      size = hub_protos.image_size_of(variant.meta_graph)
    except protobuf_message.DecodeError:
      return ["the image_module_info attachment is not an ImageModuleInfo"]
    sizes[variant.label] = size
    if size is None:
      if required:
        why = ("the input size is variable" if variable else
               f"version {expectation.version} rules, {expectation.source}")
        return [f"no image_module_info attachment ({why})"]
      return []
    if expectation.image_size and size != tuple(expectation.image_size):
      return [f"ImageModuleInfo says {size[0]}x{size[1]}, expected "
              f"{expectation.image_size[0]}x{expectation.image_size[1]} "
              f"({expectation.source})"]
    return []

  require_none(_per_variant(context.module, find))
  present = {size for size in sizes.values() if size}
  if not present:
    return (f"none, as version {expectation.version} rules with a fixed "
            "input size allow")
  if len(sizes) != sum(1 for size in sizes.values() if size):
    raise Failed("ImageModuleInfo is attached to some variants only: "
                 f"{', '.join(label for label, s in sizes.items() if s)}")
  if len(present) > 1:
    raise Failed("the variants' ImageModuleInfo sizes differ: " + ", ".join(
        f"{label} {size[0]}x{size[1]}" for label, size in sizes.items()))
  height, width = present.pop()
  return f"default_image_size {height}x{width} in every variant"


@check("tf1.collections")
def collections(context):
  """Only collections hub.Module supports appear, and there is no global_step
  variable."""
  def find(variant):
    unsupported = sorted(set(variant.collections) - ON_DISK_COLLECTIONS)
    if unsupported:
      yield (f"unsupported collections {', '.join(unsupported)} (hub.Module "
             "refuses to load them)")
    steps = [name for name in variant.variables
             if runtime.leaf_name(name) == "global_step"]
    if steps:
      yield f"global_step variable {', '.join(steps)}"

  require_none(_per_variant(context.module, find))
  keys = sorted(set().union(*(v.collections for v in context.module.variants)))
  return f"collections {', '.join(keys)}"


@check("tf1.colocation")
def colocation(context):
  """hub.Module's colocation rules, which its export enforces: no
  state-holding node (variable) is colocated with a node that holds no
  state, and every signature input is the single output of an op without
  colocation constraints."""
  def find(variant):
    graph_def = variant.meta_graph.graph_def
    yield tf1_hub.find_state_op_colocation_error(graph_def)
    for name, signature in sorted(variant.signatures.items()):
      yield tf1_hub.find_signature_input_colocation_error(
          name, {key: tensor.name for key, tensor in signature.inputs.items()},
          graph_def)

  require_none(_per_variant(context.module, lambda v: filter(None, find(v))))
  return ("no variable colocated with a stateless op, no colocated "
          "signature input")


@check("tf1.variables")
def variables(context):
  """All variants have the same variables, and variables/variables holds each
  with its shape."""
  module = context.module
  first = module.variants[0]
  problems = []
  for variant in module.variants[1:]:
    if variant.variables != first.variables:
      differ = sorted(set(variant.variables).symmetric_difference(
          first.variables)) or sorted(
              name for name in first.variables
              if first.variables[name] != variant.variables[name])
      problems.append(f"{variant.label} and {first.label} have other "
                      f"variables: {listing(differ, 3)}")
  try:
    saved = dict(tf.train.list_variables(module.variables_prefix))
  except (tf.errors.OpError, ValueError) as error:
    raise Failed(f"variables/variables cannot be listed: "
                 f"{str(error).splitlines()[0]}") from None
  wanted = {name: tensor for variant in module.variants
            for name, tensor in variant.variables.items()}
  missing = sorted(set(wanted) - set(saved))
  if missing:
    problems.append(f"{len(missing)} variables missing from "
                    f"variables/variables: {listing(missing, 3)}")
  misshapen = sorted(
      f"{name}: graph {reading.shape_text(wanted[name].shape)}, saved "
      f"{reading.shape_text(tuple(saved[name]))}" for name in wanted
      if name in saved and wanted[name].shape != tuple(saved[name]))
  if misshapen:
    problems.append(f"{len(misshapen)} variables saved with another shape: "
                    f"{listing(misshapen, 2)}")
  require_none(problems)
  return (f"{len(wanted)} variables, the same in every variant, all in "
          "variables/variables")


@check("tf1.regularization_losses", needs=("variables.readable",),
       loads=True)
def regularization_losses(context):
  """REGULARIZATION_LOSSES are in every variant and each evaluates to a
  finite scalar > 0."""
  module = context.module
  if context.expectation.inference_only:
    raise Skipped("inference-only module: nothing to fine-tune")
  empty = [v.label for v in module.variants
           if not v.node_names("regularization_losses")]
  if len(empty) == len(module.variants):
    contract.require_if_catalogued(context.expectation,
                                   "no REGULARIZATION_LOSSES",
                                   contract.LOSES_WEIGHT_DECAY)
  if empty:
    raise Failed(f"no REGULARIZATION_LOSSES in {_variants_text(empty)}"
                 + contract.LOSES_WEIGHT_DECAY)
  variant = module.variant(*TRAIN) or module.variants[0]
  names = variant.node_names("regularization_losses")
  values = context.session(*variant.tags).run(names, {})
  require_none(contract.weight_decay_problems(values, names))
  total = float(np.sum(values))
  return f"{variant.label}: {len(names)} terms, sum {total:.4g}"


def _moving_means(variant):
  return sorted(filter(runtime.is_moving_mean, variant.variables))


@check("tf1.update_ops_present")
def update_ops_present(context):
  """The [train] variant has UPDATE_OPS and the [] variant none; an
  inference-only module has none at all."""
  module = context.module
  if context.expectation.inference_only:
    updating = [v.label for v in module.variants
                if v.node_names("update_ops")]
    if updating:
      raise Failed(f"UPDATE_OPS in {_variants_text(updating)}; an "
                   "inference-only module updates nothing")
    return "no UPDATE_OPS (inference-only module)"
  train = module.variant(*TRAIN)
  if train is None:
    raise Skipped("no [train] variant (see tf1.tags)")
  names = train.node_names("update_ops")
  moving = _moving_means(train)
  if not names:
    if not moving:
      raise Skipped("no batch norm (no moving_mean variables)")
    raise Failed(f"the [train] variant has no UPDATE_OPS, so fine-tuning "
                 f"never updates its {len(moving)} moving_mean variables "
                 "(hub#86)")
  nodes = {node.name for node in train.meta_graph.graph_def.node}
  dangling = [name for name in names if name.split(":")[0] not in nodes]
  if dangling:
    raise Failed(f"{len(dangling)} UPDATE_OPS name no op of the [train] "
                 f"graph: {listing(dangling, 3)}")
  inference = module.variant()
  if inference is not None and inference.node_names("update_ops"):
    raise Failed(f"the [] variant has "
                 f"{len(inference.node_names('update_ops'))} UPDATE_OPS; "
                 "inference must not update statistics")
  return f"[train]: {len(names)} UPDATE_OPS; []: none"


def _feed(context, variant, momentum=None):
  images = expectations.image_input(variant.signatures)
  if images is None:
    raise Failed(f"no signature of {variant.label} has an images input")
  feed = {images.name: context.images()}
  if momentum is not None:
    tensor = next((signature.inputs[MOMENTUM]
                   for signature in variant.signatures.values()
                   if MOMENTUM in signature.inputs), None)
    if tensor is None:
      raise Failed(f"no signature of {variant.label} has a "
                   "batch_norm_momentum input")
    feed[tensor.name] = np.float32(momentum)
  return feed


def _update_changes(context, momentum=None):
  variant = context.module.variant(*TRAIN)
  session = context.session(*TRAIN)
  return context.memo(
      ("tf1.update_changes", momentum),
      lambda: session.update_changes(_feed(context, variant, momentum)))


@check("tf1.update_ops_move_statistics",
       needs=("variables.readable", "tf1.update_ops_present"), loads=True)
def update_ops_move_statistics(context):
  """Running the [train] variant's UPDATE_OPS once on a batch moves every
  moving_mean."""
  if context.module.variant(*TRAIN) is None:
    raise Skipped("no [train] variant")
  changes = _update_changes(context)
  if not changes:
    raise Skipped("no moving_mean variables")
  count = len(context.module.variant(*TRAIN).node_names("update_ops"))
  return batch_norm.require_all_moved(
      changes, f"one run of the {count} UPDATE_OPS of [train]")


@check("tf1.batch_norm_momentum",
       needs=("tf1.update_ops_move_statistics",), loads=True)
def batch_norm_momentum(context):
  """Feeding batch_norm_momentum 0.5 instead of 0.99 moves every moving_mean
  50x as far; the default is 0.99."""
  expectation = context.expectation
  if not expectation.bn_hparams:
    raise Skipped(f"version {expectation.version} rules: no "
                  "batch_norm_momentum input (it arrived in version 3)")
  return batch_norm.require_momentum_effect(
      functools.partial(_update_changes, context),
      context.session(*TRAIN).pinned)


@check("tf1.inference", needs=("variables.readable",), loads=True)
def inference(context):
  """The [] variant's signatures give finite outputs of the expected width on
  a batch (also at another size when variable), depend on no random op,
  ignore batch_norm_momentum and change no variable."""
  variant = context.module.variant()
  if variant is None:
    raise Skipped("no [] variant (see tf1.tags)")
  session = context.session()
  fetches = {name: signature.outputs["default"].name
             for name, signature in sorted(variant.signatures.items())
             if "default" in signature.outputs}
  feed = _feed(context, variant)
  images = expectations.image_input(variant.signatures)
  sizes = contract.image_sizes(context, [images])
  before = session.values(session.variables)
  problems = []
  for size in sizes:
    outputs = session.run(fetches, {images.name: context.images(size)})
    for name, value in outputs.items():
      dim, source = _expected_dim(context, variant, name)
      problem = contract.output_problem(value, dim)
      if problem:
        problems.append(f"signature {name} at {size[0]}x{size[1]}: output "
                        f"'default' {problem} ({source})")
  random = randomness.random_ops_behind(variant.meta_graph.graph_def,
                                         fetches.values())
  if random:
    problems.append(f"the [] outputs depend on {len(random)} random ops "
                    f"({listing(random, 3)}), so inference does not repeat")
  elif any(MOMENTUM in s.inputs for s in variant.signatures.values()):
    tuned = session.run(fetches, _feed(context, variant, batch_norm.FAST))
    plain = session.run(fetches, feed)
    affected = [name for name in fetches
                if not np.array_equal(tuned[name], plain[name])]
    if affected:
      problems.append(f"batch_norm_momentum changes the [] outputs of "
                      f"{listing(affected, 3)}")
  after = session.values(session.variables)
  changed = [name for name in before
             if not np.array_equal(before[name], after[name])]
  if changed:
    problems.append(f"running [] changed {len(changed)} variables: "
                    f"{listing(changed, 3)}")
  require_none(problems)
  shown = " and ".join(f"{h}x{w}" for h, w in sizes)
  return (f"{len(fetches)} signatures run at {shown}: finite outputs of the "
          "expected width, no random ops, no variable changes")


CHECKS = (module_def, tags, method_names, signature_names, signature_inputs,
          default_output, end_points, image_module_info, collections,
          colocation, variables, regularization_losses, update_ops_present,
          update_ops_move_statistics, batch_norm_momentum, inference)
