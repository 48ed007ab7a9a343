"""Checks of TF2 reusable SavedModels: tf2-reusable-savedmodel.md §4 and §9.

Structural checks read the object graph in saved_model.pb; the others load
the module with ``tf.saved_model.load`` and call its restored ``__call__``.
"""

import collections
import functools
import itertools

import numpy as np
import tensorflow as tf

from slimhub import catalog
from slimhub.verify import batch_norm
from slimhub.verify import contract
from slimhub.verify import expectations
from slimhub.verify import layout
from slimhub.verify import randomness
from slimhub.verify import reading
from slimhub.verify import runtime
from slimhub.verify.checks import Failed
from slimhub.verify.checks import Skipped
from slimhub.verify.checks import check
from slimhub.verify.checks import listing
from slimhub.verify.checks import require_none

SERVE = "serve"
SERVING_DEFAULT = "serving_default"
TRAINING = "training"
RETURN_ENDPOINTS = "return_endpoints"
MOMENTUM = expectations.BATCH_NORM_MOMENTUM
SLIM_FLAGS = (TRAINING, RETURN_ENDPOINTS)


def _flags(saved_object):
  """The parameters the traces bind to Python bools, in parameter order."""
  return [name for name in saved_object.parameters
          if any(isinstance(trace.arguments.get(name), bool)
                 for trace in saved_object.traces)]


def _label(trace, saved_object):
  return layout.trace_label(trace, saved_object.parameters)


@check("tf2.tags")
def tags(context):
  """The SavedModel has one MetaGraphDef, tagged serve."""
  tag_sets = context.module.saved_object.tag_sets
  if tag_sets != ((SERVE,),):
    shown = ", ".join("[" + ",".join(tags_) + "]" for tags_ in tag_sets)
    raise Failed(f"tag sets {shown}; expected exactly [serve]")
  return "tag set [serve]"


@check("tf2.attributes")
def attributes(context):
  """The root object has __call__, variables, trainable_variables and (in
  the Slim collection) regularization_losses."""
  saved_object = context.module.saved_object
  if "__call__" not in saved_object.attributes:
    raise Failed("the root object has no __call__, so it is no reusable "
                 "SavedModel (a TF1-style SavedModel?); attributes: "
                 f"{listing(saved_object.attributes) or 'none'}")
  required = ["variables", "trainable_variables"]
  if context.expectation.catalogued:
    required.append("regularization_losses")
  require_none([f"no attribute {name}" for name in required
                if name not in saved_object.attributes])
  return f"__call__({', '.join(saved_object.parameters)}), " + ", ".join(
      name for name in ("variables", "trainable_variables",
                        "regularization_losses")
      if name in saved_object.attributes)


@check("tf2.traces", needs=("tf2.attributes",))
def traces(context):
  """__call__ has one trace per combination of its Python bool arguments
  (exactly training x return_endpoints in the Slim collection) and takes
  tensors for all others."""
  saved_object = context.module.saved_object
  if not saved_object.traces:
    raise Failed("__call__ has no traces")
  flags = _flags(saved_object)
  problems = []
  if context.expectation.catalogued and tuple(flags) != SLIM_FLAGS:
    problems.append(f"the traces bind {flags or 'no parameters'} to Python "
                    f"bools; the Slim collection traces {list(SLIM_FLAGS)}")
  if TRAINING not in saved_object.parameters:
    problems.append(f"__call__({', '.join(saved_object.parameters)}) has no "
                    "training parameter, so hub.KerasLayer cannot fine-tune "
                    "it (hub#745)")
  elif TRAINING not in flags:
    problems.append("no trace binds training to True and False")
  combinations = collections.Counter(
      tuple(trace.arguments.get(name) for name in flags)
      for trace in saved_object.traces)
  for values in itertools.product((False, True), repeat=len(flags)):
    if values not in combinations:
      shown = ", ".join(f"{n}={v}" for n, v in zip(flags, values))
      problems.append(f"no trace for {shown}")
  for trace in saved_object.traces:
    constants = [name for name, value in trace.arguments.items()
                 if name not in flags and not isinstance(value, reading.Tensor)]
    if constants:
      problems.append(f"trace ({_label(trace, saved_object)}) binds "
                      f"{', '.join(constants)} to a constant instead of a "
                      "tensor")
  expected_count = 2 ** len(flags)
  if len(saved_object.traces) != expected_count:
    problems.insert(0, f"{len(saved_object.traces)} traces of __call__, "
                    f"expected {expected_count}")
  require_none(problems)
  return f"{len(saved_object.traces)} traces: {' x '.join(flags)}"


