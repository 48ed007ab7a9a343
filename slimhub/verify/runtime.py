"""Running a module's graphs: TF1 variants in sessions, the TF2 object eagerly.

Both restore the module's own ``variables/variables`` and put the saved
values back after every step that changes them, so each fine-tuning check
starts from the module as shipped. Nothing but TF graphs is executed: TF1
MetaGraphDefs are imported with ``import_meta_graph``, SavedModels loaded
with ``tf.saved_model.load``.
"""

import contextlib

import numpy as np
import tensorflow as tf

from slimhub.verify import randomness

MOVING_MEAN = "moving_mean"
MOVING_STATISTICS = (MOVING_MEAN, "moving_variance")
FALLBACK_IMAGE_SIZE = (224, 224)


@contextlib.contextmanager
def unoptimized():
  """Runs graphs and functions as the module wrote them, without Grappler.

  Grappler's rewrites are TensorFlow's, not the module's, and on the small
  batches the checks run they cost more than they save: optimizing each new
  fetch set or function took about half of a verification.
  """
  key = "disable_meta_optimizer"
  previous = tf.config.optimizer.get_experimental_options().get(key, False)
  tf.config.optimizer.set_experimental_options({key: True})
  try:
    yield
  finally:
    tf.config.optimizer.set_experimental_options({key: previous})


def test_images(size, batch=2, seed=0):
  """A deterministic float32 batch in [0, 1] of `size` (height, width)."""
  rng = np.random.default_rng(seed)
  return rng.uniform(0.0, 1.0, (batch, *size, 3)).astype(np.float32)


def relative_error(actual, expected):
  """Relative L2 error (the reference data's comparison metric)."""
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  scale = np.linalg.norm(expected)
  return float(np.linalg.norm(actual - expected) / (scale or 1.0))


def leaf_name(name):
  """The last part of a variable or tensor name: "moving_mean" of
  "a/BatchNorm/moving_mean:0"."""
  return name.split(":")[0].rsplit("/", 1)[-1]


def is_moving_mean(name):
  return leaf_name(name) == MOVING_MEAN


def _changes(before, after):
  """{name: summed absolute change} between two {name: array} snapshots."""
  return {name: float(np.abs(after[name] - before[name]).sum())
          for name in before}


class VariantSession:
  """One TF1 graph variant in a graph of its own, variables restored; with
  `pin_random`, its random ops draw the same values in every run
  (randomness.py)."""

  def __init__(self, variant, variables_prefix, pin_random=False):
    self.variant = variant
    self.prefix = variables_prefix
    meta_graph, self.pinned = variant.meta_graph, 0
    if pin_random:
      meta_graph, self.pinned = randomness.pinned_meta_graph(meta_graph)
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.saver = tf.compat.v1.train.import_meta_graph(
          meta_graph, clear_devices=True)
      self.variables = {v.op.name: v
                        for v in tf.compat.v1.global_variables()}
    self.session = tf.compat.v1.Session(graph=self.graph)
    self.restore()

  def restore(self):
    if self.saver is not None:
      with self.graph.as_default():  # Saver.restore is eager outside it.
        self.saver.restore(self.session, self.prefix)

  def tensor(self, name):
    return self.graph.get_tensor_by_name(name)

  def run(self, fetches, feed):
    return self.session.run(fetches, {self.tensor(name): value
                                      for name, value in feed.items()})

  @property
  def moving_means(self):
    return sorted(name for name in self.variables if is_moving_mean(name))

  def values(self, names):
    return self.session.run({name: self.variables[name] for name in names})

  def update_changes(self, feed):
    """{moving_mean: summed |change|} after one run of UPDATE_OPS with
    `feed` ({tensor name: value}); the saved values are restored after."""
    before = self.values(self.moving_means)
    update_ops = self.graph.get_collection(
        tf.compat.v1.GraphKeys.UPDATE_OPS)
    try:
      self.run(update_ops, feed)
      return _changes(before, self.values(self.moving_means))
    finally:
      self.restore()

  def close(self):
    self.session.close()


class LoadedObject:
  """A TF2 SavedModel loaded with tf.saved_model.load, the random ops of its
  training calls pinned (randomness.py); `pinned` counts them."""

  def __init__(self, directory, saved_model):
    with randomness.training_pinned(directory, saved_model) as (
        path, self.pinned):
      self.object = tf.saved_model.load(path)
    self.variables = list(getattr(self.object, "variables", []))
    self.saved_values = [v.numpy() for v in self.variables]

  @property
  def moving_means(self):
    return sorted(v.name for v in self.variables if is_moving_mean(v.name))

  def snapshot(self, names=None):
    return {v.name: v.numpy() for v in self.variables
            if names is None or v.name in names}

  def reset(self):
    for variable, value in zip(self.variables, self.saved_values):
      variable.assign(value)

  def call(self, images, **kwargs):
    return self.object.__call__(tf.constant(images), **kwargs)

  def call_changes(self, images, names=None, **kwargs):
    """{variable name: summed |change|} of `names` (default: all) after one
    __call__; the saved values are put back after."""
    before = self.snapshot(names)
    try:
      self.call(images, **kwargs)
      return _changes(before, self.snapshot(names))
    finally:
      self.reset()
