"""The fake-quantization check of quantops (TF1, inference-only) modules.

What tf.contrib.quantize's eval graph has, and what the TFLite converter
needs to make every conv an integer kernel: each Conv2D / depthwise conv
reads 8-bit fake-quantized weights (narrow range) and fake-quantized
activations, and its output (after BiasAdd, and ReLU6 where there is one)
is fake-quantized over the full range; every weights_quant / act_quant
range variable is read by such an op; the scaled input image is quantized
over the range of the module's version.
"""

from slimhub.formats import tf1_hub
from slimhub.verify.checks import Failed
from slimhub.verify.checks import Skipped
from slimhub.verify.checks import check
from slimhub.verify.checks import require_none

FAKE_QUANT_VARS = "FakeQuantWithMinMaxVars"
FAKE_QUANT_ARGS = "FakeQuantWithMinMaxArgs"
CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
# Ops between a conv and the fake quantization of its output.
_OUTPUT_PATH_OPS = ("BiasAdd", "Add", "AddV2", "Relu6", "Identity")
_PASS_THROUGH = ("Identity",)
# Ops whose output keeps its input's quantization (toco and TFLite alike).
_SAME_SCALE = ("AvgPool", "MaxPool", "Reshape", "Squeeze")
_NUM_BITS = 8


class _Graph:
  """Producer / consumer lookups on a GraphDef."""

  def __init__(self, graph_def):
    self.nodes = {node.name: node for node in graph_def.node}
    self.consumers = {}
    for node in graph_def.node:
      for ref in node.input:
        if not ref.startswith("^"):
          self.consumers.setdefault(ref.split(":")[0], []).append(node)

  def producer(self, ref, through=_PASS_THROUGH):
    """The node behind input `ref`, looking through `through` ops."""
    node = self.nodes.get(ref.lstrip("^").split(":")[0])
    while node is not None and node.op in through and node.input:
      node = self.nodes.get(node.input[0].split(":")[0])
    return node

  def variable_of(self, ref):
    """Name of the variable a (ReadVariableOp) input reads, else the op."""
    node = self.producer(ref)
    if node is not None and node.op == "ReadVariableOp":
      node = self.producer(node.input[0])
    return node.name if node is not None else ref

  def output_quant(self, conv):
    """The FakeQuantWithMinMaxVars the conv's output reaches, or None."""
    frontier = [conv]
    while frontier:
      node = frontier.pop()
      for consumer in self.consumers.get(node.name, ()):
        if consumer.op == FAKE_QUANT_VARS:
          return consumer
        if consumer.op in _OUTPUT_PATH_OPS:
          frontier.append(consumer)
    return None


def _narrow(node):
  return node.attr["narrow_range"].b


def _bits(node):
  return node.attr["num_bits"].i or _NUM_BITS  # 8 is stripped as default


def _conv_problems(graph, conv, used_ranges):
  problems = []
  weights = graph.producer(conv.input[1])
  if weights is None or weights.op != FAKE_QUANT_VARS:
    problems.append(f"{conv.name} reads weights that are not fake-quantized")
  elif not _narrow(weights):
    problems.append(f"{conv.name}: its weights' fake quantization is not "
                    "narrow_range")
  else:
    used_ranges.add(graph.variable_of(weights.input[1]))
  data = graph.producer(conv.input[0], _PASS_THROUGH + _SAME_SCALE)
  if data is None or data.op not in tf1_hub.FAKE_QUANT_OPS:
    problems.append(f"{conv.name} reads activations that are not "
                    f"fake-quantized ({data.op if data else '?'})")
  output = graph.output_quant(conv)
  if output is None:
    problems.append(f"the output of {conv.name} is never fake-quantized")
  elif _narrow(output):
    problems.append(f"{output.name} quantizes activations narrow_range")
  else:
    used_ranges.add(graph.variable_of(output.input[1]))
  return problems


def _input_problem(graph, convs, expected_range):
  """What is wrong with the quantization of the net's input, or None."""
  if expected_range is None:
    return None
  inputs = {graph.producer(conv.input[0]).name: graph.producer(conv.input[0])
            for conv in convs
            if graph.producer(conv.input[0]).op == FAKE_QUANT_ARGS}
  if len(inputs) != 1:
    return (f"{len(inputs)} convs read a FakeQuantWithMinMaxArgs input; "
            "expected one, the first, reading the quantized image")
  (node,) = inputs.values()
  found = (node.attr["min"].f, node.attr["max"].f)
  if any(abs(f - e) > 1e-6 for f, e in zip(found, expected_range)):
    return (f"the input is quantized over [{found[0]:g}, {found[1]:g}], "
            f"expected [{expected_range[0]:g}, {expected_range[1]:g}]")
  return None


@check("tf1.fake_quant")
def fake_quant(context):
  """Every conv reads fake-quantized weights (8 bits, narrow) and inputs,
  its output is fake-quantized (full range), every range variable is used,
  and the input is quantized over the version's range."""
  expectation = context.expectation
  variant = context.module.variant() or context.module.variants[0]
  if not (expectation.inference_only
          or tf1_hub.has_fake_quant(variant.meta_graph)):
    raise Skipped("no fake quantization (a float module)")
  graph = _Graph(variant.meta_graph.graph_def)
  convs = [node for node in graph.nodes.values() if node.op in CONV_OPS]
  if not convs:
    raise Failed(f"{variant.label} has no convolutions")
  problems, used_ranges = [], set()
  for conv in sorted(convs, key=lambda node: node.name):
    problems += _conv_problems(graph, conv, used_ranges)
  problems += [f"{node.name} quantizes to {_bits(node)} bits, expected 8"
               for node in graph.nodes.values()
               if node.op in tf1_hub.FAKE_QUANT_OPS
               and _bits(node) != _NUM_BITS]
  ranges = sorted(name[:-len("/min")] for name in variant.variables
                  if name.endswith(("weights_quant/min", "act_quant/min")))
  problems += [f"range {name} is read by no fake quantization of a conv"
               for name in ranges if f"{name}/min" not in used_ranges]
  input_problem = _input_problem(graph, convs,
                                 expectation.input_quant_range)
  if input_problem:
    problems.append(input_problem)
  require_none(problems)
  quantized_input = ""
  if expectation.input_quant_range:
    low, high = expectation.input_quant_range
    quantized_input = f", input over [{low:g}, {high:g}]"
  return (f"{len(convs)} convs: fake-quantized weights (narrow), inputs and "
          f"outputs; {len(ranges)} ranges used{quantized_input}")


CHECKS = (fake_quant,)
