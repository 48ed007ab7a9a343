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
  int8) and no strided slice.
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


def _rewrite(graph_def, builder):
  """Applies `builder` (node, input shape) -> build or None to every node of
  the frozen `graph_def`, in place; the number of nodes rewritten."""
  tf = _tf()
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(graph_def, name="")
  rewritten = 0
  for node in list(graph_def.node):
    inputs = graph.get_operation_by_name(node.name).inputs
    if not inputs or inputs[0].shape.rank != 4:
      continue
    shape = inputs[0].shape.as_list()
    build = builder(node, shape)
    if build is not None:
      _splice(graph_def, node, shape, build)
      rewritten += 1
  return rewritten


def global_average_pools_as_means(graph_def):
  """Rewrites every global AvgPool of `graph_def` as the Mean it computes,
  in place; the number rewritten."""
  return _rewrite(graph_def, _global_average_pool)


def subsampling_max_pools_as_slices(graph_def):
  """Rewrites every 1x1 MaxPool of `graph_def` as the reshape, slice and
  reshape that pick the same values, in place; the number rewritten."""
  return _rewrite(graph_def, _subsampling_max_pool)


def for_xnnpack(graph_def):
  """Applies every rewrite to the frozen `graph_def`, in place; {rewrite:
  number of nodes rewritten} of those that rewrote any."""
  counts = {"global AvgPool -> Mean":
                global_average_pools_as_means(graph_def),
            "1x1 MaxPool -> reshape, slice, reshape":
                subsampling_max_pools_as_slices(graph_def)}
  return {name: count for name, count in counts.items() if count}
