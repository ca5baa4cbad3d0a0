"""A liquify-style body benchmark that no op of this project made.

Retouchers reshape bodies with the same brushes as faces: a push out or in at each
shoulder's end, the shoulder tops raised or lowered, the waist pushed in at both sides,
the upper arms slimmed along their outer edge. This module places such strokes (the
small warp of :mod:`.liquify`, not the body ops) from the raw pose keypoints and the
person mask, in body units (the shoulder width), mirrored on both sides with a little
asymmetry. The strokes' heights along the torso and arms are drawn at random, not put
where the body ops put theirs (the waist op finds the narrowest band; here the stroke
lands anywhere between 55% and 80% of the way from shoulder to hip).

A case: person A before and after the strokes (the exemplar), person B (the query, in
their own pose) and B's ground truth, the same draw placed on B's own body.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..body import detect as K
from ..body.detect import Body, find_body
from ..errors import InputError, MirrorError
from ..imageio import read_image
from .liquify import Stroke, render, write_case

#: (name, keypoints it needs, radius range, strength range; body units)
TEMPLATES: tuple[tuple[str, tuple[int, ...], tuple[float, float], tuple[float, float]], ...] = (
    ("shoulder width", (K.L_SHOULDER, K.R_SHOULDER), (0.3, 0.45), (0.025, 0.06)),
    ("shoulder height", (K.L_SHOULDER, K.R_SHOULDER, K.NOSE), (0.25, 0.4), (0.02, 0.045)),
    ("waist", (K.L_SHOULDER, K.R_SHOULDER, K.L_HIP, K.R_HIP), (0.25, 0.4), (0.02, 0.05)),
    ("upper arm", (K.L_SHOULDER, K.R_SHOULDER, K.L_ELBOW, K.R_ELBOW), (0.15, 0.25), (0.015, 0.035)),
)


@dataclass(frozen=True)
class BodyDraw:
    """One template's draw, in body units: ``where`` is the share along the part."""

    template: str
    radius: float
    strength: float        # signed: > 0 outward (or up), < 0 inward (or down)
    where: float
    asymmetry: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(*v)), 1e-9)


def _edge(body: Body, start: np.ndarray, direction: np.ndarray, reach: float) -> np.ndarray:
    """Where the person mask ends going from ``start`` along ``direction``."""
    r = np.linspace(0.0, reach, 80)
    pts = start[None, :] + r[:, None] * direction[None, :]
    inside = body.mask_at(pts) > 0.5
    out = np.nonzero(~inside)[0]
    return pts[out[0]] if len(out) else pts[-1]


def _units(body: Body) -> tuple[float, np.ndarray, np.ndarray]:
    """Shoulder width, the unit vector from the right to the left shoulder, and up."""
    k = body.keypoints
    across = k[K.L_SHOULDER] - k[K.R_SHOULDER]
    u = float(np.hypot(*across))
    ex = across / max(u, 1e-9)
    up = np.array([ex[1], -ex[0]])
    if float(up @ (k[K.NOSE] - (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2)) < 0:
        up = -up
    return u, ex, up


def strokes_for(draw: BodyDraw, body: Body) -> list[Stroke]:
    """The draw placed on ``body`` (both sides)."""
    k = body.keypoints
    u, ex, up = _units(body)
    mid = (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2
    out = []
    for side, factor in ((K.L_SHOULDER, 1.0), (K.R_SHOULDER, draw.asymmetry)):
        s = draw.strength * factor * u
        away = _unit(k[side] - mid)
        if draw.template == "shoulder width":
            c, v = k[side] + 0.06 * u * away, away * s
        elif draw.template == "shoulder height":
            c, v = k[side] + 0.1 * u * up + 0.03 * u * away, up * s
        elif draw.template == "waist":
            hip = K.L_HIP if side == K.L_SHOULDER else K.R_HIP
            on_bone = k[side] + draw.where * (k[hip] - k[side])
            c = _edge(body, on_bone, away, 0.8 * u)
            v = away * s
        else:
            elbow = K.L_ELBOW if side == K.L_SHOULDER else K.R_ELBOW
            on_bone = k[side] + draw.where * (k[elbow] - k[side])
            bone = _unit(k[elbow] - k[side])
            n = np.array([-bone[1], bone[0]])
            n = n if float(n @ away) >= 0 else -n
            c = _edge(body, on_bone, n, 0.5 * u)
            v = n * s
        out.append(Stroke("push", (float(c[0]), float(c[1])), float(draw.radius * u),
                          vector=(float(v[0]), float(v[1]))))
    return out


def random_body_draws(rng: random.Random, seen_a: Body, seen_b: Body, k_max: int = 2) -> list[BodyDraw]:
    """1..k_max templates that both bodies show, with random size, strength and place."""
    ok = [t for t in TEMPLATES if seen_a.visible(*t[1]) and seen_b.visible(*t[1])]
    if not ok:
        return []
    out = []
    for name, _, radius, strength in rng.sample(ok, rng.randint(1, min(k_max, len(ok)))):
        s = rng.uniform(*strength)
        if rng.random() < (0.7 if name in ("waist", "upper arm") else 0.5):
            s = -s                     # slimming is the common edit
        where = rng.uniform(0.55, 0.8) if name == "waist" else rng.uniform(0.35, 0.65)
        out.append(BodyDraw(name, rng.uniform(*radius), s, where, rng.uniform(0.85, 1.15)))
    return out


def build_body_liquify(photos: Path, out: Path, n: int = 16, seed: int = 0, size: int = 1024,
                       progress: bool = True) -> list[Path]:
    """Write ``n`` cross-identity body cases into ``out`` from photos in which a person's
    shoulders show; returns their folders. Each file is its own person."""
    from tqdm import tqdm

    from ..landmarks import find_face
    from ..transfer.batch import list_images

    people: list[tuple[Path, np.ndarray, Body]] = []
    for f in list_images(Path(photos)):
        try:
            rgb = read_image(f).rgb8()
            k = min(1.0, size / max(rgb.shape[:2]))
            if k < 1:
                rgb = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            body = find_body(rgb, find_face(rgb, source=str(f)).box)
        except MirrorError:
            continue
        if body is not None and body.visible(K.L_SHOULDER, K.R_SHOULDER):
            people.append((f, rgb, body))
    if len(people) < 2:
        raise InputError(f"{photos}: need photos of at least two people whose face and shoulders show "
                         f"(found {len(people)})")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in tqdm(range(n), desc="building body cases", unit="case", disable=not progress):
        for _ in range(20):
            a = people[i % len(people)] if i < len(people) else rng.choice(people)
            b = rng.choice([p for p in people if p[0] != a[0]])
            draws = random_body_draws(rng, a[2], b[2])
            if draws:
                break
        else:
            continue
        target = render(a[1], [s for d in draws for s in strokes_for(d, a[2])])
        truth = render(b[1], [s for d in draws for s in strokes_for(d, b[2])])
        made.append(write_case(out / f"body-{i:03d}", rng, (a[1], target, b[1], truth), {
            "subset": "body-liquify", "operation": ", ".join(f"{x.template} {x.strength:+.3f}" for x in draws),
            "strokes": [asdict(x) for x in draws], "exemplar": str(a[0]), "query": str(b[0])}))
    return made
