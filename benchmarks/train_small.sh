#!/usr/bin/env bash
# The 'small' training run end to end, from the photos available offline:
#   data (simulated, training photos) -> stage I -> stage II -> eval on held-out cases.
# Usage: benchmarks/train_small.sh OUT [STAGE1_MINUTES] [STAGE2_MINUTES]
# On a GPU it runs the config as shipped (bf16, batch 16); on a CPU, fp32 and batch 8.
set -euo pipefail
OUT=${1:?usage: train_small.sh OUT [stage1 minutes] [stage2 minutes]}
M1=${2:-1.5}
M2=${3:-6}
PY=${PY:-python}
mkdir -p "$OUT"
# Two people only are available offline: train on some variants of each, hold others out.
$PY -m mirrorppr bench portraits "$OUT/portraits" >/dev/null
mkdir -p "$OUT/train/a" "$OUT/train/b" "$OUT/held/a" "$OUT/held/b"
for p in astronaut:a grace_hopper:b; do
  src=${p%%:*}; dst=${p##*:}
  for v in original mirrored rot+4 rot-4 darker crop; do cp "$OUT/portraits/$src/$v.png" "$OUT/train/$dst/"; done
  for v in rot+8 rot-8 large; do cp "$OUT/portraits/$src/$v.png" "$OUT/held/$dst/"; done
done
$PY -m mirrorppr data simulate "$OUT/train" --out "$OUT/shards" --size 256 --levels 50 100 --combos 8
$PY -m mirrorppr bench simface "$OUT/held" --out "$OUT/heldout" --n 12 --seed 3 --size 512
if $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  EXTRA=()
else
  EXTRA=(--set train.mixed_precision=no --set data.workers=1 --set data.batch_size=8)
fi
$PY -m mirrorppr train --config small --data "$OUT/shards" --out "$OUT/run" --stage 1 --minutes "$M1" \
  --set stage1.warmup=5 --set train.log_every=5 --set train.validate_every=20 "${EXTRA[@]}"
$PY -m mirrorppr train --config small --data "$OUT/shards" --out "$OUT/run" --stage 2 --minutes "$M2" \
  --set stage2.warmup=10 --set stage2.lr=3.0e-4 --set train.log_every=10 --set train.validate_every=100 "${EXTRA[@]}"
$PY -m mirrorppr eval "$OUT/heldout" --engine model --engine auto --weights "$OUT/run/weights" --steps 40 \
  --no-facesim --out "$OUT/eval"