@check("tf2.call_inputs", needs=("tf2.attributes",))
def call_inputs(context):
  """Every trace takes the images as float32 [None,h|None,w|None,3] and
  batch_norm_momentum as a float32 scalar tensor."""
  saved_object = context.module.saved_object
  expectation = context.expectation
  if not saved_object.parameters:
    raise Failed("__call__ has no parameters")
  images = saved_object.parameters[0]
  problems = []
  if expectation.bn_hparams and MOMENTUM not in saved_object.parameters:
    problems.append(f"__call__ has no {MOMENTUM} parameter (version "
                    f"{expectation.version} rules, {expectation.source})")
  for trace in saved_object.traces:
    label = _label(trace, saved_object)
    spec = trace.arguments.get(images)
    if not isinstance(spec, reading.Tensor):
      problems.append(f"trace ({label}): {images} is not a tensor")
    else:
      problem = expectations.image_shape_problem(spec, expectation)
      if problem:
        problems.append(f"trace ({label}): {images} {problem}")
    problem = contract.momentum_problem(trace.arguments.get(MOMENTUM))
    if problem:
      problems.append(f"trace ({label}): {MOMENTUM} {problem}")
  require_none(problems)
  spec = saved_object.traces[0].arguments.get(images)
  return f"{images} {spec.describe()}" + (
      f", {MOMENTUM} float32 []" if MOMENTUM in saved_object.parameters
      else "")


@check("tf2.variables", needs=("tf2.attributes",))
def variables(context):
  """trainable_variables is a non-empty subset of variables, and no moving
  statistic is trainable."""
  saved_object = context.module.saved_object
  problems = []
  outside = sorted(set(saved_object.trainable) - set(saved_object.variables))
  if outside:
    problems.append(f"{len(outside)} trainable variables are not in "
                    f"variables: {listing(outside, 3)}")
  if not saved_object.trainable:
    problems.append("trainable_variables is empty, so fine-tuning changes "
                    "nothing (hub#269)")
  moving = sorted(name for name in saved_object.trainable
                  if runtime.leaf_name(name) in runtime.MOVING_STATISTICS)
  if moving:
    problems.append(f"{len(moving)} moving statistics are trainable: "
                    f"{listing(moving, 3)}")
  require_none(problems)
  return (f"{len(saved_object.variables)} variables, "
          f"{len(saved_object.trainable)} trainable, no moving statistic "
          "trainable")


@check("tf2.load", needs=("variables.readable",), loads=True)
def load(context):
  """tf.saved_model.load restores the module."""
  loaded = context.loaded()
  return f"loaded with {len(loaded.variables)} variables"


def _call_kwargs(context, training):
  """{"training": training}, or {} for a __call__ without that parameter
  (inference only; the training checks skip it)."""
  if TRAINING in context.module.saved_object.parameters:
    return {TRAINING: training}
  if training:
    raise Skipped("__call__ has no training parameter (see tf2.traces)")
  return {}


def _output_dim(context):
  """(expected width of the default output, where it comes from)."""
  expectation = context.expectation
  traced = [trace.output.shape[1]
            for trace in context.module.saved_object.traces
            if isinstance(trace.output, reading.Tensor)
            and trace.output.shape and len(trace.output.shape) == 2]
  return contract.expected_dim(
      expectation, expectation.kind == catalog.CLASSIFICATION,
      *((traced[0], "as traced") if traced else (None, "unknown")))


@check("tf2.default_output", needs=("tf2.load", "tf2.attributes"),
       loads=True)
