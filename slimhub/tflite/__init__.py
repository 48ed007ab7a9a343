"""TFLite models of image modules: conversion (conversion.py; rewrites.py keeps
the graph inside LiteRT's XNNPACK delegate), the LiteRT runtime and TFLite
metadata (runtime.py), calibration images for int8 (calibration.py).

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
from slimhub.tflite.conversion import CalibrationRequired
from slimhub.tflite.conversion import DYNAMIC
from slimhub.tflite.conversion import FLOAT
from slimhub.tflite.conversion import FLOAT32
from slimhub.tflite.conversion import IMAGE_INPUT_STATS
from slimhub.tflite.conversion import INT8
from slimhub.tflite.conversion import IO_TYPES
from slimhub.tflite.conversion import LABELS_FILE
from slimhub.tflite.conversion import LABELS_URL
from slimhub.tflite.conversion import METADATA_SCHEMA
from slimhub.tflite.conversion import TFLiteError
from slimhub.tflite.conversion import TFLiteInfo
from slimhub.tflite.conversion import TYPES
from slimhub.tflite.conversion import UINT8
from slimhub.tflite.conversion import convert
from slimhub.tflite.conversion import deviation
from slimhub.tflite.conversion import frozen_inference_graph
from slimhub.tflite.conversion import quantize_input_images
from slimhub.tflite.conversion import symmetric_weight_ranges
from slimhub.tflite.rewrites import global_average_pools_as_means
from slimhub.tflite.rewrites import hard_swishes_for_int8
from slimhub.tflite.rewrites import subsampling_max_pools_as_slices
