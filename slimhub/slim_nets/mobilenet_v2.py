"""MobileNet v2 (Sandler et al. 2018), checkpoint-compatible with Slim's.

Scope ``MobilenetV2``: a strided 3x3 ``Conv``, 17 inverted-residual
bottlenecks, the 1x1 ``Conv_1`` (1280 wide) and the Logits head, all with
ReLU6. Below depth 1.0 the published checkpoints use Slim's
finegrain_classification_mode: ``Conv_1`` keeps its 1280 channels.
"""

import tensorflow as tf

from slimhub.slim_nets import mobilenet_blocks as blocks

# (expansion, output depth, repeats, stride of the first repeat) per stage.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
_LAYERS = (
    (blocks.Conv(32, kernel=3, stride=2),)
    + tuple(blocks.Bottleneck(depth, expansion=expansion,
                              stride=stride if repeat == 0 else 1)
            for expansion, depth, repeats, stride in _STAGES
            for repeat in range(repeats))
    + (blocks.Conv(1280, keep_width=True),))


NETS = tuple(
    blocks.slim_net(name=f"mobilenet_v2_{multiplier_id}",
                    family="mobilenet_v2", root_scope="MobilenetV2",
                    layers=_LAYERS, multiplier=multiplier,
                    activation_fn=tf.nn.relu6)
    for multiplier_id, multiplier in (("140", 1.4), ("130", 1.3),
                                      ("100", 1.0), ("075", 0.75),
                                      ("050", 0.5), ("035", 0.35)))
