"""Inception v2 (Ioffe & Szegedy 2015, "BN-Inception"), Slim-compatible.

The body is tf-slim's own ``inception_v2_base`` (its variable names are the
checkpoint's); slimhub supplies the arg scope, because tf-slim 1.1.0's
``inception_v2_arg_scope`` cannot take the BN decay, and the head.
"""

import functools

from tf_slim.nets import inception_v2 as tf_slim_inception_v2

from slimhub.slim_nets.inception_common import build_inception, inception_net

NETS = (inception_net(
    "inception_v2",
    functools.partial(build_inception, scope="InceptionV2",
                      base=tf_slim_inception_v2.inception_v2_base),
    scope="InceptionV2", num_features=1024, image_size=224,
    logits_scope="Conv2d_1c_1x1"),)
