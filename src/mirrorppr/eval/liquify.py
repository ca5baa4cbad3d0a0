"""A liquify-style benchmark that no op of this project made.

Retouchers edit with brushes (Photoshop's Forward Warp, Bloat and Pucker tools, Evoto's
liquify): smooth pushes and radial swells placed on features, mirrored on the other side
of the face. This module imitates that with its own small warp, independent of the
operation library, and places the strokes with dlib's 68-point landmarks (another model
than the face mesh the transfer engines use), so a benchmark built here measures how well
an engine carries an edit it has no op for.

A case is cross-identity: person A before/after a few strokes (the exemplar), person B
(the query) and B's ground truth, made by the same strokes anchored at B's own features,
in B's own face units (inter-ocular distance) and face frame.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, MirrorError
from ..imageio import Photo, atomic_write_text, read_image, write_image

#: dlib 68-point indices of the subject's right (image-left) side and their mirror images.
_MIRROR_68 = {**{i: 16 - i for i in range(17)},
              17: 26, 18: 25, 19: 24, 20: 23, 21: 22, 31: 35, 32: 34,
              36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46,
              48: 54, 49: 53, 50: 52, 55: 59, 56: 58, 60: 64, 61: 63, 67: 65}
_MIRROR_68.update({v: k for k, v in list(_MIRROR_68.items())})
RIGHT_EYE_68 = list(range(36, 42))
LEFT_EYE_68 = list(range(42, 48))


@dataclass(frozen=True)
class Stroke:
    """One brush stroke in image pixels. ``push`` moves content by ``vector``;
    ``bloat`` (``amount`` > 0) swells and ``pucker`` (< 0) shrinks it about ``centre``.
    The weight falls smoothly from 1 at the centre to 0 at ``radius``."""

    kind: str
    centre: tuple[float, float]
    radius: float
    vector: tuple[float, float] = (0.0, 0.0)
    amount: float = 0.0


def _falloff(s: np.ndarray) -> np.ndarray:
    """(1 - s^2)^2 inside the brush: smooth, flat at the centre, zero slope at the rim."""
    w = np.clip(1.0 - s * s, 0.0, None)
    return w * w


def stroke_map(stroke: Stroke, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where an output pixel (x, y) samples the image before this stroke."""
    cx, cy = stroke.centre
    dx, dy = x - cx, y - cy
    w = _falloff(np.sqrt(dx * dx + dy * dy) / stroke.radius)
    if stroke.kind == "push":
        return x - stroke.vector[0] * w, y - stroke.vector[1] * w
    k = 1.0 - stroke.amount * w      # bloat samples closer to the centre: content grows
    return cx + dx * k, cy + dy * k


