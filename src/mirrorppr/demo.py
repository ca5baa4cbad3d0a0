"""``make demo``: the main job end to end on photos that ship inside installed wheels.

A retoucher's exemplar is made from Grace Hopper's portrait (before, and after a recipe
of structural edits); the analysis recovers the edit from the two images alone, and the
same retouching is applied to other portraits: the astronaut photo, a mirrored and
rotated copy, a small face in a large 16-bit photo. Everything lands in ``out/``.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from . import samples
from .analyze import analyze
from .edit import edit_pixels
from .imageio import Photo, read_image, write_image
from .landmarks import find_face
from .ops.recipe import Recipe
from .transfer import Retoucher
from .transfer.transport import transport
from .visualize import compare, flow_arrows, panels

#: The exemplar's retouching: what a retoucher might do to a portrait.
EXEMPLAR_RECIPE = Recipe.of(("face_width", -70), ("eye_resize", 60), ("nose_alar", -60),
                            ("smile", 60))


def _queries(out: Path) -> dict[str, Path]:
    astro = read_image(samples.astronaut())
    qdir = out / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    paths = {"astronaut": qdir / "astronaut.png"}
    write_image(astro, paths["astronaut"])
    # Mirrored and rotated: the edit must follow the face, not the pixel grid.
    rgb = astro.rgb8()[:, ::-1]
    m = cv2.getRotationMatrix2D((256, 256), 8, 1.0)
    rot = cv2.warpAffine(np.ascontiguousarray(rgb), m, (512, 512), borderMode=cv2.BORDER_REFLECT)
    paths["astronaut-rotated"] = write_image(Photo(rot, format="JPEG"), qdir / "astronaut-rotated.jpg")
    # A small face in a large 16-bit photo: detection on crops, full resolution kept.
    canvas = np.full((2400, 3600, 3), 30000, np.uint16)
    small = cv2.resize(astro.rgb8(), (360, 360), interpolation=cv2.INTER_AREA).astype(np.uint16) * 257
    canvas[900:1260, 2100:2460] = small
    paths["small-face-16bit"] = write_image(Photo(canvas, format="PNG"), qdir / "small-face-16bit.png")
    return paths


def run_demo(out: Path = Path("out")) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    before = read_image(samples.grace_hopper())
    face = find_face(before.rgb8(), source="grace_hopper")
    after_px = edit_pixels(before.pixels, EXEMPLAR_RECIPE, face=face)
    write_image(before, out / "exemplar-before.jpg")
    write_image(before.with_pixels(after_px), out / "exemplar-after.jpg")
    print(f"exemplar: Grace Hopper retouched with: {EXEMPLAR_RECIPE.summary()}")

    t = time.perf_counter()
    op = analyze(before, after_px, face=face)
    print(f"analysis ({time.perf_counter() - t:.2f} s): {op.describe()}")
    op.save(out / "preset.json")
    f = transport(op.flow, op.landmarks, face.points, before.size)
    write_image(Photo(flow_arrows(before.rgb8(), f.dense())), out / "exemplar-motion.jpg")

    r = Retoucher(op)
    tiles = []
    for name, path in _queries(out).items():
        res = r.run(path)
        dst = out / f"{name}-retouched{path.suffix}"
        write_image(res.photo, dst, protect=(path,))
        q, a = read_image(path).rgb8(), res.photo.rgb8()
        # Show the face large: structural edits are subtle at full-photo scale.
        x0, y0, x1, y1 = (int(v) for v in res.face.box)
        pad = int(0.35 * (x1 - x0))
        sl = np.s_[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]
        k = 512 / max(1, q[sl].shape[0])
        q, a = (cv2.resize(np.ascontiguousarray(x[sl]), None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
                for x in (q, a))
        write_image(Photo(compare(q, a)), out / f"{name}-compare.jpg")
        tiles.append((q, a))
        print(f"{dst} ({res.seconds:.2f} s)")
    row = [before.rgb8(), after_px[..., :3] if after_px.dtype == np.uint8 else before.rgb8()]
    for q, a in tiles:
        row += [q, a]
    labels = ["exemplar before", "exemplar after"] + [s for _ in tiles for s in ("query", "retouched")]
    write_image(Photo(panels(row, labels, height=420)), out / "overview.jpg")
    print(f"overview: {out / 'overview.jpg'}")
