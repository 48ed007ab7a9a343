"""Deterministic quantization-aware checkpoints for the quantops nets.

The float variables take the shared deterministic values
(slimhub.reference.deterministic); the ranges are then calibrated the way
quantization-aware training leaves them: each layer's folded weights span
``[min(w, 0), max(w, 0)]`` and each activation ``[0, observed max]`` on the
deterministic images (the logits ``[min(a, 0), max(a, 0)]``). Like a real
``*_quant.ckpt`` the checkpoint also holds ``global_step`` and the EMA
helpers of every activation range (``.../act_quant/<scope>/act_quant/
{min,max}/{biased,local_step}``), which an export ignores.
"""

import os

import numpy as np
import tensorflow as tf

from slimhub.build import checkpoints
from slimhub.reference import deterministic
from slimhub.reference import net_graph

FAKE_QUANT_OP = "FakeQuantWithMinMaxVars"
# Range bounds of activations before calibration: ReLU6's own range; any
# logit fits in the wide one.
_RELU6_RANGE = (0.0, 6.0)
_LOGITS_RANGE = (-1e4, 1e4)
_EMA_STEP = 10**6


def _variable_name(tensor):
  """Op name of the resource variable a ReadVariableOp output reads."""
  return tensor.op.inputs[0].op.name


def fake_quant_ops(graph):
  """[(FakeQuant op, min variable name, max variable name)] of `graph`."""
  return [(op, _variable_name(op.inputs[1]), _variable_name(op.inputs[2]))
          for op in graph.get_operations() if op.type == FAKE_QUANT_OP]


def _ema_helpers(name, value):
  """The EMA helper keys contrib.quantize trains next to range `name`."""
  scope = name.rsplit("/", 1)[0]  # .../act_quant
  prefix = f"{scope}/{name}"
  return [(f"{prefix}/biased", np.float32(value)),
          (f"{prefix}/local_step", np.float32(_EMA_STEP))]


def calibrated_values(net, image_size, seed):
  """{checkpoint key: value} of a calibrated quant checkpoint for `net`."""
  graph = net_graph.build(net, num_classes=net.num_classes,
                          image_size=image_size)
  shapes = graph.variable_shapes()
  values = {name: deterministic.variable_value(name, shape, seed)
            for name, shape in shapes.items()
            if not checkpoints.is_quant_range(name)}
  weights, activations = [], []
  for op, low, high in fake_quant_ops(graph.graph):
    if "/weights_quant/" in op.name:
      weights.append((op, low, high))
      bounds = (0.0, 1.0)  # Set below from the folded weights.
    else:
      activations.append((op, low, high))
      bounds = _LOGITS_RANGE if "/Logits/" in low else _RELU6_RANGE
    values[low], values[high] = (np.float32(b) for b in bounds)
  variables = graph.graph.get_collection(
      tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
  with tf.compat.v1.Session(graph=graph.graph) as session:
    for var in variables:
      var.load(values[var.op.name], session)
    folded = session.run([op.inputs[0] for op, _, _ in weights])
    for (op, low, high), value in zip(weights, folded):
      values[low] = np.float32(min(value.min(), 0.0))
      values[high] = np.float32(max(value.max(), 0.0))
    for var in variables:
      var.load(values[var.op.name], session)
    observed = session.run([op.inputs[0] for op, _, _ in activations],
                           {graph.images: deterministic.images(image_size,
                                                               seed)})
  for (op, low, high), value in zip(activations, observed):
    values[low] = np.float32(min(value.min(), 0.0))
    values[high] = np.float32(max(value.max(), 1e-3))
    for name in (low, high):
      values.update(_ema_helpers(name, values[name]))
  values["global_step"] = np.array(deterministic.GLOBAL_STEP_VALUE, np.int64)
  return values


def write_checkpoint(net, image_size, seed, prefix):
  """Writes the calibrated checkpoint of quant `net` at `prefix`."""
  values = calibrated_values(net, image_size, seed)
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  return deterministic.write_values(values, seed, prefix)
