"""Inception v3 (Szegedy et al. 2015), Slim-compatible.

The body is tf-slim's ``inception_v3_base`` at depth multiplier 1. The arg
scope is the shared Inception one, as in the reference since the TF 1.0
rewrite; tf-slim's ``inception_v3_arg_scope`` differs from it (forced fused
BN, moving statistics also in a ``moving_vars`` collection). The 2016
checkpoint was trained with truncated-normal (stddev 0.1) initial weights,
which only matters for training from scratch.
"""

import functools

from tf_slim.nets import inception_v3 as tf_slim_inception_v3

from slimhub.slim_nets.inception_common import build_inception, inception_net

NETS = (inception_net(
    "inception_v3",
    functools.partial(build_inception, scope="InceptionV3",
                      base=tf_slim_inception_v3.inception_v3_base),
    scope="InceptionV3", num_features=2048, image_size=299,
    logits_scope="Conv2d_1c_1x1"),)
