"""Reading Slim checkpoints and matching them to a module's variables.

A module restores every one of its variables from the checkpoint key of the
same name (or, for EMA checkpoints, from ``<name>/ExponentialMovingAverage``).
Keys the module does not need -- aux heads, ``global_step``, optimizer slots,
EMA shadows -- are ignored. A needed key that is missing or has another
shape is an error that names each such variable, raised before anything is
written.

TensorFlow is imported by the functions that read or write checkpoints, so
that a binary can offer USE_EMA_CHOICES and answer --help without it.
"""

import dataclasses
import os
import re

import numpy as np

from slimhub.build import provenance

EMA_SUFFIX = "/ExponentialMovingAverage"
USE_EMA_CHOICES = ("auto", "yes", "no")

# Checkpoint keys a module never needs, with the reason shown to the user
# (singular, plural).
_UNUSED_KEY_KINDS = (
    (re.compile(r"(^|/)(AuxLogits|aux_\d+)(/|$)"), ("aux head", "aux heads")),
    (re.compile(r"(^|/)global_step$"), ("global_step", "global_step keys")),
    (re.compile(r"/(Momentum|RMSProp(_1)?|Adam(_1)?|Adagrad|Ftrl(_1)?|"
                r"ExponentialMovingAverage(_1)?)$"),
     ("optimizer slot or EMA shadow", "optimizer slots or EMA shadows")),
    (re.compile(r"(^|/)(beta1_power|beta2_power)$"),
     ("optimizer slot or EMA shadow", "optimizer slots or EMA shadows")),
    (re.compile(r"_quant/.*/(min|max)/(biased|local_step)$"),
     ("quantization range EMA helper", "quantization range EMA helpers")),
    (re.compile(f"^{re.escape(provenance.UNTRAINED_MARKER)}$"),
     ("untrained-checkpoint marker", "untrained-checkpoint markers")),
)
_NOT_IN_MODULE = ("not in the module", "not in the module")
# Range bounds of quantization-aware training (tf.contrib.quantize).
_QUANT_RANGE = re.compile(r"/(weights_quant|act_quant)/(min|max)$")


# Files of a V2 checkpoint other than its .index; never a prefix themselves.
_V2_PART = re.compile(r"\.(meta|data-\d+-of-\d+)$")


class CheckpointError(ValueError):
  """A checkpoint that cannot be read or does not fit the module."""


def resolve_prefix(path):
  """The checkpoint prefix for `path`: a prefix, or a directory holding one.

  A directory resolves through its `checkpoint` state file, else to its only
  `*.index` file, else to its only `*.ckpt` file. A file without `.index`
  next to it is a V1 checkpoint (the single `*.ckpt` file of the 2016/2017
  Slim tarballs: inception, resnet, vgg). Raises CheckpointError naming what
  is wrong.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest:
      return latest
    indexes = sorted(name[:-len(".index")] for name in os.listdir(path)
                     if name.endswith(".index"))
    if len(indexes) == 1:
      return os.path.join(path, indexes[0])
    if not indexes:
      v1_files = [name for name in os.listdir(path) if name.endswith(".ckpt")
                  and os.path.isfile(os.path.join(path, name))]
      if len(v1_files) == 1:
        return os.path.join(path, v1_files[0])
      raise CheckpointError(f"No checkpoint (*.index file or single *.ckpt "
                            f"file) in directory {path}")
    raise CheckpointError(
        f"Directory {path} holds several checkpoints ({', '.join(indexes)}); "
        "pass the prefix of one, e.g. "
        f"{os.path.join(path, indexes[-1])}")
  if os.path.exists(path + ".index"):
    return path
  if path.endswith(".index") and os.path.exists(path):
    return path[:-len(".index")]
  if os.path.isfile(path) and not _V2_PART.search(path):
    return path
  if os.path.exists(path):
    raise CheckpointError(
        f"{path} is not a checkpoint prefix (expected {path}.index next to "
        "its data files)")
  raise CheckpointError(f"Checkpoint {path} does not exist (no {path}.index)")


def read_shapes(prefix):
  """{key: shape list} of every tensor in the checkpoint at `prefix`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    return {name: list(shape) for name, shape in tf.train.list_variables(prefix)}
  except (tf.errors.OpError, ValueError) as error:
    message = getattr(error, "message", str(error)).splitlines()[0]
    raise CheckpointError(
        f"Cannot read checkpoint {prefix}: {message}") from None


def unused_reason(key):
  """Why a module never needs checkpoint key `key` (singular and plural),
  or None if it might."""
  for pattern, reason in _UNUSED_KEY_KINDS:
    if pattern.search(key):
      return reason
  return None


def is_quant_range(key):
  """Whether `key` is a weights_quant / act_quant bound of a quant net."""
  return bool(_QUANT_RANGE.search(key))