def default_output(context):
  """Without return_endpoints, __call__ returns float32 [None, dim] and gives
  finite [batch, dim] values (also at another size when variable)."""
  saved_object = context.module.saved_object
  dim, source = _output_dim(context)
  problems = []
  for trace in saved_object.traces:
    if trace.arguments.get(RETURN_ENDPOINTS):
      continue
    output = trace.output
    if not (isinstance(output, reading.Tensor) and output.dtype == "float32"
            and output.shape is not None and len(output.shape) == 2
            and output.shape[0] is None and output.shape[1] == dim):
      shown = output.describe() if isinstance(output, reading.Tensor) else (
          type(output).__name__)
      problems.append(f"trace ({_label(trace, saved_object)}) returns "
                      f"{shown}, expected float32 [?,{dim}] ({source})")
  sizes = contract.image_sizes(context, saved_object.image_specs)
  loaded = context.loaded()
  for size in sizes:
    value = loaded.call(context.images(size),
                        **_call_kwargs(context, False)).numpy()
    problem = contract.output_problem(value, dim)
    if problem:
      problems.append(f"at {size[0]}x{size[1]} the output of __call__ "
                      f"{problem} ({source})")
  require_none(problems)
  shown = " and ".join(f"{h}x{w}" for h, w in sizes)
  return f"float32 [?,{dim}] ({source}); finite at {shown}"


@check("tf2.end_points", needs=("tf2.attributes",))
def end_points(context):
  """With return_endpoints=True, __call__ returns default plus the end points
  keyed "<Scope>/<end point>", the same in training and inference."""
  saved_object = context.module.saved_object
  if RETURN_ENDPOINTS not in saved_object.parameters:
    contract.require_if_catalogued(
        context.expectation, f"__call__ has no {RETURN_ENDPOINTS} parameter")
  prefix = context.expectation.end_point_prefix
  outputs = {_label(trace, saved_object): trace.output
             for trace in saved_object.traces
             if trace.arguments.get(RETURN_ENDPOINTS) is True}
  problems = []
  for label, output in outputs.items():
    if not isinstance(output, dict) or "default" not in output:
      problems.append(f"trace ({label}) returns no dict with a default key")
      continue
    problem = contract.end_points_problem(output, prefix)
    if problem:
      problems.append(f"trace ({label}): {problem}")
  keys = {label: sorted(output) for label, output in outputs.items()
          if isinstance(output, dict)}
  if len({tuple(value) for value in keys.values()}) > 1:
    problems.append("the traces return different end points: " + "; ".join(
        f"{label}: {len(value)} keys" for label, value in keys.items()))
  require_none(problems)
  count = len(next(iter(keys.values()), [])) - 1
  return f"default and {count} end points in {len(outputs)} traces"


@check("tf2.regularization_losses", needs=("tf2.load",), loads=True)
def regularization_losses(context):
  """Each regularization_losses function returns a finite scalar > 0."""
  functions = list(getattr(context.loaded().object, "regularization_losses",
                           []))
  if not functions:
    contract.require_if_catalogued(context.expectation,
                                   "no regularization_losses",
                                   contract.LOSES_WEIGHT_DECAY)
  values = [np.asarray(function()) for function in functions]
  require_none(contract.weight_decay_problems(
      values, [f"#{index}" for index in range(len(values))]))
  return "values " + ", ".join(f"{float(value):.4g}" for value in values)


def _moving_means(context):
  means = context.loaded().moving_means
  if not means:
    raise Skipped("no moving_mean variables (no batch norm)")
  return means


def _momentum_kwargs(momentum):
  if momentum is None:
    return {}
  return {MOMENTUM: tf.constant(momentum, tf.float32)}


def _training_changes(context, momentum=None):
  names = _moving_means(context)
  return context.memo(
      ("tf2.training_changes", momentum),
      lambda: context.loaded().call_changes(
          context.images(), names, **_call_kwargs(context, True),
          **_momentum_kwargs(momentum)))


@check("tf2.training_false_keeps_statistics",
       needs=("tf2.load", "tf2.attributes"), loads=True)
