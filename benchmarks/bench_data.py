"""Data engine throughput: materialised quadruplets per second per core at 512 and
1024 px, with 1 and 2 Ray workers (local cluster), PNG encoding included, and the
projected wall time for the paper's 47 million pairs on a 1,000-core cluster.

Run: `python benchmarks/bench_data.py [--portraits N]`.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

PAPER_PAIRS = 47_451_284   # 808,439 simulated + 46,642,845 professional


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portraits", type=int, default=8)
    a = ap.parse_args()
    import ray

    from mirrorppr.data import SimConfig, list_inputs, make_tasks, run_tasks
    from mirrorppr.eval.simface import make_portraits

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        make_portraits(Path(tmp) / "p")
        inputs = list_inputs(str(Path(tmp) / "p"))[: a.portraits]
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            for size in (512, 1024):
                cfg = SimConfig(size=size, seed=0, materialize=True)
                for workers in (1, 2):
                    out = Path(tmp) / f"s{size}w{workers}"
                    tasks = make_tasks("simulate", inputs, cfg, 1)
                    # Warm the workers (model load) on a throwaway shard first.
                    run_tasks(tasks[:workers], Path(tmp) / f"warm{size}{workers}", workers=workers,
                              use_ray=True, progress=False)
                    t = time.perf_counter()
                    man = run_tasks(tasks, out, workers=workers, use_ray=True, progress=False)
                    dt = time.perf_counter() - t
                    n = man.totals()["samples"]
                    rows.append((size, workers, n, dt, n / dt / workers))
        finally:
            ray.shutdown()
    print("| size | Ray workers | quadruplets | wall time | quadruplets/s | per core |")
    print("|---|---|---|---|---|---|")
    for size, w, n, dt, per in rows:
        print(f"| {size} | {w} | {n} | {dt:.1f} s | {n / dt:.2f} | {per:.2f} |")
    for size in (512, 1024):
        per = max(r[4] for r in rows if r[0] == size and r[1] == 2)
        hours = PAPER_PAIRS / (per * 1000) / 3600
        print(f"\nprojected at {size} px: {PAPER_PAIRS:,} pairs on 1,000 cores at {per:.2f}/s/core "
              f"= {hours:.1f} h")


if __name__ == "__main__":
    main()
