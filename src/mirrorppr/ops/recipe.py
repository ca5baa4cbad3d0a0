"""A recipe: an ordered list of (operation, strength), applied to a photo.

``exact`` mode is the paper's: landmarks detected again before every op, each op warped
and blended in pixels. ``fast`` mode detects once, carries the landmarks through each
op's motion, composes all ops into one displacement field and resamples the photo once
(16-bit, alpha and untouched pixels kept exactly).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..warp.field import Field
from .apply import apply_exact, geometry_field
from .base import get_op


@dataclass(frozen=True)
class Step:
    op: str
    strength: float

    def label(self) -> str:
        return f"{get_op(self.op).label(self.strength)} {self.strength:+.0f}"


@dataclass
class Recipe:
    """Ordered operations with strengths in [-100, 100]."""

    steps: list[Step] = field(default_factory=list)

    @classmethod
    def of(cls, *pairs: tuple[str, float]) -> "Recipe":
        return cls([Step(op, float(s)) for op, s in pairs])

    @classmethod
    def parse(cls, items: list[str]) -> "Recipe":
        """From CLI items ``NAME=STRENGTH``."""
        steps = []
        for item in items:
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--op {item!r}: expected NAME=STRENGTH, e.g. eye_resize=40")
            try:
                s = float(value)
            except ValueError:
                raise ConfigError(f"--op {item!r}: strength {value!r} is not a number") from None
            get_op(name.strip()).fraction(s)  # validates name and range
            steps.append(Step(name.strip(), s))
        return cls(steps)

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def active(self, threshold: float = 0.5) -> "Recipe":
        return Recipe([s for s in self.steps if abs(s.strength) >= threshold])

    def scaled(self, k: float, overrides: dict[str, float] | None = None) -> "Recipe":
        """Strengths times ``k`` (clipped to [-100, 100]); ``overrides`` set named ops."""
        overrides = overrides or {}
        out = [Step(s.op, float(np.clip(overrides.get(s.op, s.strength * k), -100, 100)))
               for s in self.steps]
        for name, value in overrides.items():
            if not any(s.op == name for s in self.steps):
                get_op(name).fraction(value)
                out.append(Step(name, float(value)))
        return Recipe(out)

    def summary(self) -> str:
        act = self.active()
        return ", ".join(s.label() for s in act) if len(act) else "no operation"

    def to_list(self) -> list[dict]:
        return [{"op": s.op, "strength": round(s.strength, 3)} for s in self.steps]

    def to_json(self) -> str:
        return json.dumps({"recipe": self.to_list()}, indent=2)

    @classmethod
    def from_list(cls, items: list) -> "Recipe":
        steps = []
        for it in items:
            if isinstance(it, dict) and "op" in it and "strength" in it:
                name, s = it["op"], it["strength"]
            elif isinstance(it, (list, tuple)) and len(it) == 2:
                name, s = it
            else:
                raise ConfigError(f"recipe step {it!r}: expected {{'op': NAME, 'strength': S}}")
            get_op(name).fraction(float(s))
            steps.append(Step(name, float(s)))
        return cls(steps)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"recipe is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = data.get("recipe", data.get("steps"))
        if not isinstance(data, list):
            raise ConfigError("recipe JSON must be a list of steps or {\"recipe\": [...]}")
        return cls.from_list(data)

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{p}: no such recipe file")
        return cls.from_json(p.read_text())


def recipe_field(points: np.ndarray, recipe: Recipe, size: tuple[int, int],
                 working: int = 1024) -> tuple[Field, np.ndarray]:
    """Fast mode: all ops composed into one backward field, plus the moved landmarks."""
    pts = np.asarray(points, np.float64)
    total: Field | None = None
    for step in recipe.active():
        op = get_op(step.op)
        src = np.round(pts) if op.family == "llw" else pts
        f = geometry_field(op.geometry(src, step.strength), size, working)
        pts = f.forward_points(pts)
        total = f if total is None else total.then(f)
    if total is None:
        total = Field.zeros(size, working)
    return total, pts


def apply_recipe_exact(pixels: np.ndarray, recipe: Recipe, detect, points: np.ndarray | None = None
                       ) -> np.ndarray:
    """Paper mode: ``detect(pixels) -> (478, 2) points`` is called before every op
    (``points`` may give the first detection)."""
    out = pixels
    for i, step in enumerate(recipe.active()):
        op = get_op(step.op)
        pts = points if (i == 0 and points is not None) else detect(out)
        src = np.round(pts) if op.family == "llw" else pts
        out = apply_exact(out, op.geometry(src, step.strength))
    return out.copy() if out is pixels else out
