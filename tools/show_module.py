"""Loads exported modules the way consumers do and prints what they offer.

  python tools/show_module.py DIR [DIR ...]

TF1 Hub modules (v1-v3) through hub.load (tensorflow_hub 0.16) under both
tag sets; TF2 SavedModels (v4-v5) through hub.KerasLayer. Each is run on
the two deterministic test images.
"""

import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

import slimhub
from slimhub import deterministic


def _describe_tf1(path, images):
  for tags in (None, {"train"}):
    module = hub.load(path, tags=tags)
    print(f"  hub.load(tags={tags}):")
    for name, function in sorted(module.signatures.items()):
      inputs = {k: v.shape.as_list() for k, v in
                function.structured_input_signature[1].items()}
      print(f"    signature {name}: inputs {inputs}, "
            f"{len(function.structured_outputs)} outputs")
  outputs = hub.load(path).signatures["default"](images=tf.constant(images))
  return outputs["default"].numpy()


def _describe_tf2(path, images):
  layer = hub.KerasLayer(path)
  print(f"  hub.KerasLayer: {len(layer.trainable_weights)} trainable and "
        f"{len(layer.non_trainable_weights)} other weights")
  return layer(images).numpy()


def main(paths):
  for path in paths:
    size = slimhub.get_expected_image_size(path)
    images = deterministic.images(size[0], seed=1)
    is_tf1 = os.path.exists(os.path.join(path, "tfhub_module.pb"))
    print(f"{path} ({'TF1 Hub module' if is_tf1 else 'TF2 SavedModel'}), "
          f"expected image size {size}")
    output = (_describe_tf1 if is_tf1 else _describe_tf2)(path, images)
    print(f"  default output {list(output.shape)}, argmax per image "
          f"{np.argmax(output, axis=1).tolist()}, first values "
          f"{np.round(output[0, :4], 4).tolist()}")


if __name__ == "__main__":
  main(sys.argv[1:])
