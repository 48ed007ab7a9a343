"""Loads exported modules the way consumers do and prints what they offer.

  python tools/show_module.py DIR [DIR ...]

TF1 Hub modules (v1-v3) through hub.load (tensorflow_hub 0.16) under both
tag sets; TF2 SavedModels (v4-v5) through hub.KerasLayer. Each is run on
the two deterministic test images; with several modules, their outputs are
compared with the first one's.
"""

import os
import sys

from slimhub import quiet

quiet.import_tensorflow_quietly()  # before TensorFlow's first import

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-order
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order
import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top,wrong-import-order

import slimhub  # pylint: disable=g-import-not-at-top
from slimhub.reference import deterministic  # pylint: disable=g-import-not-at-top


def _signatures(signatures):
  """One line per signature: its inputs and outputs."""
  lines = []
  for name, function in sorted(signatures.items()):
    inputs = ", ".join(
        f"{key} [{','.join(str(d or '?') for d in spec.shape.as_list())}]"
        for key, spec in sorted(function.structured_input_signature[1].items()))
    end_points = len(function.structured_outputs) - 1
    lines.append(f"    {name}({inputs}) -> default"
                 + (f" + {end_points} end points" if end_points else ""))
  return lines


def _describe_tf1(path, images):
  listed = {}
  for tags in (set(), {"train"}):
    lines = _signatures(hub.load(path, tags=tags).signatures)
    listed.setdefault(tuple(lines), []).append(str(sorted(tags)))
  for lines, tag_sets in listed.items():
    print(f"  hub.load, tags {' and '.join(tag_sets)} ([]: inference with "
          "the moving statistics; ['train']: batch statistics and "
          "UPDATE_OPS, for fine-tuning) offer the signatures")
    print("\n".join(lines))
  outputs = hub.load(path).signatures["default"](images=tf.constant(images))
  return outputs["default"].numpy()


def _describe_tf2(path, images):
  loaded = hub.load(path)
  print(f"  tf.saved_model.load: {len(loaded.variables)} variables, "
        f"{len(loaded.trainable_variables)} of them trainable (the rest are "
        "batch-norm moving statistics)")
  print("  signatures (besides __call__, which hub.KerasLayer uses)")
  print("\n".join(_signatures(loaded.signatures)))
  layer = hub.KerasLayer(loaded)  # frozen (trainable=False), as by default
  return layer(images).numpy()


def main(paths):
  quiet.quiet_tensorflow()
  first = None
  for path in paths:
    size = slimhub.get_expected_image_size(path)
    images = deterministic.images(size[0], seed=1)
    is_tf1 = os.path.exists(os.path.join(path, "tfhub_module.pb"))
    print(f"{path}: {'TF1 Hub module' if is_tf1 else 'TF2 SavedModel'}, "
          f"images {size[0]}x{size[1]} expected")
    output = (_describe_tf1 if is_tf1 else _describe_tf2)(path, images)
    print(f"  the 2 test images -> default output {list(output.shape)}, "
          f"top class per image {np.argmax(output, axis=1).tolist()} "
          "(untrained weights: the classes mean nothing)")
    if first is None:
      first = (path, output)
    else:
      print(f"  max |difference| from {first[0]}'s output: "
            f"{np.max(np.abs(output - first[1])):.2g}")


if __name__ == "__main__":
  main(sys.argv[1:])
