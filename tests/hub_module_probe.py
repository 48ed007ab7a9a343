"""One TF1 consumer script, run by hub 0.15 (TF 2.15) and slimhub.hub_module
(TF 2.21) alike; test_hub_module.py compares what the two write.

  python hub_module_probe.py tensorflow_hub|slimhub MODULE IMAGES.npy OUT.npz
      [--inference_only]

Writes to OUT.npz: every output of every signature with tags set();
with tags={"train"}, trainable=True: the UPDATE_OPS count, the
REGULARIZATION_LOSSES values and every variable after 3 SGD steps; the
expected image size.
"""

import importlib
import sys

import numpy as np
import tensorflow as tf

tf.compat.v1.disable_eager_execution()
MOMENTUM = 0.997
STEPS = 3


def _inputs(module, signature, images):
  names = module.get_input_info_dict(signature)
  feed = {"images": tf.constant(images)}
  if "batch_norm_momentum" in names:
    feed["batch_norm_momentum"] = tf.constant(MOMENTUM)
  return feed


def inference(hub, path, images, out):
  with tf.Graph().as_default():
    module = hub.Module(path)
    fetches = {}
    for signature in module.get_signature_names():
      outputs = module(_inputs(module, signature, images),
                       signature=signature, as_dict=True)
      fetches.update({f"infer/{signature}/{key}": value
                      for key, value in outputs.items()})
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      out.update(session.run(fetches))


def training(hub, path, images, out):
  with tf.Graph().as_default():
    module = hub.Module(path, trainable=True, tags={"train"})
    names = module.get_signature_names()
    signature = ("image_feature_vector_with_bn_hparams"
                 if "image_feature_vector_with_bn_hparams" in names
                 else "image_feature_vector")
    features = module(_inputs(module, signature, images), signature=signature)
    keys = tf.compat.v1.GraphKeys
    regularization = tf.compat.v1.get_collection(keys.REGULARIZATION_LOSSES)
    update_ops = tf.compat.v1.get_collection(keys.UPDATE_OPS)
    loss = tf.reduce_mean(tf.square(features)) + tf.add_n(regularization)
    with tf.control_dependencies(update_ops):
      step = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
    out["train/num_update_ops"] = np.array(len(update_ops))
    out["train/num_trainable"] = np.array(
        len(tf.compat.v1.trainable_variables()))
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      out["train/regularization"] = np.array(
          sorted(session.run(regularization)))
      for _ in range(STEPS):
        session.run(step)
      values = session.run(module.variable_map)
    out.update({f"variable/{name}": value for name, value in values.items()})


def main():
  which, path, images_file, out_file = sys.argv[1:5]
  hub = importlib.import_module(
      "tensorflow_hub" if which == "tensorflow_hub" else "slimhub.hub_module")
  images = np.load(images_file)
  out = {"expected_image_size": np.array(
      hub.get_expected_image_size(hub.load_module_spec(path)))}
  inference(hub, path, images, out)
  if "--inference_only" not in sys.argv:
    training(hub, path, images, out)
  np.savez(out_file, **out)


if __name__ == "__main__":
  main()
