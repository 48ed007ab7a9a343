r"""slimhub-tflite: a TFLite model of an image module.

  slimhub-tflite --module_dir=out/mobilenet_v1_025_128/classification/3 \
      --output=mobilenet.int8.tflite --type=int8 --calibration_images=photos
  slimhub-tflite --module_dir=out/mobilenet_v1_025_128/quantops/classification/3 \
      --output=mobilenet_v1_025_128_quant.tflite

--type: float (a float module's default), uint8 (a quantops module's
default: all-integer, input q = 255 * x for x in [0, 1]) or int8 (all-integer
signed, XNNPACK's fast kernels: full-integer post-training quantization of a
float module, calibrated on --calibration_images or, for demos only,
--calibration=synthetic; a quantops module keeps its trained ranges). The
model's metadata holds the input size and range, the labels and label offset
of a classification module, the module's handle and version, and the
model's deviation from the module, which is printed too. The file is written
atomically; nothing is written when the conversion fails. See docs/tflite.md.
"""

import sys

from absl import app
from absl import flags

from slimhub.exporters import calibration_flags
from slimhub.exporters import common

_MODULE_DIR = flags.DEFINE_string("module_dir", None,
                                  "Module directory (TF1 Hub or TF2).")
_OUTPUT = flags.DEFINE_string("output", None, "The .tflite file to write.")
_TYPE = flags.DEFINE_enum(
    "type", None, ["float", "uint8", "int8"], "Model type (default: uint8 "
    "for quantops modules, float otherwise).")
_IO_TYPE = flags.DEFINE_enum(
    "io_type", None, ["int8", "float32"], "With --type=int8: the input and "
    "output type (default int8; float32 adds a quantize and a dequantize).")
_BATCH = flags.DEFINE_string(
    "batch", "1", "Batch dimension: N, or 'dynamic' (resizable, "
    "shape_signature -1).")
_CALIBRATION = calibration_flags.CalibrationFlags(__name__, "--type=int8")
_LABELS = flags.DEFINE_string(
    "labels", None, "A labels file (e.g. ImageNetLabels.txt) to embed in a "
    "classification model's metadata.")

flags.mark_flags_as_required(["module_dir", "output"])

PROGRAM = "slimhub-tflite"
NEEDS_CALIBRATION = ("--type=int8 from a float module needs "
                     "--calibration_images=DIR or --calibration=synthetic")


def parse_batch(value):
  """--batch's value: a positive int or 'dynamic'; UsageError otherwise."""
  if value == "dynamic":
    return value
  try:
    batch = int(value)
  except ValueError:
    batch = 0
  if batch < 1:
    raise app.UsageError(f"--batch takes a positive integer or 'dynamic', "
                         f"not {value!r}")
  return batch


def format_deviation(deviation):
  """Lines of a model's deviation report."""
  return [f"  vs the module on {name.replace('_', '-')} images "
          f"({d['images']}): relative L2 {d['relative_l2']:.4f}, top-1 "
          f"agreement {d['top1_agreement']:.1%}, max logit error "
          f"{d['max_abs_error']:.4f}"
          for name, d in sorted(deviation.items())]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  batch = parse_batch(_BATCH.value)
  images, synthetic = _CALIBRATION.chosen(_TYPE.value == "int8")
  if _IO_TYPE.value and _TYPE.value != "int8":
    raise app.UsageError("--io_type is for --type=int8")
  common.quiet_tensorflow()
  from slimhub import tflite  # pylint: disable=g-import-not-at-top
  calibration = (tflite.Calibration(directory=images, synthetic=synthetic,
                                    count=_CALIBRATION.count.value)
                 if images or synthetic else None)
  try:
    info = tflite.convert(_MODULE_DIR.value, _OUTPUT.value,
                          model_type=_TYPE.value, io_type=_IO_TYPE.value,
                          batch=batch, calibration=calibration,
                          labels_path=_LABELS.value)
  except tflite.CalibrationRequired:
    common.fail(PROGRAM, NEEDS_CALIBRATION)
  except tflite.TFLiteError as error:
    common.fail(PROGRAM, error)
  for warning in info.warnings:
    print(f"{PROGRAM}: warning: {warning}", file=sys.stderr)
  height, width = info.image_size
  batch_text = "N" if batch == tflite.DYNAMIC else batch
  article = "an" if info.inference_type == "int8" else "a"
  print(f"Wrote {article} {info.inference_type} TFLite model ({info.bytes:,} bytes, "
        f"{info.io_type} input {batch_text}x{height}x{width}x3, "
        f"{info.output_dim} outputs) to {info.path}")
  print("\n".join(format_deviation(info.deviation)))


def run():
  common.run(main)


if __name__ == "__main__":
  run()
