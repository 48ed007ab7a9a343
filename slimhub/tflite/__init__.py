"""TFLite models of image modules: conversion (convert), the LiteRT runtime
and TFLite metadata (runtime), calibration images for int8 (calibration).

    from slimhub import tflite
    info = tflite.convert("out/fv5", "fv5.int8.tflite", model_type=tflite.INT8,
                          calibration=tflite.Calibration(synthetic=True))

This facade is the public surface: slimhub-tflite and slimhub-regenerate's
TFLite steps use it; runtime and calibration are imported by their paths.
"""

from slimhub.tflite.calibration import Calibration
from slimhub.tflite.calibration import CalibrationError
from slimhub.tflite.calibration import SYNTHETIC_WARNING
from slimhub.tflite.calibration import held_out_images
from slimhub.tflite.convert import CalibrationRequired
from slimhub.tflite.convert import DYNAMIC
from slimhub.tflite.convert import FLOAT
from slimhub.tflite.convert import FLOAT32
from slimhub.tflite.convert import IMAGE_INPUT_STATS
from slimhub.tflite.convert import INT8
from slimhub.tflite.convert import IO_TYPES
from slimhub.tflite.convert import LABELS_FILE
from slimhub.tflite.convert import LABELS_URL
from slimhub.tflite.convert import METADATA_SCHEMA
from slimhub.tflite.convert import TFLiteError
from slimhub.tflite.convert import TFLiteInfo
from slimhub.tflite.convert import TYPES
from slimhub.tflite.convert import UINT8
from slimhub.tflite.convert import convert
from slimhub.tflite.convert import deviation
from slimhub.tflite.convert import frozen_inference_graph
from slimhub.tflite.convert import global_average_pools_as_means
from slimhub.tflite.convert import quantize_input_images
from slimhub.tflite.convert import symmetric_weight_ranges