def training_false_keeps_statistics(context):
  """__call__(training=False) leaves every variable bit-identical, whatever
  the batch_norm_momentum."""
  loaded = context.loaded()
  momenta = [None]
  if MOMENTUM in context.module.saved_object.parameters:
    momenta.append(batch_norm.FAST)
  changed = set()
  for momentum in momenta:
    changes = loaded.call_changes(context.images(), **_call_kwargs(
        context, False), **_momentum_kwargs(momentum))
    changed |= {name for name, change in changes.items() if change}
  if changed:
    raise Failed(f"__call__(training=False) changed {len(changed)} "
                 f"variables: {listing(sorted(changed), 3)}", sorted(changed))
  return f"all {len(loaded.variables)} variables unchanged"


@check("tf2.training_moves_statistics", needs=("tf2.load", "tf2.attributes"),
       loads=True)
def training_moves_statistics(context):
  """__call__(training=True) moves every moving_mean."""
  return batch_norm.require_all_moved(_training_changes(context),
                                      "one __call__(training=True)")


@check("tf2.batch_norm_momentum", needs=("tf2.training_moves_statistics",),
       loads=True)
def batch_norm_momentum(context):
  """batch_norm_momentum 0.5 instead of 0.99 moves every moving_mean 50x as
  far in training; the default is 0.99."""
  if MOMENTUM not in context.module.saved_object.parameters:
    if context.expectation.bn_hparams:
      raise Failed(f"__call__ has no {MOMENTUM} parameter")
    raise Skipped(f"__call__ has no {MOMENTUM} parameter")
  return batch_norm.require_momentum_effect(
      functools.partial(_training_changes, context),
      context.loaded().pinned)


@check("tf2.serving_default", needs=("tf2.load",), loads=True)
def serving_default(context):
  """Version 5 has serving_default in the serve tag set, taking the images
  and returning __call__(training=False); version 4 has none."""
  expectation = context.expectation
  signatures = context.module.saved_object.signatures.get(SERVE, {})
  if SERVING_DEFAULT not in signatures:
    if expectation.serving_default:
      found = listing(sorted(set(signatures) - {"__saved_model_init_op"}))
      raise Failed(f"no {SERVING_DEFAULT} signature in the serve tag set "
                   f"(version {expectation.version} rules, "
                   f"{expectation.source}); signatures: {found or 'none'}")
    return f"none, as version {expectation.version} rules require"
  if not expectation.serving_default and expectation.catalogued:
    raise Failed(f"version {expectation.version} has no {SERVING_DEFAULT} "
                 "(it arrived in version 5)")
  signature = signatures[SERVING_DEFAULT]
  problems = []
  if len(signature.inputs) != 1:
    problems.append(f"{SERVING_DEFAULT} takes {sorted(signature.inputs)}, "
                    "expected one images input")
  if len(signature.outputs) != 1:
    problems.append(f"{SERVING_DEFAULT} returns {sorted(signature.outputs)}, "
                    "expected one output")
  require_none(problems)
  (key, images), = signature.inputs.items()
  problem = expectations.image_shape_problem(images, expectation)
  if problem:
    raise Failed(f"{SERVING_DEFAULT} input {key!r} {problem}")
  loaded = context.loaded()
  random = randomness.inference_random_ops(context.module.saved_model)
  if random:
    raise Failed(f"__call__(training=False) runs {len(random)} random ops "
                 f"({listing(random, 3)}), so inference does not repeat and "
                 f"{SERVING_DEFAULT} cannot be compared with it")
  batch = context.images()
  served, = loaded.object.signatures[SERVING_DEFAULT](
      **{key: tf.constant(batch)}).values()
  called = loaded.call(batch, **_call_kwargs(context, False))
  if not np.allclose(served.numpy(), called.numpy(), rtol=1e-6, atol=0):
    raise Failed(f"{SERVING_DEFAULT} differs from __call__(training=False): "
                 f"max |difference| "
                 f"{np.abs(served.numpy() - called.numpy()).max():.3g}")
  (output_key, output), = signature.outputs.items()
  return (f"{key} {reading.shape_text(images.shape)} -> {output_key} "
          f"{reading.shape_text(output.shape)}, equal to "
          "__call__(training=False)")


CHECKS = (tags, attributes, traces, call_inputs, variables, load,
          default_output, end_points, regularization_losses,
          training_false_keeps_statistics, training_moves_statistics,
          batch_norm_momentum, serving_default)
