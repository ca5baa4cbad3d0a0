"""Sharpness kept by the final full-resolution remap, per interpolation kernel.

Two ways the astronaut gets retouched: ``edit`` with the demo's recipe
(``mirrorppr.demo.EXEMPLAR_RECIPE``, fast mode: one composed field, :meth:`Field.apply`),
and the demo itself (that recipe applied to Grace Hopper as the exemplar, analysed, and
transferred to the astronaut by the ``auto`` engine). In the warped area (displacement
over half a pixel, eroded so the edit's border does not count) fine texture is measured
as the variance of the Laplacian, output over input: 100% = nothing blurred. Goal: >= 90%
for the kernel clean edits use (``RENDER_INTERPOLATION``). Also the time of the remap.

Run: ``python benchmarks/bench_render.py`` (about 30 s on 2 cores); prints a Markdown table.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

KERNELS = (("bilinear", cv2.INTER_LINEAR), ("bicubic", cv2.INTER_CUBIC), ("Lanczos-4", cv2.INTER_LANCZOS4))


def laplacian_variance(gray: np.ndarray, mask: np.ndarray) -> float:
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=1)
    return float(lap[mask].var())


def _kept(before: np.ndarray, after: np.ndarray, moved: np.ndarray) -> tuple[float, float, int]:
    mask = cv2.erode(moved.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    base = laplacian_variance(cv2.cvtColor(before, cv2.COLOR_RGB2GRAY), mask)
    return laplacian_variance(cv2.cvtColor(after, cv2.COLOR_RGB2GRAY), mask) / base, base, int(mask.sum())


def measure_edit() -> list[dict]:
    from mirrorppr import samples
    from mirrorppr.demo import EXEMPLAR_RECIPE
    from mirrorppr.imageio import read_image
    from mirrorppr.landmarks import find_face
    from mirrorppr.ops.recipe import recipe_field

    rgb = read_image(samples.astronaut()).rgb8()
    h, w = rgb.shape[:2]
    field, _ = recipe_field(find_face(rgb).points, EXEMPLAR_RECIPE, (w, h))
    moved = np.hypot(*np.moveaxis(field.dense(), 2, 0)) > 0.5
    rows = []
    for name, flag in KERNELS:
        t = time.perf_counter()
        out = field.apply(rgb, interpolation=flag)
        dt = time.perf_counter() - t
        kept, base, n = _kept(rgb, out, moved)
        rows.append({"case": "edit, demo recipe", "kernel": name, "flag": flag, "warped_px": n,
                     "input_var": base, "kept": kept, "seconds": dt})
    return rows


def measure_demo() -> list[dict]:
    """The demo's transfer, the kernel chosen through ``RENDER_INTERPOLATION`` (what
    :meth:`Field.apply` reads when the engine gives none)."""
    from mirrorppr import samples
    from mirrorppr.analyze import analyze
    from mirrorppr.demo import EXEMPLAR_RECIPE
    from mirrorppr.edit import edit_pixels
    from mirrorppr.imageio import read_image
    from mirrorppr.landmarks import find_face
    from mirrorppr.transfer import Retoucher
    from mirrorppr.warp import field as field_mod

    before = read_image(samples.grace_hopper())
    face = find_face(before.rgb8())
    op = analyze(before, edit_pixels(before.pixels, EXEMPLAR_RECIPE, face=face), face=face)
    query = read_image(samples.astronaut()).rgb8()
    default = field_mod.RENDER_INTERPOLATION
    outs = {}
    try:
        for name, flag in KERNELS:
            field_mod.RENDER_INTERPOLATION = flag
            t = time.perf_counter()
            outs[name] = (Retoucher(op).apply(query).pixels, time.perf_counter() - t, flag)
    finally:
        field_mod.RENDER_INTERPOLATION = default
    # Warped area: where the bilinear and bicubic results differ from the query.
    moved = np.zeros(query.shape[:2], bool)
    for px, _, _ in outs.values():
        moved |= np.abs(px.astype(np.int16) - query).max(axis=2) > 0
    rows = []
    for name, (px, dt, flag) in outs.items():
        kept, base, n = _kept(query, px, moved)
        rows.append({"case": "demo transfer (auto)", "kernel": name, "flag": flag, "warped_px": n,
                     "input_var": base, "kept": kept, "seconds": dt})
    return rows


def main() -> None:
    from mirrorppr.warp.field import RENDER_INTERPOLATION

    print("| astronaut 512x512 | kernel | warped pixels | input Laplacian variance | kept | time |")
    print("|---|---|---|---|---|---|")
    for r in measure_edit() + measure_demo():
        name = r["kernel"] + (" (default)" if r["flag"] == RENDER_INTERPOLATION else "")
        what = "remap" if r["case"].startswith("edit") else "retouch"
        print(f"| {r['case']} | {name} | {r['warped_px']:,} | {r['input_var']:.0f} | "
              f"{r['kept']:.1%} | {r['seconds'] * 1000:.0f} ms ({what}) |")


if __name__ == "__main__":
    main()
