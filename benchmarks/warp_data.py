"""Data for the learned warp head's benchmark run, with an explicit person split.

    python benchmarks/warp_data.py OUT [--size 512] [--workers 1] [--cases 30]

Training people: the three portraits in tests/data/portraits (Obama, Biden, Luis Pedro
Coelho), each as 9 variants (mirrored, rotated, cropped, rescaled, darker). Held out:
the two portraits shipped inside the wheels (the astronaut, Grace Hopper); every
evaluation case is made from them only, so no evaluated person was seen in training.

Writes OUT/train/<person>/*.png, OUT/shards/llw (the paper's 8 ops by its exact
procedure, both ways at 35/70/100, plus combos), OUT/shards/pro (this project's 20 ops,
both ways at 50/100, plus combos), OUT/held (held-out portraits and variants),
OUT/cases/simface and OUT/cases/liquify (cross-identity cases of held-out people).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from mirrorppr.data import SimConfig, make_tasks, run_tasks
from mirrorppr.data.generate import list_inputs
from mirrorppr.eval.simface import build_simface, make_portraits
from mirrorppr.imageio import Photo, read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PEOPLE = ("obama", "biden", "luispedro")


def variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The same variants as ``mirrorppr bench portraits`` makes of the held-out people."""
    h, w = rgb.shape[:2]
    out = {"original": rgb, "mirrored": rgb[:, ::-1]}
    for ang in (-8, -4, 4, 8):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
        out[f"rot{ang:+d}"] = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    out["crop"] = rgb[h // 10: h - h // 20, w // 12: w - w // 12]
    out["large"] = cv2.resize(rgb, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    out["darker"] = np.clip(rgb.astype(np.float32) * 0.8, 0, 255).astype(np.uint8)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=512, help="long side of the training photos")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cases", type=int, default=30, help="cases per held-out benchmark")
    ap.add_argument("--case-size", type=int, default=1024)
    args = ap.parse_args()
    out = args.out
    for person in TRAIN_PEOPLE:
        rgb = read_image(ROOT / "tests" / "data" / "portraits" / f"{person}.jpg").rgb8()
        d = out / "train" / person
        d.mkdir(parents=True, exist_ok=True)
        for name, img in variants(rgb).items():
            if not (d / f"{name}.png").exists():
                write_image(Photo(np.ascontiguousarray(img), format="PNG"), d / f"{name}.png")
    inputs = list_inputs(str(out / "train"))
    for sub, cfg in (("llw", SimConfig(ops="llw", levels=(35.0, 70.0, 100.0), combos=6, size=args.size)),
                     ("pro", SimConfig(ops="pro", levels=(50.0, 100.0), combos=6, size=args.size))):
        run_tasks(make_tasks("simulate", inputs, cfg, 3), out / "shards" / sub, workers=args.workers)
    make_portraits(out / "held")
    if not (out / "cases" / "simface").is_dir():
        build_simface(out / "held", out / "cases" / "simface", n=args.cases, seed=3, size=args.case_size)
    if not (out / "cases" / "liquify").is_dir():
        from mirrorppr.eval.liquify import build_liquify

        build_liquify(out / "held", out / "cases" / "liquify", n=args.cases, seed=3, size=args.case_size)
    print(f"training photos: {len(inputs)} of {len(TRAIN_PEOPLE)} people; held out: astronaut, grace_hopper")


if __name__ == "__main__":
    main()