def backward_map(strokes: list[Stroke], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel of an image of ``size`` (w, h) samples the image before
    the strokes (applied in order): stroke k samples the picture made by strokes 1..k-1,
    so the maps compose from the last."""
    w, h = size
    mx, my = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    for st in reversed(strokes):
        mx, my = stroke_map(st, mx, my)
    return mx, my


def render(pixels: np.ndarray, strokes: list[Stroke]) -> np.ndarray:
    """``pixels`` after the strokes, applied in order (one composed remap, bicubic)."""
    h, w = pixels.shape[:2]
    mx, my = backward_map(strokes, (w, h))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    out = cv2.remap(pixels, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                    borderMode=cv2.BORDER_REPLICATE)
    moved = (np.abs(mx - gx) > 1e-3) | (np.abs(my - gy) > 1e-3)
    res = pixels.copy()
    res[moved] = out.reshape(pixels.shape)[moved]
    return res


# ---------------------------------------------------------------- placement

@dataclass(frozen=True)
class FaceUnits:
    """A face's frame from dlib landmarks: origin between the eyes, x towards the
    subject's left eye (image right), y down the face, unit = inter-ocular distance."""

    points: np.ndarray
    origin: np.ndarray
    ex: np.ndarray
    ey: np.ndarray
    unit: float

    @classmethod
    def of(cls, points: np.ndarray) -> "FaceUnits":
        r, l = points[RIGHT_EYE_68].mean(0), points[LEFT_EYE_68].mean(0)
        unit = float(np.hypot(*(l - r)))
        ex = (l - r) / unit
        ey = np.array([-ex[1], ex[0]])
        if np.dot(ey, points[8] - (r + l) / 2) < 0:
            ey = -ey
        return cls(points, (r + l) / 2, ex, ey, unit)

    def at(self, ids: tuple[int, ...], offset: tuple[float, float]) -> np.ndarray:
        return self.points[list(ids)].mean(0) + (self.ex * offset[0] + self.ey * offset[1]) * self.unit

    def vec(self, v: tuple[float, float]) -> np.ndarray:
        return (self.ex * v[0] + self.ey * v[1]) * self.unit


@dataclass(frozen=True)
class Template:
    """A stroke as a retoucher places it: on features (dlib ids, subject's right side for
    sided templates), an offset and a direction in face units, radius and strength
    ranges in face units. Sided templates are mirrored onto the other side."""

    name: str
    kind: str
    anchor: tuple[int, ...]
    direction: tuple[float, float] = (0.0, 0.0)
    offset: tuple[float, float] = (0.0, 0.0)
    radius: tuple[float, float] = (0.4, 0.6)
    strength: tuple[float, float] = (0.02, 0.05)
    sided: bool = False
    signed: bool = True            # either direction is a plausible edit


TEMPLATES: tuple[Template, ...] = (
    Template("jaw", "push", (4, 5), (1.0, -0.25), radius=(0.55, 0.85), strength=(0.03, 0.08), sided=True),
    Template("cheek", "push", (2, 3), (1.0, 0.0), radius=(0.5, 0.8), strength=(0.03, 0.07), sided=True),
    Template("chin", "push", (8,), (0.0, 1.0), radius=(0.45, 0.7), strength=(0.03, 0.08)),
    Template("eye size", "bloat", (36, 37, 38, 39, 40, 41), radius=(0.35, 0.5), strength=(0.08, 0.2), sided=True),
    Template("eye lift", "push", (36, 37, 38, 39, 40, 41), (0.0, -1.0), radius=(0.35, 0.55),
             strength=(0.02, 0.045), sided=True),
    Template("brow", "push", (19,), (0.0, -1.0), radius=(0.35, 0.55), strength=(0.02, 0.05), sided=True),
    Template("nose", "bloat", (33,), offset=(0.0, -0.12), radius=(0.35, 0.5), strength=(0.08, 0.2)),
    Template("alae", "push", (31,), (1.0, 0.0), radius=(0.2, 0.3), strength=(0.015, 0.035), sided=True),
    Template("upper lip", "push", (51,), (0.0, -1.0), radius=(0.25, 0.4), strength=(0.015, 0.035)),
    Template("lower lip", "push", (57,), (0.0, 1.0), radius=(0.25, 0.4), strength=(0.015, 0.035)),
    Template("mouth corner", "push", (48,), (-0.3, -1.0), radius=(0.25, 0.4), strength=(0.02, 0.04),
             sided=True, signed=False),
    Template("mouth width", "push", (48,), (-1.0, 0.0), radius=(0.25, 0.4), strength=(0.02, 0.04), sided=True),
    Template("hairline", "push", (27,), (0.0, 1.0), offset=(0.0, -1.1), radius=(0.6, 0.9),
             strength=(0.03, 0.07)),
    Template("temple", "push", (0,), (1.0, 0.0), offset=(0.1, -0.6), radius=(0.4, 0.6),
             strength=(0.02, 0.05), sided=True),
    Template("neck", "push", (6,), (1.0, 0.0), offset=(0.05, 0.9), radius=(0.5, 0.8),
             strength=(0.03, 0.07), sided=True),
    Template("nose length", "push", (33,), (0.0, 1.0), radius=(0.3, 0.4), strength=(0.015, 0.035)),
)


@dataclass(frozen=True)
class Draw:
    """One template's random draw, in face units: reusable on any face."""

    template: str
    radius: float
    strength: float            # signed
    asymmetry: float           # the mirrored stroke's strength factor

    def strokes(self, face: FaceUnits) -> list[Stroke]:
        t = next(t for t in TEMPLATES if t.name == self.template)
        sides = [(t.anchor, t.direction, t.offset, 1.0)]
        if t.sided:
            sides.append((tuple(_MIRROR_68[i] for i in t.anchor), (-t.direction[0], t.direction[1]),
                          (-t.offset[0], t.offset[1]), self.asymmetry))
        out = []
        for ids, d, off, k in sides:
            c = face.at(ids, off)
            r = self.radius * face.unit
            if t.kind == "push":
                v = face.vec(d) * (self.strength * k)
                out.append(Stroke("push", (float(c[0]), float(c[1])), float(r),
                                  vector=(float(v[0]), float(v[1]))))
            else:
                out.append(Stroke("bloat", (float(c[0]), float(c[1])), float(r),
                                  amount=float(self.strength * k)))
        return out


def random_draws(rng: random.Random, k_max: int = 3) -> list[Draw]:
    """1..k_max distinct templates with random radius, strength, sign and asymmetry."""
    picks = rng.sample(TEMPLATES, rng.randint(1, k_max))
    out = []
    for t in picks:
        s = rng.uniform(*t.strength)
        if t.signed and rng.random() < 0.5:
            s = -s * (0.75 if t.kind == "bloat" else 1.0)   # pucker a little gentler
        out.append(Draw(t.name, rng.uniform(*t.radius), s, rng.uniform(0.85, 1.15)))
    return out


def dlib_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """68 landmarks of the largest face dlib's HOG detector finds (None if none)."""
    from ..landmarks.identity import _models

    det, sp, _ = _models()
    im = np.ascontiguousarray(rgb)
    up = 1 if max(im.shape[:2]) >= 600 else 2
    faces = det(im, up)
    if not faces:
        return None
    box = max(faces, key=lambda r: r.area())
    shape = sp(im, box)
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def _identity(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def load_people(portraits: Path, size: int = 1024) -> list[tuple[Path, str, np.ndarray, FaceUnits]]:
    """The photos in ``portraits`` in which dlib finds a face, scaled to a long side of at
    most ``size``: (file, person, 8-bit RGB, face units). Files in one sub-folder are one
    person; files directly in it are each their own person."""
    from ..transfer.batch import list_images

    people = []
    for f in list_images(portraits):
        try:
            rgb = read_image(f).rgb8()
        except MirrorError:
            continue
        k = min(1.0, size / max(rgb.shape[:2]))
        if k < 1:
            rgb = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        pts = dlib_landmarks(rgb)
        if pts is not None:
            people.append((f, _identity(f, portraits), rgb, FaceUnits.of(pts)))
    return people


def build_liquify(portraits: Path, out: Path, n: int = 24, seed: int = 0, size: int = 1024,
                  progress: bool = True) -> list[Path]:
    """Write ``n`` cross-identity liquify cases into ``out``; returns their folders.
    Photos are scaled so their long side is at most ``size``. Files in one sub-folder of
    ``portraits`` are one person; files directly in it are each their own person."""
    from tqdm import tqdm

    people = load_people(Path(portraits), size)
    if len({p[1] for p in people}) < 2:
        raise InputError(f"{portraits}: need portraits of at least two people with a face dlib "
                         f"finds (found {len(people)} usable photos)")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in tqdm(range(n), desc="building liquify cases", unit="case", disable=not progress):
        a = people[i % len(people)] if i < len(people) else rng.choice(people)
        b = rng.choice([p for p in people if p[1] != a[1]])
        draws = random_draws(rng)
        target = render(a[2], [s for d in draws for s in d.strokes(a[3])])
        truth = render(b[2], [s for d in draws for s in d.strokes(b[3])])
        made.append(write_case(out / f"liquify-{i:03d}", rng, (a[2], target, b[2], truth), {
            "subset": "liquify", "operation": ", ".join(f"{x.template} {x.strength:+.3f}" for x in draws),
            "strokes": [asdict(x) for x in draws], "exemplar": str(a[0]), "query": str(b[0])}))
    return made


def write_case(d: Path, rng: random.Random, images: tuple[np.ndarray, ...], info: dict) -> Path:
    """One case folder: (source, target, query, ground truth) and ``case.json``. Half the
    exemplars come as a retoucher exports them: JPEG, before and after."""
    source, target, query, truth = images
    d.mkdir(exist_ok=True)
    ext, fmt = (".jpg", "JPEG") if rng.random() < 0.5 else (".png", "PNG")
    for name in ("source", "target"):
        for old in d.glob(f"{name}.*"):
            old.unlink()
    write_image(Photo(source, format=fmt), d / f"source{ext}", quality=95)
    write_image(Photo(target, format=fmt), d / f"target{ext}", quality=95)
    write_image(Photo(query, format="PNG"), d / "query.png")
    write_image(Photo(truth, format="PNG"), d / "ground-truth.png")
    atomic_write_text(d / "case.json", json.dumps({"id": d.name, **info}, indent=1))
    return d
