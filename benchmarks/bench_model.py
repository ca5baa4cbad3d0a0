"""Inference cost of the learned model: measured for the tiny and small settings (random
weights: the cost does not depend on them), estimated on paper for the paper setting.

    python benchmarks/bench_model.py [--steps 40] [--weights DIR]

Prints a markdown table: setting, working size, DiT tokens per step, GFLOPs per step (DiT
forward), steps, seconds per image (CPU; GPU when one is present).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _util import portrait

from mirrorppr import samples
from mirrorppr.imageio import read_image
from mirrorppr.model.cost import QWEN_IMAGE, dit_step, tokens_at
from mirrorppr.model.pipeline import MirrorPPRPipeline
from mirrorppr.train import load_config

#: Measured on a lent H200 with random weights, bf16 (docs/DESIGN speed anchors).
H200_S_PER_STEP_1024 = 0.43
#: Qwen-Image-Edit's VL condition tokens for one query image and the empty prompt (about).
VL_TOKENS = 300


def measure(pipe, steps: int, device: str) -> tuple[float, float]:
    """(seconds per image at ``steps``, seconds per step): two-step and seven-step runs give
    the fixed part (encoders, codec) and the per-step part, so slow CPUs need not run all
    the steps."""
    src = read_image(samples.grace_hopper()).rgb8()
    q = portrait(768, 1024)
    pipe.to(device)
    pipe(src, src, q, num_inference_steps=2, progress=False)            # warm-up

    def run(n: int) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        pipe(src, src, q, num_inference_steps=n, progress=False)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t

    two = float(np.median([run(2) for _ in range(2)]))
    per_step = max(0.0, (run(7) - two) / 5)
    return two + per_step * (steps - 2), per_step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    for name, over in (("tiny", []), ("small", ["model.resolution=128"]), ("small", [])):
        cfg = load_config(name, over)
        pipe = MirrorPPRPipeline.build(cfg["model"])
        pipe.settings["resolution"] = cfg["model"]["resolution"]
        res = cfg["model"]["resolution"]
        n_img = 2 * tokens_at(res, pipe.codec.factor)
        cost = dit_step(cfg["model"]["base"]["config"], n_img, 8)
        cpu, cpu_step = measure(pipe, args.steps, "cpu")
        gpu = measure(pipe, args.steps, "cuda") if torch.cuda.is_available() else None
        rows.append((name, f"{res} px", cost.tokens, cost.flops / 1e9, args.steps,
                     f"{cpu:.2f} ({cpu_step:.3f}/step)",
                     "not measured (no GPU)" if gpu is None else f"{gpu[0]:.2f} ({gpu[1]:.3f}/step)"))
    n_img = 2 * tokens_at(1024)
    cost = dit_step(QWEN_IMAGE, n_img, VL_TOKENS + 8)
    rows.append(("paper (estimate)", "1024 px", cost.tokens, cost.flops / 1e9, 40,
                 "impractical", f"~{H200_S_PER_STEP_1024 * 40:.0f} (H200, {H200_S_PER_STEP_1024} s/step)"))
    print("| setting | working size | DiT tokens/step | GFLOPs/step | steps | s/image CPU (2 cores) | s/image GPU |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:,} | {r[3]:,.1f} | {r[4]} | {r[5]} | {r[6]} |")
    total = cost.flops * 40 / 1e15
    print(f"\npaper setting at 1024 px: {cost.image_tokens:,} image tokens (4,096 noisy + 4,096 query) + "
          f"{cost.text_tokens} condition tokens per step; {cost.flops / 1e12:.0f} TFLOPs per step "
          f"({cost.attention_flops / cost.flops:.0%} in attention), {total:.1f} PFLOPs per image at 40 steps "
          "(x2 with classifier-free guidance).")


if __name__ == "__main__":
    main()
