#!/usr/bin/env bash
# Sets slimhub up in .venv and runs the main job on the embedded default:
# a deterministic (untrained) inception_v2 checkpoint, exported as a TF1 Hub
# module (v3) and a TF2 SavedModel (v5), verified against the contract, the
# golden layout and the raw Slim net, then loaded by the real consumers.
# Usage: tools/quickstart.sh [OUTPUT_DIR]   (default: demo/)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"

.venv/bin/slimhub-make-checkpoint --net=inception_v2 --seed=1 \
    --output="$out/checkpoints/inception_v2/model.ckpt"
for version in 3 5; do
  .venv/bin/slimhub-export --net=inception_v2 --kind=classification \
      --version="$version" --checkpoint="$out/checkpoints/inception_v2" \
      --export_dir="$out/google/imagenet/inception_v2/classification/$version" \
      --overwrite
  .venv/bin/slimhub-verify \
      --module_dir="$out/google/imagenet/inception_v2/classification/$version" \
      --expect="imagenet/inception_v2/classification@$version" \
      --checkpoint="$out/checkpoints/inception_v2"
done
.venv/bin/python tools/show_module.py \
    "$out/google/imagenet/inception_v2/classification/3" \
    "$out/google/imagenet/inception_v2/classification/5"
