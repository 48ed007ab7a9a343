"""Mapping module inputs in [0, 1] to the range a Slim checkpoint expects."""

import tensorflow as tf

INCEPTION = "inception"
VGG = "vgg"
CHOICES = (INCEPTION, VGG)
VGG_RGB_MEANS = (123.68, 116.78, 103.94)


def to_net_range(images, kind):
  """Scales float32 RGB `images` in [0, 1] for a net of preprocessing `kind`.

  inception: x * 2 - 1, into [-1, 1]. vgg: x * 255 minus the ImageNet RGB
  means, as Slim's vgg preprocessing feeds resnet_v1 and vgg checkpoints.
  Builds ops in the current name scope (hub_input/Mul, hub_input/Sub).
  """
  if kind == INCEPTION:
    return tf.subtract(tf.multiply(images, 2.0), 1.0)
  if kind == VGG:
    return tf.subtract(tf.multiply(images, 255.0),
                       tf.constant(VGG_RGB_MEANS, tf.float32))
  raise ValueError(f"Unknown preprocessing {kind!r}; expected one of {CHOICES}")


def quantize_input(net_input, input_quant_range):
  """8-bit fake quantization of the scaled input over `input_quant_range`
  (min, max), as quantops modules have it; unchanged when None."""
  if not input_quant_range:
    return net_input
  low, high = input_quant_range
  return tf.quantization.fake_quant_with_min_max_args(
      net_input, low, high, num_bits=8, name="input_quant")
