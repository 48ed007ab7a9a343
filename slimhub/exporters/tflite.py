r"""slimhub-tflite: a TFLite model of an image module.

  slimhub-tflite --module_dir=out/mobilenet_v1_025_128/quantops/classification/3 \
      --output=mobilenet_v1_025_128_quant.tflite

A quantops module (TF1 Hub, fake-quantized) becomes an all-integer uint8
model whose input is the image as uint8 (q = 255 * x for x in [0, 1]); any
other module a float32 model of its inference graph. The file is written
atomically; nothing is written when the conversion fails.
"""

from absl import app
from absl import flags

from slimhub import tflite
from slimhub.exporters import common

_MODULE_DIR = flags.DEFINE_string("module_dir", None,
                                  "Module directory (TF1 Hub or TF2).")
_OUTPUT = flags.DEFINE_string("output", None, "The .tflite file to write.")

flags.mark_flags_as_required(["module_dir", "output"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_tensorflow()
  try:
    info = tflite.convert(_MODULE_DIR.value, _OUTPUT.value)
  except tflite.TFLiteError as error:
    common.fail("slimhub-tflite", error)
  height, width = info.image_size
  print(f"Wrote a {info.inference_type} TFLite model ({info.bytes:,} bytes, "
        f"input 1x{height}x{width}x3, {info.output_dim} outputs) to "
        f"{info.path}")


def run():
  common.run(main)


if __name__ == "__main__":
  run()
