#!/usr/bin/env bash
# The learned warp head end to end on this machine's CPU, with an explicit person split:
#   data (3 training people, benchmarks/warp_data.py) -> warp-small training -> eval of
#   learned-warp beside recipe and auto on held-out SimFace and liquify cases (the
#   astronaut and Grace Hopper: people the head never saw).
# Usage: benchmarks/train_warp.sh OUT [MINUTES] [STAGES]
#   STAGES: any of data,train,eval (default all three). One thread, niced: the training run
#   is meant to share a 2-core machine.
set -euo pipefail
OUT=${1:?usage: train_warp.sh OUT [minutes] [stages]}
MIN=${2:-60}
STAGES=${3:-data,train,eval}
PY=${PY:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
if [[ $STAGES == *data* ]]; then
  nice -n 10 $PY benchmarks/warp_data.py "$OUT" --workers 1
fi
if [[ $STAGES == *train* ]]; then
  nice -n 10 $PY -m mirrorppr train --config warp-small --data "$OUT/shards/llw" "$OUT/shards/pro" \
    --out "$OUT/run" --minutes "$MIN" --set stage.steps=${STEPS:-3600} --set train.validate_every=100 \
    --set data.cache="$OUT/cache.pkl"
fi
if [[ $STAGES == *eval* ]]; then
  for set in simface liquify; do
    # The training-free engines do not depend on the weights: scored once, apart.
    [[ -f "$OUT/eval-$set-base/results.json" ]] || nice -n 10 $PY -m mirrorppr eval "$OUT/cases/$set" \
      --engine recipe --engine auto --no-facesim --out "$OUT/eval-$set-base"
    nice -n 10 $PY -m mirrorppr eval "$OUT/cases/$set" --engine learned-warp --weights "$OUT/run/weights" \
      --no-facesim --out "$OUT/eval-$set-warp"
  done
  nice -n 10 $PY benchmarks/bench_warp.py --weights "$OUT/run/weights" --run "$OUT/run" --evals "$OUT"/eval-*-*
fi
