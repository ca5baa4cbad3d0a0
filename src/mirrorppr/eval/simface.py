"""SimFace-style benchmarks, built the paper's way from any folder of portraits.

Each case is cross-identity: an exemplar person (source, and target = source retouched
with a random recipe of 1-3 LLW ops) and a different query person whose ground truth is
the same recipe applied to the query, with the paper's exact procedure. Identity: files
in the same sub-folder are one person; files directly in the folder are each their own.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np

from .. import samples
from ..edit import edit_pixels
from ..errors import InputError, MirrorError
from ..imageio import Photo, atomic_write_text, read_image, write_image
from ..landmarks import find_face
from ..ops import ops_in
from ..ops.recipe import Recipe, Step
from ..transfer.batch import list_images

#: Strength magnitudes drawn for the ops (the paper often uses the maximum, 100).
STRENGTH_RANGE = (30, 100)


def _identity(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return str(rel.parts[0]) if len(rel.parts) > 1 else str(rel)


def random_recipe(rng: random.Random, k_max: int = 3) -> Recipe:
    ops = rng.sample([op.name for op in ops_in("llw")], rng.randint(1, k_max))
    steps = []
    for name in ops:
        s = rng.randint(*STRENGTH_RANGE) * rng.choice((-1, 1))
        steps.append(Step(name, float(s)))
    return Recipe(steps)


def build_simface(portraits: Path, out: Path, n: int = 100, seed: int = 0, size: int = 1024,
                  progress: bool = True) -> list[Path]:
    """Write ``n`` case folders into ``out``; returns their paths. Every portrait is
    rescaled so its long side is ``size`` (the paper's simulated data is 1024 px)."""
    from tqdm import tqdm

    files = list_images(Path(portraits))
    usable: list[tuple[Path, str, np.ndarray]] = []
    for f in files:
        try:
            rgb = read_image(f).rgb8()
            k = size / max(rgb.shape[:2])
            if k != 1:
                rgb = cv2.resize(rgb, None, fx=k, fy=k,
                                 interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
            find_face(rgb, source=str(f))
            usable.append((f, _identity(f, Path(portraits)), rgb))
        except MirrorError:
            continue
    if len({ident for _, ident, _ in usable}) < 2:
        raise InputError(f"{portraits}: need portraits of at least two people (found "
                         f"{len(usable)} usable photos of {len({i for _, i, _ in usable})})")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    bar = tqdm(total=n, desc="building cases", unit="case", disable=not progress)
    tries = 0
    while len(made) < n and tries < n * 5:
        tries += 1
        a = rng.choice(usable)
        others = [u for u in usable if u[1] != a[1]]
        b = rng.choice(others)
        recipe = random_recipe(rng)
        try:
            target = edit_pixels(a[2], recipe, mode="exact")
            gt = edit_pixels(b[2], recipe, mode="exact")
        except MirrorError:
            continue
        d = out / f"sim-{len(made):03d}"
        d.mkdir(exist_ok=True)
        for name, img in (("source", a[2]), ("target", target), ("query", b[2]), ("ground-truth", gt)):
            write_image(Photo(img, format="PNG"), d / f"{name}.png")
        atomic_write_text(d / "case.json", json.dumps({
            "id": d.name, "subset": "simulated", "operation": recipe.summary(),
            "recipe": recipe.to_list(), "exemplar": str(a[0]), "query": str(b[0])}, indent=1))
        made.append(d)
        bar.update()
    bar.close()
    return made


def make_portraits(out: Path) -> list[Path]:
    """Real portraits from the installed wheels plus variants (mirror, rotation, crop,
    rescale, exposure), one sub-folder per person: material for a local benchmark."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for person, path in samples.portraits().items():
        rgb = read_image(path).rgb8()
        d = out / person
        d.mkdir(exist_ok=True)
        h, w = rgb.shape[:2]
        variants = {"original": rgb, "mirrored": rgb[:, ::-1]}
        for ang in (-8, -4, 4, 8):
            m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
            variants[f"rot{ang:+d}"] = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        variants["crop"] = rgb[h // 10: h - h // 20, w // 12: w - w // 12]
        variants["large"] = cv2.resize(rgb, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
        variants["darker"] = np.clip(rgb.astype(np.float32) * 0.8, 0, 255).astype(np.uint8)
        for name, img in variants.items():
            made.append(write_image(Photo(np.ascontiguousarray(img), format="PNG"), d / f"{name}.png"))
    return made
