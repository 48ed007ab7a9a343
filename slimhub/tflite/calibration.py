"""The images int8 TFLite models are calibrated and checked on.

    calibration = Calibration(directory="photos", count=100)
    images, held_out, source = calibration.images(224, 224)

Images from a directory are its JPEG and PNG files in name order, decoded
to RGB and resized (bilinear, antialiased) to the module's expected size,
in [0, 1] as every image module expects them: the first `count` calibrate,
up to `count` more are held out to measure the model against its module.
Synthetic images (deterministic noise and waves, slimhub.reference.deterministic) only
exercise the pipeline: ranges calibrated on them say nothing of the model's
accuracy on photos. Held-out images are synthetic too when the directory has
no images left over.
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from slimhub.reference import deterministic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HELD_OUT_SYNTHETIC = 8
SYNTHETIC_WARNING = ("calibrating on synthetic images: the model's accuracy "
                     "on real images is not meaningful")
_CALIBRATION_SEED = 100
_HELD_OUT_SEED = 200


class CalibrationError(ValueError):
  """Calibration images that cannot be used; the message names the file."""


def synthetic_images(height, width, count, seed):
  """`count` deterministic images [count, height, width, 3] in [0, 1]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = np.concatenate([deterministic.images(max(height, width), seed + i)
                           for i in range((count + 1) // 2)])[:count]
  if images.shape[1:3] != (height, width):
    images = tf.image.resize(images, (height, width)).numpy()
  return images.astype(np.float32)


def _image_files(directory):
  try:
    names = sorted(os.listdir(directory))
  except OSError as error:
    raise CalibrationError(
        f"Cannot read the calibration directory {directory}: "
        f"{error.strerror or error}") from None
  return [os.path.join(directory, name) for name in names
          if name.lower().endswith(IMAGE_SUFFIXES)
          and os.path.isfile(os.path.join(directory, name))]


def load_image(path, height, width):
  """The image file at `path` as float32 [height, width, 3] in [0, 1]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    with open(path, "rb") as f:
      data = f.read()
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
  except OSError as error:
    raise CalibrationError(f"Cannot read calibration image {path}: "
                           f"{error.strerror or error}") from None
  except (tf.errors.OpError, ValueError):
    raise CalibrationError(
        f"Calibration image {path} does not decode as JPEG or PNG") from None
  image = tf.image.convert_image_dtype(image, tf.float32)
  image = tf.image.resize(image, (height, width), antialias=True)
  return np.clip(image.numpy(), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Calibration:
  """Where calibration images come from: `directory`, or `synthetic`."""
  directory: Optional[str] = None
  synthetic: bool = False
  count: int = 100

  def __post_init__(self):
    if bool(self.directory) == bool(self.synthetic):
      raise CalibrationError("Calibration takes either a directory of "
                             "images or synthetic=True, not "
                             + ("both" if self.directory else "neither"))
    if self.count < 1:
      raise CalibrationError(f"Calibration count must be at least 1, not "
                             f"{self.count}")

  def describe(self):
    return "synthetic" if self.synthetic else os.path.abspath(self.directory)

  def files(self):
    """The image files to read ([] when synthetic); CalibrationError for a
    directory that cannot be read or holds too few. Cheap: a check to make
    before any conversion work."""
    if self.synthetic:
      return []
    paths = _image_files(self.directory)
    if not paths:
      raise CalibrationError(
          f"Calibration directory {self.directory} holds no JPEG or PNG "
          "file")
    if len(paths) < self.count:
      raise CalibrationError(
          f"Calibration directory {self.directory} holds {len(paths)} JPEG "
          f"or PNG file(s), fewer than the {self.count} asked for")
    return paths[:2 * self.count]

  def images(self, height, width):
    """(calibration images, held-out images, where the held-out ones come
    from: 'directory' or 'synthetic')."""
    if self.synthetic:
      return (synthetic_images(height, width, self.count, _CALIBRATION_SEED),
              held_out_images(height, width), "synthetic")
    loaded = np.stack([load_image(path, height, width)
                       for path in self.files()])
    if len(loaded) > self.count:
      return loaded[:self.count], loaded[self.count:], "directory"
    return loaded, held_out_images(height, width), "synthetic"


def held_out_images(height, width):
  """The deterministic held-out images every conversion is checked on."""
  return synthetic_images(height, width, HELD_OUT_SYNTHETIC, _HELD_OUT_SEED)
