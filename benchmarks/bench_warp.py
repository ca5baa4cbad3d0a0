"""The learned warp head's numbers: held-out quality beside the other engines, inference
time, and its training curve.

    python benchmarks/bench_warp.py --weights RUN/weights [--run RUN] [--evals EVAL_DIR ...]

``--evals``: folders written by ``mirrorppr eval ... --engine learned-warp --engine recipe
--engine auto`` (benchmarks/train_warp.sh makes them). Inference time is measured here on
the machine's CPU (all its threads): the exemplar's tokens once, then each query.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _util import portrait

from mirrorppr import samples
from mirrorppr.analyze.operation import Operation
from mirrorppr.edit import edit_pixels
from mirrorppr.imageio import read_image
from mirrorppr.landmarks import find_face
from mirrorppr.model.warp_engine import load_warp, make_engine
from mirrorppr.ops.recipe import Recipe
from mirrorppr.transfer.engines import TransferOptions

METHODS = ("no-op", "learned-warp", "recipe", "auto")


def quality(evals: list[Path]) -> list[str]:
    """One table over eval folders; folders named ``NAME-PART`` (e.g. eval-simface-warp and
    eval-simface-base, the same cases scored in two runs) are merged under NAME."""
    lines = ["| cases | method | PSNR | gain in edit region | gain on the face | PSNR outside | flow EPE | s/case |",
             "|---|---|---|---|---|---|---|---|"]
    f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    groups: dict[str, dict] = {}
    for ev in evals:
        res = json.loads((ev / "results.json").read_text())
        name = ev.name.rsplit("-", 1)[0] if ev.name.count("-") > 1 else ev.name
        g = groups.setdefault(name, {"summary": {}, "cases": {}})
        g["summary"].update(res["summary"])
        g["cases"].update(res["cases"])
    for name, res in groups.items():
        n = res["summary"]["no-op"]["n"]
        for m in METHODS:
            s = res["summary"].get(m)
            if s is None:
                continue
            lines.append(f"| {name} ({n}) | {m} | {f(s['psnr'])} | {f(s['gain_edit'])} | {f(s['gain_face'])} | "
                         f"{f(s['psnr_keep'])} | {f(s['flow_epe'])} | {f(s['seconds'])} |")
        per = res["cases"].get("learned-warp", {})
        wins = [c for c, r in per.items() if r and r["gain_edit"] > 0]
        if per:
            lines.append(f"| {name} | learned-warp gains on | {len(wins)} of {len(per)} cases | | | | | |")
    return lines


def timing(weights: Path) -> list[str]:
    eng = make_engine(load_warp(weights))
    src = read_image(samples.grace_hopper()).rgb8()
    tgt = edit_pixels(src, Recipe.of(("eye_resize", 80)))
    lines = ["| query | exemplar tokens (once) | retouch per query (head + full-resolution warp) |", "|---|---|---|"]
    warm = portrait(512, 512)            # first calls pay for torch's and OpenCV's set-up
    eng(Operation.from_pair(src, tgt), warm, find_face(warm), TransferOptions(), None)
    for w, h in ((1024, 1024), (6000, 4000)):
        q = portrait(w, h)
        face = find_face(q)
        op = Operation.from_pair(src.copy(), tgt.copy())
        t = time.perf_counter()
        eng.predictor.tokens(*op.exemplar)
        t_tok = time.perf_counter() - t
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            eng(op, q, face, TransferOptions(), None)
            ts.append(time.perf_counter() - t)
        lines.append(f"| {w}x{h} | {t_tok:.3f} s | {np.median(ts):.3f} s |")
    return lines


def curve(run: Path) -> list[str]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["stage"] == "warp"]
    val = [r for r in rows if r["stage"] == "warp/val"]
    if not train:
        return []
    pick = sorted({train[int(i)]["step"] for i in np.linspace(0, len(train) - 1, 9)})
    by = {r["step"]: r for r in train}
    out = ["| step | " + " | ".join(str(s) for s in pick) + " |", "|---" * (len(pick) + 1) + "|",
           "| loss | " + " | ".join(f"{by[s]['loss']:.3f}" for s in pick) + " |",
           "| field EPE (crop px) | " + " | ".join(f"{by[s]['field']:.3f}" for s in pick) + " |",
           "| image L1 | " + " | ".join(f"{by[s]['image']:.4f}" for s in pick) + " |"]
    if val:
        vs = [val[int(i)] for i in np.linspace(0, len(val) - 1, min(6, len(val)))]
        out += ["", "| validation step | " + " | ".join(str(v["step"]) for v in vs) + " |",
                "|---" * (len(vs) + 1) + "|",
                "| effective-motion EPE (no-op) | " + " | ".join(f"{v['epe']:.3f} ({v['epe_noop']:.3f})" for v in vs)
                + " |",
                "| PSNR in edit region (no-op) | " + " | ".join(f"{v['psnr_edit']:.2f} ({v['psnr_edit_noop']:.2f})"
                                                            for v in vs) + " |"]
    sps = [r["samples_per_s"] for r in train]
    wait = [r["data_wait_share"] for r in train]
    t0, t1 = train[0]["time"], train[-1]["time"]
    out.append(f"\n{train[-1]['step']} steps in {(t1 - t0) / 60:.1f} min; {np.median(sps):.1f} samples/s (median); "
               f"{100 * np.median(wait):.1f}% of the time making batches (median)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--evals", type=Path, nargs="*", default=[])
    args = ap.parse_args()
    for block in (quality(args.evals) if args.evals else [], timing(args.weights),
                  curve(args.run) if args.run else []):
        if block:
            print("\n".join(block) + "\n")


if __name__ == "__main__":
    main()
