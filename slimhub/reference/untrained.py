"""Untrained deterministic checkpoints of catalogue nets, written where the
official tarball would extract them (slimhub-make-checkpoint's library).

The values depend only on each variable's name, shape and the seed (the
scheme of the reference data, slimhub.reference.deterministic); they
classify nothing. Quantops nets also get calibrated weights_quant /
act_quant ranges and the EMA helpers of a quantization-aware checkpoint
(slimhub.reference.quant_calibration). Every checkpoint holds the marker
variable of slimhub.build.provenance, so that its modules say they are
untrained.
"""

import os

from slimhub import catalog


class NoCheckpointPath(ValueError):
  """The catalogue names no checkpoint path for a net: give a prefix."""


def make_checkpoint(net, seed, prefix=None, checkpoint_dir=None):
  """Writes the deterministic checkpoint of catalogue `net` at `prefix`,
  or at the catalogue's checkpoint path under `checkpoint_dir`; returns
  the prefix written.

  Raises:
    KeyError: `net` is not in the catalogue.
    ValueError: the net is not supported.
    NoCheckpointPath: `prefix` is None and the catalogue names no
      checkpoint path for the net.
  """
  entry = catalog.find(net)
  if entry.unsupported:
    raise ValueError(f"{entry.name} is not supported: {entry.unsupported}")
  if prefix is None:
    if not entry.checkpoint:
      raise NoCheckpointPath(f"The catalogue names no checkpoint for "
                             f"{entry.name}; give its prefix")
    prefix = os.path.join(checkpoint_dir, entry.checkpoint)
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  if entry.quantized:
    from slimhub import slim_nets  # pylint: disable=g-import-not-at-top
    from slimhub.reference import quant_calibration  # pylint: disable=g-import-not-at-top
    return quant_calibration.write_checkpoint(
        slim_nets.get(entry.net), entry.image_size, seed, prefix)
  from slimhub.reference import deterministic  # pylint: disable=g-import-not-at-top
  from slimhub.reference import net_graph  # pylint: disable=g-import-not-at-top
  return deterministic.write_checkpoint(
      net_graph.checkpoint_variables(entry), seed, prefix)
