"""The calibration flags of the binaries that make int8 TFLite models
(slimhub-tflite, slimhub-regenerate): defined for the binary's own module,
so that its --help lists them."""

from absl import app
from absl import flags


class CalibrationFlags:
  """--calibration_images, --calibration=synthetic, --calibration_count."""

  def __init__(self, module_name, int8_flag):
    """Defines the flags for `module_name`, whose flag `int8_flag` (e.g.
    "--type=int8") asks for int8 models."""
    self.int8_flag = int8_flag
    self.images = flags.DEFINE_string(
        "calibration_images", None, f"With {int8_flag}: a directory of "
        "JPEG/PNG images that calibrates the int8 models of float modules "
        "(at least --calibration_count; as many more are held out to "
        "measure the model).", module_name=module_name)
    self.synthetic = flags.DEFINE_enum(
        "calibration", None, ["synthetic"], f"With {int8_flag} and no "
        "--calibration_images: calibrate on deterministic synthetic images "
        "(tests and demos; the accuracy is not meaningful).",
        module_name=module_name)
    self.count = flags.DEFINE_integer(
        "calibration_count", 100, "Calibration images per int8 model.",
        lower_bound=1, module_name=module_name)

  def chosen(self, int8_asked):
    """(directory or None, synthetic) the flags choose; UsageError for both,
    or for either without int8."""
    images, synthetic = self.images.value, bool(self.synthetic.value)
    if images and synthetic:
      raise app.UsageError("Give --calibration_images or "
                           "--calibration=synthetic, not both")
    if (images or synthetic) and not int8_asked:
      raise app.UsageError(f"Calibration flags are for {self.int8_flag}")
    return images, synthetic
