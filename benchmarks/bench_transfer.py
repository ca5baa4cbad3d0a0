"""The main job's speed: analysis of an exemplar, retouch per query at 1024 px and at
24 MP (auto engine, preset loaded), and batch throughput over 100 queries at 1024 px
with 1 and 2 worker processes. Prints a Markdown table for the README.

Run: `python benchmarks/bench_transfer.py [--batch N]`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def exemplar():
    from mirrorppr import samples
    from mirrorppr.edit import edit_pixels
    from mirrorppr.imageio import read_image
    from mirrorppr.ops.recipe import Recipe

    before = read_image(samples.grace_hopper()).rgb8()
    after = edit_pixels(before, Recipe.of(("face_width", -60), ("eye_resize", 50), ("nose_alar", -50)))
    return before, after


def per_query(width: int, height: int, engine: str) -> dict:
    from _util import current_rss_mb, peak_rss_mb, portrait, timed

    from mirrorppr.analyze import analyze
    from mirrorppr.transfer import Retoucher

    before, after = exemplar()
    t = time.perf_counter()
    op = analyze(before, after)
    t_an = time.perf_counter() - t
    q = portrait(width, height)
    r = Retoucher(op, engine=engine)
    r.apply(q)
    base = current_rss_mb()
    med, _ = timed(lambda: r.apply(q), 3)
    return {"size": f"{width}x{height}", "engine": engine, "analysis_s": t_an, "retouch_s": med,
            "rss_after_load_mb": base, "peak_rss_mb": peak_rss_mb()}


def batch(n: int) -> list[dict]:
    """Batch throughput, run like `mirrorppr batch --preset`: the preset is loaded in a
    fresh process (no face model started there, so workers can fork)."""
    from _util import portrait

    from mirrorppr.analyze import analyze
    from mirrorppr.imageio import Photo, write_image

    before, after = exemplar()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        preset = analyze(before, after).save(Path(tmp) / "look.json")
        indir = Path(tmp) / "in"
        base = portrait(1024, 1024)
        rng = np.random.default_rng(0)
        for i in range(n):  # distinct files: small shifts and exposure changes
            img = np.roll(base, int(rng.integers(-40, 40)), axis=1)
            img = np.clip(img.astype(np.float32) * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
            write_image(Photo(img, format="JPEG"), indir / f"q{i:03d}.jpg")
        for workers in (1, 2):
            out = subprocess.run([sys.executable, __file__, "--run-batch", str(preset), str(indir),
                                  str(Path(tmp) / f"out{workers}"), str(workers)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def run_batch_only(preset: str, indir: str, outdir: str, workers: int) -> dict:
    from mirrorppr.analyze import Operation
    from mirrorppr.transfer.batch import run_batch

    rep = run_batch(Operation.load(preset), Path(indir), Path(outdir), workers=workers, progress=False)
    assert not rep.failed, rep.failed
    n = len(rep.done)
    return {"workers": workers, "photos": n, "seconds": rep.seconds, "per_s": n / rep.seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--one", nargs=3, metavar=("W", "H", "ENGINE"))
    ap.add_argument("--run-batch", nargs=4, metavar=("PRESET", "IN", "OUT", "WORKERS"))
    ap.add_argument("--batch-only", action="store_true")
    a = ap.parse_args()
    if a.run_batch:
        print(json.dumps(run_batch_only(*a.run_batch[:3], int(a.run_batch[3]))))
        return
    if a.one:
        print(json.dumps(per_query(int(a.one[0]), int(a.one[1]), a.one[2])))
        return
    rows = []
    for w, h in ([] if a.batch_only else [(1024, 1024), (6000, 4000)]):
        for engine in ("auto", "flow"):
            out = subprocess.run([sys.executable, __file__, "--one", str(w), str(h), engine],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if rows:
        print("| query | engine | analysis (once per exemplar) | retouch per query | RSS after load | peak RSS |")
        print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['engine']} | {r['analysis_s']:.2f} s | {r['retouch_s']:.3f} s | "
              f"{r['rss_after_load_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB |")
    if a.batch:
        b = batch(a.batch)
        print()
        print("| batch (1024 px JPEG, auto) | photos | wall time | photos/s |")
        print("|---|---|---|---|")
        for r in b:
            print(f"| {r['workers']} worker(s) | {r['photos']} | {r['seconds']:.1f} s | {r['per_s']:.2f} |")


if __name__ == "__main__":
    main()
