#!/usr/bin/env bash
# Sets slimhub up in .venv and runs the main job on the embedded default:
# a deterministic (untrained) inception_v2 checkpoint, exported as a TF1 Hub
# module (v3) and a TF2 SavedModel (v5), verified against the contract, the
# golden layout and the raw Slim net, then loaded by the real consumers.
# Usage: tools/quickstart.sh [OUTPUT_DIR]   (default: demo/)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo}"
modules="$out/google/imagenet/inception_v2/classification"

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "quickstart: slimhub needs Python >= 3.11; python3 is" \
       "$(python3 --version 2>&1)" >&2
  exit 1
}
[ -x .venv/bin/python ] || python3 -m venv .venv
echo "Installing slimhub into .venv (the first time: a few minutes, 2.2 GB)"
install_log="$(mktemp)"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" \
    >"$install_log" 2>&1 || { cat "$install_log" >&2; exit 1; }
rm -f "$install_log"

.venv/bin/slimhub-make-checkpoint --net=inception_v2 --seed=1 \
    --output="$out/checkpoints/inception_v2/model.ckpt"
for version in 3 5; do
  .venv/bin/slimhub-export --net=inception_v2 --kind=classification \
      --version="$version" --checkpoint="$out/checkpoints/inception_v2" \
      --export_dir="$modules/$version" --overwrite
  echo "Verifying $modules/$version (slimhub-verify)"
  .venv/bin/slimhub-verify --module_dir="$modules/$version" \
      --expect="imagenet/inception_v2/classification@$version" \
      --checkpoint="$out/checkpoints/inception_v2" \
      >"$out/verify-$version.txt" || { cat "$out/verify-$version.txt"; exit 1; }
done
echo
.venv/bin/python tools/show_module.py "$modules/3" "$modules/5"

cat <<EOF

Done. Written under $out/:
  checkpoints/inception_v2/model.ckpt.*        the untrained checkpoint
  google/imagenet/inception_v2/classification/
    3/                                         TF1 Hub module (hub.Module)
    5/                                         TF2 SavedModel (hub.KerasLayer)
  verify-3.txt, verify-5.txt                   slimhub-verify's reports
slimhub-verify (the version's contract, the golden layout, outputs equal
to the raw Slim net's):
  v3: $(tail -n 1 "$out/verify-3.txt")
  v5: $(tail -n 1 "$out/verify-5.txt")
EOF
