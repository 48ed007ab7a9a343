"""Runs inside the tensorflow-hub 0.15 / TF 2.15 virtualenv (not slimhub's).

Loads a TF1 Hub module with hub.Module the way TF1 users did and prints one
JSON object of observations for test_hub015.py to assert on. Usage:
  python hub015_probe.py MODULE_DIR IMAGES.npy [--bn_hparams | --inference_only]

--inference_only probes only the default graph (quantops modules have no
{"train"} variant).
"""

import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

tf.compat.v1.disable_eager_execution()


def _run_module(path, images, tags, trainable, signature, momentum=None):
  """Builds hub.Module in a fresh graph; runs outputs and UPDATE_OPS once.

  Returns observations, including every moving_mean's change.
  """
  with tf.Graph().as_default():
    module = hub.Module(path, tags=tags, trainable=trainable)
    inputs = {"images": tf.constant(images)}
    if momentum is not None:
      inputs["batch_norm_momentum"] = tf.constant(momentum, tf.float32)
    outputs = module(inputs, signature=signature, as_dict=True)
    update_ops = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.UPDATE_OPS)
    moving = {v.op.name: v for v in tf.compat.v1.global_variables()
              if v.op.name.endswith("moving_mean")}
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      before = session.run(moving)
      values = session.run(outputs["default"])
      session.run(update_ops)
      after = session.run(moving)
    return {
        "default": values.tolist(),
        "output_keys": sorted(outputs),
        "num_update_ops": len(update_ops),
        "num_trainable": len(tf.compat.v1.trainable_variables()),
        "num_regularization_losses": len(tf.compat.v1.get_collection(
            tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)),
        "moving_mean_change": {name: float(np.abs(after[name] -
                                                  before[name]).sum())
                               for name in sorted(moving)},
    }


def main():
  path, images_file = sys.argv[1], sys.argv[2]
  bn_hparams = "--bn_hparams" in sys.argv
  images = np.load(images_file)
  spec = hub.load_module_spec(path)
  result = {
      "tf_version": tf.__version__,
      "hub_version": hub.__version__,
      "expected_image_size": list(hub.get_expected_image_size(spec)),
      "tags": sorted(sorted(tags) for tags in spec.get_tags()),
      "signatures": sorted(spec.get_signature_names()),
      "inference": _run_module(path, images, None, False, "default"),
  }
  if "--inference_only" in sys.argv:
    result["inference_trainable"] = _run_module(path, images, None, True,
                                                "default")
    print(json.dumps(result))
    return
  result["train_frozen"] = _run_module(path, images, {"train"}, False,
                                       "image_feature_vector")
  result["train"] = _run_module(path, images, {"train"}, True,
                                "image_feature_vector")
  if bn_hparams:
    name = "image_feature_vector_with_bn_hparams"
    result["train_momentum_0.99"] = _run_module(path, images, {"train"}, True,
                                                name, 0.99)
    result["train_momentum_0.5"] = _run_module(path, images, {"train"}, True,
                                               name, 0.5)
    result["inference_momentum_0.5"] = _run_module(path, images, None, True,
                                                   name, 0.5)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
