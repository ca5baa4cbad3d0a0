#!/usr/bin/env bash
# The GPU run (issue 15, item 4): `small` (both stages) and the learned warp head, bf16, on
# one lent GPU, from shards made here. NOT RUN YET: no GPU has been lent to this project's
# model work so far. Prepared to fit one short device session (about 10 minutes).
#
# Here, before the session (CPU; the device machine has no face landmarker, so data and
# evaluation stay here and only training goes there):
#   python benchmarks/warp_data.py gpu_data --size 256        # llw + pro shards with fields
#   rm -rf gpu_data/shards/*/cache* ; du -sh gpu_data/shards  # must fit the 64 MiB carry
#   pip download --no-deps diffusers==0.42.1 -d gpu_data/wheels
# (at 256 px the two subsets take ~600 MB as PNG: carry a part, e.g. the first shard of
# each subset, ~70 MB, or simulate with --format jpg.)
# On the device (run tool, carry gpu_data):
#   bash benchmarks/gpu_run.sh gpu_data "$OUT" 3 4
# Back here, with the files fetched under FILES:
#   mirrorppr eval CASES --engine model --engine auto --weights FILES/small/weights --steps 40
#   mirrorppr eval CASES --engine learned-warp --engine auto --weights FILES/warp/weights
#   python benchmarks/bench_warp.py --weights FILES/warp/weights --run FILES/warp --evals ...
set -euo pipefail
DATA=${1:?usage: gpu_run.sh DATA OUT [small minutes] [warp minutes]}
OUT=${2:?usage: gpu_run.sh DATA OUT [small minutes] [warp minutes]}
M_SMALL=${3:-3}
M_WARP=${4:-4}
PY=${PY:-python}
mkdir -p "$OUT"
# The image has torch (CUDA), peft, transformers, accelerate; diffusers comes as a wheel.
$PY -m pip install -q --no-deps "$DATA"/wheels/diffusers-*.whl
$PY -m pip install -q --no-deps -e . 2>/dev/null || export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY - <<'EOF' | tee -a "$OUT/gpu.txt"
import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
EOF
SHARDS=("$DATA"/shards/llw "$DATA"/shards/pro)
# small: the shipped config (256 px, bf16, batch 16); stage I a third of the time.
$PY -m mirrorppr train --config small --data "${SHARDS[@]}" --out "$OUT/small" --stage 1 \
  --minutes "$($PY -c "print($M_SMALL / 3)")" --set stage1.warmup=20 --set train.log_every=10 \
  --set train.validate_every=100 --set data.workers=8 2>&1 | tail -3
$PY -m mirrorppr train --config small --data "${SHARDS[@]}" --out "$OUT/small" --stage 2 \
  --minutes "$($PY -c "print($M_SMALL * 2 / 3)")" --set train.log_every=10 --set train.validate_every=200 \
  --set data.workers=8 2>&1 | tail -3
# The warp head: bf16, a GPU-sized batch.
$PY -m mirrorppr train --config warp-small --data "${SHARDS[@]}" --out "$OUT/warp" --minutes "$M_WARP" \
  --set train.mixed_precision=bf16 --set data.batch_size=96 --set stage.steps=3000 \
  --set train.validate_every=250 2>&1 | tail -3
rm -rf "$OUT/warp/cache.pkl" "$OUT/small/state" "$OUT/warp/state"    # weights and metrics come back
# What the issue asks for, from the metrics: loss curves, samples/s, GPU memory, data wait.
$PY - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, sys, pathlib
for run in ("small", "warp"):
    p = pathlib.Path(sys.argv[1]) / run / "metrics.jsonl"
    if not p.is_file():
        print(run, "no metrics"); continue
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    for stage in sorted({r["stage"] for r in rows if "/" not in r["stage"]}):
        rs = [r for r in rows if r["stage"] == stage]
        print(f"{run} {stage}: steps {rs[-1]['step']}, loss {rs[0]['loss']:.4f} -> {rs[-1]['loss']:.4f}, "
              f"samples/s {max(r['samples_per_s'] for r in rs):.1f}, "
              f"GPU memory {max(r.get('gpu_mem_gb', 0) for r in rs):.1f} GB, "
              f"data wait {100 * sum(r['data_wait_share'] for r in rs) / len(rs):.1f}%")
EOF
