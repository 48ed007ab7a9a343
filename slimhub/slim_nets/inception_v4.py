"""Inception v4 (Szegedy et al. 2016), checkpoint-compatible with Slim's.

A stem of three convs, then multi-branch "Mixed" blocks: 3a-5a finish the
stem, 5b-5e are Inception-A, 6a Reduction-A, 6b-6h Inception-B, 7a
Reduction-B and 7b-7d Inception-C. Google published this checkpoint with
Slim only, never as a hub module.
"""

import functools

from slimhub.slim_nets.inception_common import (
    Layer, add_layers, add_mixed, build_inception, fully_connected_head,
    inception_net)

_VALID = "VALID"

_STEM = (Layer("Conv2d_1a_3x3", 32, 2, _VALID),
         Layer("Conv2d_2a_3x3", 32, padding=_VALID),
         Layer("Conv2d_2b_3x3", 64))

_MIXED_3A = ((Layer("MaxPool_0a_3x3", stride=2, padding=_VALID),),
             (Layer("Conv2d_0a_3x3", 96, 2, _VALID),))

_MIXED_4A = ((Layer("Conv2d_0a_1x1", 64),
              Layer("Conv2d_1a_3x3", 96, padding=_VALID)),
             (Layer("Conv2d_0a_1x1", 64), Layer("Conv2d_0b_1x7", 64),
              Layer("Conv2d_0c_7x1", 64),
              Layer("Conv2d_1a_3x3", 96, padding=_VALID)))

_MIXED_5A = ((Layer("Conv2d_1a_3x3", 192, 2, _VALID),),
             (Layer("MaxPool_1a_3x3", stride=2, padding=_VALID),))

_INCEPTION_A = ((Layer("Conv2d_0a_1x1", 96),),
                (Layer("Conv2d_0a_1x1", 64), Layer("Conv2d_0b_3x3", 96)),
                (Layer("Conv2d_0a_1x1", 64), Layer("Conv2d_0b_3x3", 96),
                 Layer("Conv2d_0c_3x3", 96)),
                (Layer("AvgPool_0a_3x3"), Layer("Conv2d_0b_1x1", 96)))

_REDUCTION_A = ((Layer("Conv2d_1a_3x3", 384, 2, _VALID),),
                (Layer("Conv2d_0a_1x1", 192), Layer("Conv2d_0b_3x3", 224),
                 Layer("Conv2d_1a_3x3", 256, 2, _VALID)),
                (Layer("MaxPool_1a_3x3", stride=2, padding=_VALID),))

_INCEPTION_B = ((Layer("Conv2d_0a_1x1", 384),),
                (Layer("Conv2d_0a_1x1", 192), Layer("Conv2d_0b_1x7", 224),
                 Layer("Conv2d_0c_7x1", 256)),
                (Layer("Conv2d_0a_1x1", 192), Layer("Conv2d_0b_7x1", 192),
                 Layer("Conv2d_0c_1x7", 224), Layer("Conv2d_0d_7x1", 224),
                 Layer("Conv2d_0e_1x7", 256)),
                (Layer("AvgPool_0a_3x3"), Layer("Conv2d_0b_1x1", 128)))

_REDUCTION_B = ((Layer("Conv2d_0a_1x1", 192),
                 Layer("Conv2d_1a_3x3", 192, 2, _VALID)),
                (Layer("Conv2d_0a_1x1", 256), Layer("Conv2d_0b_1x7", 256),
                 Layer("Conv2d_0c_7x1", 320),
                 Layer("Conv2d_1a_3x3", 320, 2, _VALID)),
                (Layer("MaxPool_1a_3x3", stride=2, padding=_VALID),))

# A tuple of Layers inside a branch is a fork (outputs concatenated).
_INCEPTION_C = ((Layer("Conv2d_0a_1x1", 256),),
                (Layer("Conv2d_0a_1x1", 384),
                 (Layer("Conv2d_0b_1x3", 256), Layer("Conv2d_0c_3x1", 256))),
                (Layer("Conv2d_0a_1x1", 384), Layer("Conv2d_0b_3x1", 448),
                 Layer("Conv2d_0c_1x3", 512),
                 (Layer("Conv2d_0d_1x3", 256), Layer("Conv2d_0e_3x1", 256))),
                (Layer("AvgPool_0a_3x3"), Layer("Conv2d_0b_1x1", 256)))

_MIXED_BLOCKS = (
    (("Mixed_3a", _MIXED_3A), ("Mixed_4a", _MIXED_4A), ("Mixed_5a", _MIXED_5A))
    + tuple((f"Mixed_5{letter}", _INCEPTION_A) for letter in "bcde")
    + (("Mixed_6a", _REDUCTION_A),)
    + tuple((f"Mixed_6{letter}", _INCEPTION_B) for letter in "bcdefgh")
    + (("Mixed_7a", _REDUCTION_B),)
    + tuple((f"Mixed_7{letter}", _INCEPTION_C) for letter in "bcd"))


def inception_v4_base(images, scope):
  """The body up to Mixed_7d; (net, end_points). `scope` is already open."""
  del scope
  end_points = {}
  net = add_layers(images, end_points, _STEM)
  for name, branches in _MIXED_BLOCKS:
    net = add_mixed(net, end_points, name, branches)
  return net, end_points


NETS = (inception_net(
    "inception_v4",
    functools.partial(build_inception, scope="InceptionV4",
                      base=inception_v4_base, head=fully_connected_head),
    scope="InceptionV4", num_features=1536, image_size=299,
    logits_scope="Logits"),)