@dataclasses.dataclass(frozen=True)
class RestorePlan:
  """Which checkpoint key restores which module variable.

  keys: {variable op name: checkpoint key}.
  ignored: checkpoint keys the module does not use.
  used_ema: whether any key is an EMA shadow.
  """
  prefix: str
  keys: dict
  ignored: tuple
  used_ema: bool

  def summary(self):
    """The one-line note printed for ignored keys."""
    if not self.ignored:
      return f"All {len(self.keys)} checkpoint variables used."
    reasons = {}
    for key in self.ignored:
      reasons.setdefault(unused_reason(key) or _NOT_IN_MODULE, []).append(key)
    parts = []
    for (singular, plural), keys in sorted(reasons.items()):
      part = f"{len(keys)} {singular if len(keys) == 1 else plural}"
      if (singular, plural) == _NOT_IN_MODULE:
        part += f" ({_short_list(keys)})"
      parts.append(part)
    detail = ", ".join(parts)
    ema = " (restored from EMA shadows)" if self.used_ema else ""
    return (f"Using {len(self.keys)} checkpoint variables{ema}; ignoring "
            f"{len(self.ignored)} not needed by the module: {detail}.")


def _short_list(keys, limit=5):
  shown = ", ".join(keys[:limit])
  return shown + (f" and {len(keys) - limit} more" if len(keys) > limit
                  else "")


def _root_scopes(names):
  counts = {}
  for name in names:
    if unused_reason(name) is None:
      root = name.split("/", 1)[0] + "/" if "/" in name else name
      counts[root] = counts.get(root, 0) + 1
  return counts


def _root_scopes_note(available, variable_shapes):
  """Names the scopes of both sides when a checkpoint is of another net."""
  def describe(counts):
    top = sorted(counts.items(), key=lambda item: -item[1])[:4]
    return ", ".join(f"{root} ({count})" for root, count in top) or "none"
  return (f"The module's variables are under "
          f"{describe(_root_scopes(variable_shapes))}; the checkpoint's under "
          f"{describe(_root_scopes(available))}: is it a checkpoint of another "
          "net?")


def _listing(items, limit=25):
  lines = [f"  {item}" for item in items[:limit]]
  if len(items) > limit:
    lines.append(f"  ... and {len(items) - limit} more")
  return lines


def plan_restore(variable_shapes, checkpoint, use_ema="auto"):
  """Matches {variable name: shape} to the checkpoint; a RestorePlan.

  use_ema: "auto" restores `<name>/ExponentialMovingAverage` where present,
  "yes" requires such shadows, "no" ignores them.
  Raises CheckpointError naming every missing or misshapen variable.
  """
  if use_ema not in USE_EMA_CHOICES:
    raise CheckpointError(
        f"use_ema must be one of {USE_EMA_CHOICES}, not {use_ema!r}")
  prefix = resolve_prefix(checkpoint)
  available = read_shapes(prefix)
  has_shadows = any(key.endswith(EMA_SUFFIX) for key in available)
  if use_ema == "yes" and not has_shadows:
    raise CheckpointError(
        f"use_ema='yes' but checkpoint {prefix} has no "
        f"'*{EMA_SUFFIX}' variables")
  keys, missing, misshapen = {}, [], []
  for name, shape in sorted(variable_shapes.items()):
    key = name
    if use_ema != "no" and name + EMA_SUFFIX in available:
      key = name + EMA_SUFFIX
    if key not in available:
      missing.append(name)
    elif available[key] != list(shape):
      misshapen.append(f"{key}: checkpoint {available[key]}, "
                       f"module {list(shape)}")
    else:
      keys[name] = key
  if missing or misshapen:
    lines = [f"Checkpoint {prefix} does not fit the module:"]
    if len(missing) > len(variable_shapes) // 2:
      lines.append(_root_scopes_note(available, variable_shapes))
    if missing:
      lines.append(f"{len(missing)} variable(s) missing from the checkpoint:")
      lines += _listing(missing)
    if misshapen:
      lines.append(f"{len(misshapen)} variable(s) with another shape:")
      lines += _listing(misshapen)
    raise CheckpointError("\n".join(lines))
  used = set(keys.values())
  ignored = tuple(sorted(key for key in available if key not in used))
  return RestorePlan(prefix=prefix, keys=keys, ignored=ignored,
                     used_ema=any(k.endswith(EMA_SUFFIX) for k in used))


def iter_tensors(plan, chunk_bytes=64 * 2**20):
  """Yields (variable name, eager tensor) for every variable in `plan`.

  Restores about `chunk_bytes` per read, so a caller that consumes the
  tensors as they come never holds the whole checkpoint twice.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(plan.prefix)
  dtypes = reader.get_variable_to_dtype_map()
  shapes = reader.get_variable_to_shape_map()
  chunk, size = [], 0
  names = sorted(plan.keys)
  for index, name in enumerate(names):
    key = plan.keys[name]
    chunk.append(name)
    size += dtypes[key].size * int(np.prod(shapes[key]))
    if size >= chunk_bytes or index == len(names) - 1:
      keys = [plan.keys[n] for n in chunk]
      tensors = tf.raw_ops.RestoreV2(
          prefix=plan.prefix, tensor_names=keys,
          shape_and_slices=[""] * len(keys),
          dtypes=[dtypes[key] for key in keys])
      yield from zip(chunk, tensors)
      chunk, size = [], 0


def load_tensors(plan):
  """{variable name: eager tensor} of every variable in `plan`."""
  return dict(iter_tensors(plan))


def write_renamed(plan, prefix):
  """Writes the planned variables as a V2 checkpoint keyed by variable name."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tensors = load_tensors(plan)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(tensors),
                    shape_and_slices=[""] * len(tensors),
                    tensors=list(tensors.values()))
