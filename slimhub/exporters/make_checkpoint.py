r"""slimhub-make-checkpoint: a deterministic, UNTRAINED Slim checkpoint.

  slimhub-make-checkpoint --net=mobilenet_v1_050_160 --seed=1 \
      --output=ckpt/model.ckpt
  slimhub-make-checkpoint --net=pnasnet_large --checkpoint_dir=ckpts

For trying the pipeline without downloads, for tests and demos. The values
depend only on each variable's name, shape and the seed (the scheme of the
reference data); they classify nothing. Quantops nets also get their
weights_quant / act_quant ranges, calibrated on deterministic images, and
the EMA helpers of a quantization-aware checkpoint
(slimhub.reference.quant_calibration). With --checkpoint_dir the checkpoint is
written where the official tarball would extract it.

Every checkpoint holds the variable slimhub/untrained_seed (the seed), so
that a module exported from it, wherever the files are copied, says that
its weights are untrained; no module restores it.
"""

from absl import app
from absl import flags

from slimhub.exporters import common
from slimhub.reference import untrained

_NET = flags.DEFINE_string("net", None, "Catalogue net (see slimhub-catalog).")
_SEED = flags.DEFINE_integer("seed", 1, "Seed of the deterministic values.")
_OUTPUT = flags.DEFINE_string("output", None, "Checkpoint prefix to write.")
_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir", None, "Write at the catalogue's checkpoint path inside "
    "this directory instead of --output.")

flags.mark_flag_as_required("net")
flags.mark_flags_as_mutual_exclusive(["output", "checkpoint_dir"],
                                     required=True)

# The old import path of the library function, for one release.
make_checkpoint = untrained.make_checkpoint


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_tensorflow()
  try:
    prefix = untrained.make_checkpoint(_NET.value, _SEED.value, _OUTPUT.value,
                                       _CHECKPOINT_DIR.value)
  except untrained.NoCheckpointPath:
    common.fail("slimhub-make-checkpoint", "The catalogue names no checkpoint "
                f"for {_NET.value}; pass --output")
  except (KeyError, ValueError) as error:
    common.fail("slimhub-make-checkpoint", str(error).strip('"'))
  print(f"Wrote an untrained deterministic checkpoint (seed {_SEED.value}) "
        f"for {_NET.value} at {prefix}")


def run():
  common.run(main)


if __name__ == "__main__":
  run()
