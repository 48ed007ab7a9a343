"""Mapping module inputs in [0, 1] to the range a Slim checkpoint expects.

TensorFlow is imported where ops are built, so that a binary can offer
CHOICES and answer --help without it.
"""

INCEPTION = "inception"
VGG = "vgg"
CHOICES = (INCEPTION, VGG)
VGG_RGB_MEANS = (123.68, 116.78, 103.94)


def to_net_range(images, kind, input_quant_range=None):
  """Scales float32 RGB `images` in [0, 1] for a net of preprocessing `kind`.

  inception: x * 2 - 1, into [-1, 1]. vgg: x * 255 minus the ImageNet RGB
  means, as Slim's vgg preprocessing feeds resnet_v1 and vgg checkpoints.
  Builds ops in the current name scope (hub_input/Mul, hub_input/Sub).

  input_quant_range: (min, max) of quantops modules (inception only): x * 2
  is fake-quantized to 8 bits over [0, 2] (exact for 8-bit images) and the
  result over (min, max), so that the TFLite converter finds a range for
  every tensor and the scaling runs in uint8 too.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if kind == INCEPTION:
    scaled = tf.multiply(images, 2.0)
    if input_quant_range:
      scaled = _fake_quant_8bit(scaled, (0.0, 2.0), "scaled_quant")
    net_input = tf.subtract(scaled, 1.0)
    if input_quant_range:
      net_input = _fake_quant_8bit(net_input, input_quant_range,
                                   "input_quant")
    return net_input
  if input_quant_range:
    raise ValueError(f"Quantized inputs need {INCEPTION} preprocessing, "
                     f"not {kind!r}")
  if kind == VGG:
    return tf.subtract(tf.multiply(images, 255.0),
                       tf.constant(VGG_RGB_MEANS, tf.float32))
  raise ValueError(f"Unknown preprocessing {kind!r}; expected one of {CHOICES}")


def _fake_quant_8bit(x, value_range, name):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  low, high = value_range
  return tf.quantization.fake_quant_with_min_max_args(
      x, low, high, num_bits=8, name=name)
