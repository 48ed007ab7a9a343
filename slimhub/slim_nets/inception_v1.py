"""Inception v1 (Szegedy et al. 2014, GoogLeNet with BN), Slim-compatible.

The body is tf-slim's ``inception_v1_base``, whose variables and end points
are the reference's (its layers initialize from a truncated normal with
stddev 0.01, as in Slim); slimhub supplies the arg scope and the head, whose
logits layer Slim names ``Conv2d_0c_1x1``.
"""

import functools

from tf_slim.nets import inception_v1 as tf_slim_inception_v1

from slimhub.slim_nets.heads import pooled_logits_head
from slimhub.slim_nets.inception_common import build_inception, inception_net

_LOGITS_SCOPE = "Conv2d_0c_1x1"

NETS = (inception_net(
    "inception_v1",
    functools.partial(
        build_inception, scope="InceptionV1",
        base=tf_slim_inception_v1.inception_v1_base,
        head=functools.partial(pooled_logits_head, logits_scope=_LOGITS_SCOPE,
                               prelogits_end_point=False)),
    scope="InceptionV1", num_features=1024, image_size=224,
    logits_scope=_LOGITS_SCOPE),)
