"""The clauses of the image-module contract that both formats share.

Each clause is stated once here, over values the format's checks have
already fetched (tf1_checks reads signatures and runs graph variants,
tf2_checks reads traces and calls ``__call__``): a function returns the
problem as a message fragment, or None, and the caller adds where it was
found (a signature, a trace); or it raises the check's Failed / Skipped.
"""

import numpy as np

from slimhub.verify import expectations
from slimhub.verify import reading
from slimhub.verify.checks import Failed
from slimhub.verify.checks import Skipped
from slimhub.verify.checks import listing

OPTIONAL = "optional outside the Slim collection"
LOSES_WEIGHT_DECAY = ", so fine-tuning loses the Slim weight decay"


def momentum_problem(spec):
  """The batch_norm_momentum input is a float32 scalar tensor. None when
  `spec` is one, absent (None) or a Python value bound at tracing."""
  if not isinstance(spec, reading.Tensor) or (
      spec.dtype == "float32" and spec.shape == ()):
    return None
  return f"is {spec.describe()}, expected float32 []"


def end_points_problem(keys, prefix):
  """The end points (output keys other than "default") are keyed
  "<prefix>/<end point>", when the net's scope `prefix` is known."""
  outside = sorted(key for key in keys if key != "default" and prefix
                   and not key.startswith(prefix + "/"))
  if not outside:
    return None
  return f"end points outside {prefix}/: {listing(outside, 3)}"


def expected_dim(expectation, classes, declared, declared_source):
  """(width of a `default` output, where that number comes from): the
  expected module's num_classes (`classes`) or num_features, else the width
  the module declares (`declared`, found as `declared_source` says)."""
  dim = expectation.num_classes if classes else expectation.num_features
  if dim:
    name = "num_classes" if classes else "num_features"
    return dim, f"{name}, {expectation.source}"
  return declared, declared_source


def image_sizes(context, images_specs):
  """The sizes to run a module at: the expected one, and another one when
  any of `images_specs` (the image inputs) has a variable size."""
  sizes = [context.image_size]
  if any(map(expectations.has_variable_size, images_specs)):
    sizes.append(context.other_image_size)
  return sizes


def output_problem(value, dim):
  """A `default` output computed on a batch of 2 images is finite with
  shape [2, dim]."""
  finite = bool(np.all(np.isfinite(value)))
  if np.shape(value) == (2, dim) and finite:
    return None
  return (f"is {'finite' if finite else 'not finite'} with shape "
          f"{list(np.shape(value))}, expected [2,{dim}]")


def weight_decay_problems(values, names):
  """Every regularization loss (values, with their names) is a finite
  scalar > 0: fine-tuning keeps the Slim weight decay."""
  return [f"regularization loss {name} is "
          + (f"{float(value):.4g}" if value.shape == () else
             f"of shape {list(value.shape)}")
          + ", not a finite scalar > 0"
          for name, value in zip(names, map(np.asarray, values))
          if value.shape != () or not np.isfinite(value) or value <= 0]


def require_if_catalogued(expectation, missing, consequence=""):
  """A part the Slim collection's modules must have is `missing`: fails
  (saying the `consequence`) for a catalogued module, else skips."""
  if expectation.catalogued:
    raise Failed(missing + consequence)
  raise Skipped(f"{missing} ({OPTIONAL})")
