"""The registry of checkpoint-compatible Slim network definitions.

Every architecture family lives in one module of this package and lists its
nets in a module-level ``NETS`` tuple of ``SlimNet``; modules of the package
that define ``NETS`` are discovered on first use. A builder is a plain
function::

    build(images, *, num_classes, is_training, batch_norm_decay) -> NetOutput

``images`` is already in the net's own input range (see ``preprocessing``);
``num_classes=0`` builds the feature-vector net (no logits variables);
``batch_norm_decay`` may be a Python float or a scalar float32 tensor (the
v3+ ``batch_norm_momentum`` hook). The builder opens the net's root variable
scope itself, so variable names equal the Slim checkpoint names.
"""

import dataclasses
import difflib
import importlib
import pkgutil
from typing import Any, Callable, Mapping, Optional

import tensorflow as tf

@dataclasses.dataclass(frozen=True)
class NetOutput:
  """What a builder returns.

  features: [batch, num_features] pooled pre-logits activations (no dropout).
  logits: [batch, num_classes], or None when built with num_classes=0.
  end_points: the net's end points, keyed by their Slim names (no prefix).
  """
  features: tf.Tensor
  logits: Optional[tf.Tensor]
  end_points: Mapping[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class SlimNet:
  """One Slim architecture at one width (e.g. mobilenet_v1 at depth 0.5).

  name: nets_factory-style id, e.g. "mobilenet_v1_050".
  family: file of this package that defines it, e.g. "mobilenet_v1".
  build: the builder (see module docstring).
  scope: the architecture prefix of end-point output keys ("MobilenetV1").
  num_features: width of the feature vector.
  default_image_size: the size the checkpoint was trained at.
  bn_decay: Slim's training BN decay (used by v1/v2 modules); None if the
    net has no batch norm.
  preprocessing: "inception" ([0,1] -> [-1,1]) or "vgg" (x*255 - RGB means).
  num_classes: logits width of the published checkpoint.
  logits_variable: checkpoint name of the logits weights; its last dimension
    is the class count of a given checkpoint.
  variable_size: whether the graph can take inputs of unknown height/width.
  inference_only: the net has no training graph (is_training must be False):
    quantized nets whose folded batch norm never updates.
  config: the family's hyperparameters that `build` was made from (e.g.
    nasnet's cells, filters and path-dropout keep probability), for the
    model cards' description of the net; None where a family has none.
  """
  name: str
  family: str
  build: Callable[..., NetOutput]
  scope: str
  num_features: int
  default_image_size: int
  bn_decay: Optional[float]
  preprocessing: str
  num_classes: int
  logits_variable: str
  variable_size: bool
  inference_only: bool = False
  config: Any = None


_REGISTRY: dict = {}


def _load():
  if not _REGISTRY:
    package = importlib.import_module("slimhub.slim_nets")
    for info in pkgutil.iter_modules(package.__path__):
      module = importlib.import_module(f"slimhub.slim_nets.{info.name}")
      for net in getattr(module, "NETS", ()):
        if net.name in _REGISTRY:
          raise ValueError(f"Slim net {net.name!r} is registered twice")
        _REGISTRY[net.name] = net
  return _REGISTRY


def names():
  """All registered Slim net names, sorted."""
  return sorted(_load())


def get(name):
  """The SlimNet called `name`; a KeyError lists close matches."""
  nets = _load()
  if name not in nets:
    close = difflib.get_close_matches(name, nets, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise KeyError(f"Unknown Slim net {name!r}.{hint}")
  return nets[name]
