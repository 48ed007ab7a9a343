"""Graph rewrites that keep a TFLite model inside LiteRT's XNNPACK delegate.

XNNPACK (LiteRT 2.3) declines a few ops that Slim's nets use. Each one it
declines runs on the builtin kernels between two delegate partitions
(docs/tflite.md). Each rewrite here replaces such a node of a frozen
GraphDef with ops that XNNPACK takes and that pick or compute the same
values, so the model's outputs do not change:

* a global ``AvgPool`` (VALID, window = its input) -> ``Mean`` over height
  and width: XNNPACK takes no int8 AVERAGE_POOL_2D, and does take int8 MEAN;
* a ``MaxPool`` with a 1x1 window (Slim's ``resnet_utils.subsample``, on
  resnet shortcuts) -> every s-th row and column, picked by a reshape, a
  unit-stride slice and a reshape: XNNPACK takes no 1x1 pooling (float or
  int8) and no strided slice;
* for int8 only, a hard swish ``x * relu6(x + 3) * (1/6)`` (Slim's
  mobilenet_v3) -> ``relu6(x + 3) * (x * (1/6))``: the converter fuses the
  first form into a HARD_SWISH, which XNNPACK takes in float but not in
  int8, where the builtin kernel costs about 30x XNNPACK's float one; the
  second form stays an ADD with a fused RELU6 and two MULs, which it takes.
"""

def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _nhwc(node):
  return node.attr["data_format"].s in (b"", b"NHWC")


def _global_average_pool(node, shape):
  """A builder of the Mean that `node` computes, if it is a global AvgPool."""
  if (node.op != "AvgPool" or node.attr["padding"].s != b"VALID"
      or not _nhwc(node) or None in shape[1:3]
      or list(node.attr["ksize"].list.i) != [1] + shape[1:3] + [1]):
    return None
  return lambda x: _tf().reduce_mean(x, [1, 2], keepdims=True)


def _subsampling_max_pool(node, shape):
  """A builder of the subsampling that `node` does, if it is a 1x1 MaxPool.

  With a 1x1 window, SAME and VALID padding alike give rows 0, s, 2s, ...
  (ceil(H / s) of them) and the same for columns. Padding the bottom and
  right to a multiple of s lets a reshape put each kept row and column at
  index 0 of a dimension of size s, where a unit-stride slice takes it.
  """
  if (node.op != "MaxPool" or list(node.attr["ksize"].list.i) != [1, 1, 1, 1]
      or not _nhwc(node) or None in shape[1:]):
    return None
  _, stride_h, stride_w, _ = node.attr["strides"].list.i
  _, height, width, channels = shape

  def build(x):
    tf = _tf()
    pad_h, pad_w = -height % stride_h, -width % stride_w
    if pad_h or pad_w:
      x = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
    rows, columns = (height + pad_h) // stride_h, (width + pad_w) // stride_w
    x = tf.reshape(x, [-1, rows, stride_h, columns, stride_w * channels])
    return tf.reshape(x[:, :, 0:1, :, 0:channels],
                      [-1, rows, columns, channels])
  return build


def _tensor(ref):
  """A node input as (node name, output index); None for a control input."""
  if ref.startswith("^"):
    return None
  name, _, port = ref.partition(":")
  return name, int(port or 0)


def _scalar(nodes, ref, value):
  """Whether `ref` is a float constant equal to `value` (through Identity)."""
  node = nodes.get(_tensor(ref)[0])
  while node is not None and node.op == "Identity":
    node = nodes.get(_tensor(node.input[0])[0])
  if node is None or node.op != "Const":
    return False
  array = _tf().make_ndarray(node.attr["value"].tensor)
  return array.size == 1 and abs(float(array.reshape(())) - value) < 1e-6


def _data_inputs(node):
  return [ref for ref in node.input if not ref.startswith("^")]


def _hard_swish(nodes, node):
  """(x, gate, sixth): the inputs of a hard swish x * relu6(x + 3) * (1/6)
  whose last Mul is `node` (gate = relu6(x + 3), sixth = the 1/6), or None."""
  data = _data_inputs(node)
  if node.op != "Mul" or len(data) != 2:
    return None
  for product_ref, sixth in (data, data[::-1]):
    product = nodes.get(_tensor(product_ref)[0])
    if (product is None or product.op != "Mul"
        or not _scalar(nodes, sixth, 1. / 6.)):
      continue
    pair = _data_inputs(product)
    for x, gate in (pair, pair[::-1]):
      relu6 = nodes.get(_tensor(gate)[0])
      if relu6 is None or relu6.op != "Relu6":
        continue
      shifted = nodes.get(_tensor(relu6.input[0])[0])
      if shifted is None or shifted.op not in ("Add", "AddV2"):
        continue
      terms = _data_inputs(shifted)
      for term, three in (terms, terms[::-1]):
        if _tensor(term) == _tensor(x) and _scalar(nodes, three, 3.):
          return x, gate, sixth
  return None


