"""Deterministic, untrained checkpoints and test images.

The scheme is the one of the reference data (tests/data/reference/README.md):
every variable's values depend only on its name, its shape and a seed, so a
checkpoint made here restores into any checkpoint-compatible build and
reproduces the reference outputs. The weights are random: they exercise the
pipeline end to end, they do not classify anything.

Every checkpoint written here holds UNTRAINED_MARKER, an int64 scalar with
the seed. It lives in the checkpoint's own index and data, so it travels
with every copy of the files (a sidecar file would be left behind by a copy
of the .index and .data files); the exporter reads it to say that a
module's weights are untrained, and restores no module variable from it.
"""

import math
import zlib

import numpy as np
import tensorflow as tf

from slimhub.build import provenance

GLOBAL_STEP_VALUE = 10**9
UNTRAINED_MARKER = provenance.UNTRAINED_MARKER


def variable_value(name, shape, seed):
  """The deterministic value of checkpoint variable `name` of `shape`."""
  rng = np.random.default_rng([zlib.crc32(name.encode("utf-8")), seed])
  shape = tuple(shape)
  kind = name.rsplit("/", 1)[-1]
  if kind == "global_step":
    return np.array(GLOBAL_STEP_VALUE, dtype=np.int64)
  if kind in ("gamma", "moving_variance"):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)
  if kind in ("beta", "moving_mean", "biases"):
    return rng.normal(0.0, 0.1, shape).astype(np.float32)
  if kind == "depthwise_weights":
    fan_in = shape[0] * shape[1]
  elif len(shape) == 1:
    fan_in = shape[0]
  else:
    fan_in = math.prod(shape[:-1])
  return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape).astype(np.float32)


def write_checkpoint(variables, seed, prefix):
  """Writes a V2 checkpoint at `prefix` for [(name, shape), ...]."""
  return write_values({name: variable_value(name, shape, seed)
                       for name, shape in variables}, seed, prefix)


def write_values(values, seed, prefix):
  """Writes {name: array} as a V2 checkpoint at `prefix`, marked as untrained
  values of `seed`."""
  values = {**values, UNTRAINED_MARKER: np.array(seed, dtype=np.int64)}
  names = sorted(values)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(values[name]) for name in names])
  return prefix


def untrained_seed(prefix):
  """The seed of the untrained checkpoint at `prefix`, or None when it has
  no UNTRAINED_MARKER."""
  reader = tf.train.load_checkpoint(prefix)
  if not reader.has_tensor(UNTRAINED_MARKER):
    return None
  return int(reader.get_tensor(UNTRAINED_MARKER))


def images(size, seed):
  """The two reference images, float32 [2, size, size, 3] in [0, 1]."""
  rng = np.random.default_rng([seed, 7])
  noise = rng.uniform(0, 1, (size, size, 3))
  phase = rng.uniform(0, 2 * np.pi, 3)
  y, x = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size),
                     indexing="ij")
  waves = np.stack([0.5 + 0.5 * np.sin(6 * x + 4 * y + phase[c])
                    for c in range(3)], axis=-1)
  return np.stack([noise, waves]).astype(np.float32)