def hard_swishes_for_int8(graph_def):
  """Rewrites every hard swish x * relu6(x + 3) * (1/6) of `graph_def` as
  relu6(x + 3) * (x * (1/6)), in place; the number rewritten."""
  nodes = {node.name: node for node in graph_def.node}
  rewritten = 0
  for node in list(graph_def.node):
    match = _hard_swish(nodes, node)
    if match is None:
      continue
    x, gate, sixth = match
    scaled = graph_def.node.add()
    scaled.CopyFrom(node)
    scaled.name = f"{node.name}/xnnpack/x_sixth"
    del scaled.input[:]
    scaled.input.extend([x, sixth])
    controls = [ref for ref in node.input if ref.startswith("^")]
    del node.input[:]
    node.input.extend([gate, scaled.name] + controls)
    rewritten += 1
  return rewritten


def _splice(graph_def, node, shape, build):
  """Replaces `node` in place by the ops `build(x)` makes of a tensor x like
  the node's first input. The last of them takes the node's name and its
  control inputs, so the node's consumers read it unchanged."""
  tf = _tf()
  scratch = tf.Graph()
  with scratch.as_default():
    x = tf.compat.v1.placeholder(tf.dtypes.as_dtype(node.attr["T"].type),
                                 [None] + shape[1:], name="x")
    tf.identity(build(x), name="y")
  data_input = node.input[0]
  controls = [ref for ref in node.input if ref.startswith("^")]
  prefix = f"{node.name}/xnnpack"
  replacement = []
  for new in scratch.as_graph_def().node:
    if new.name == "x":
      continue
    new.name = node.name if new.name == "y" else f"{prefix}/{new.name}"
    for index, ref in enumerate(new.input):
      name, colon, port = ref.partition(":")
      new.input[index] = (data_input if name == "x" and port in ("", "0")
                          else f"{prefix}/{name}{colon}{port}")
    if new.name == node.name:
      new.input.extend(controls)
    replacement.append(new)
  graph_def.node.remove(node)
  graph_def.node.extend(replacement)


def _rewrite(graph_def, builders):
  """Applies `builders` ({name: (node, input shape) -> build or None}) to
  every node of the frozen `graph_def`, in place, reading its shapes from
  one import of it (a frozen graph holds all the weights); {name: number of
  nodes rewritten}."""
  tf = _tf()
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(graph_def, name="")
  counts = dict.fromkeys(builders, 0)
  for node in list(graph_def.node):
    inputs = graph.get_operation_by_name(node.name).inputs
    if not inputs or inputs[0].shape.rank != 4:
      continue
    shape = inputs[0].shape.as_list()
    for name, builder in builders.items():
      build = builder(node, shape)
      if build is not None:
        _splice(graph_def, node, shape, build)
        counts[name] += 1
        break
  return counts


GLOBAL_AVERAGE_POOL = "global AvgPool -> Mean"
SUBSAMPLING_MAX_POOL = "1x1 MaxPool -> reshape, slice, reshape"
HARD_SWISH = "hard swish -> relu6(x + 3) * (x / 6)"
_SHAPE_REWRITES = {GLOBAL_AVERAGE_POOL: _global_average_pool,
                   SUBSAMPLING_MAX_POOL: _subsampling_max_pool}
FOR_FLOAT = (GLOBAL_AVERAGE_POOL, SUBSAMPLING_MAX_POOL)
FOR_INT8 = FOR_FLOAT + (HARD_SWISH,)


def global_average_pools_as_means(graph_def):
  """Rewrites every global AvgPool of `graph_def` as the Mean it computes,
  in place; the number rewritten."""
  return _rewrite(graph_def, {GLOBAL_AVERAGE_POOL: _global_average_pool})[
      GLOBAL_AVERAGE_POOL]


def subsampling_max_pools_as_slices(graph_def):
  """Rewrites every 1x1 MaxPool of `graph_def` as the reshape, slice and
  reshape that pick the same values, in place; the number rewritten."""
  return _rewrite(graph_def, {SUBSAMPLING_MAX_POOL: _subsampling_max_pool})[
      SUBSAMPLING_MAX_POOL]


def for_xnnpack(graph_def, names):
  """Applies the rewrites `names` (e.g. FOR_INT8) to the frozen `graph_def`,
  in place; {name: number of nodes rewritten} of those that rewrote any."""
  counts = _rewrite(graph_def, {name: _SHAPE_REWRITES[name] for name in names
                                if name in _SHAPE_REWRITES})
  if HARD_SWISH in names:
    counts[HARD_SWISH] = hard_swishes_for_int8(graph_def)
  return {name: count for name, count in counts.items() if count}
