"""A recipe: an ordered list of (operation, strength), applied to a photo.

``fast`` mode (here) detects once, carries the landmarks through each op's motion,
composes all ops into one displacement field and resamples the photo once (16-bit, alpha
and untouched pixels kept exactly). ``exact`` mode, the paper's procedure (landmarks
detected again before every op, each op warped and blended in pixels), lives in
:mod:`mirrorppr.paper.render`.
"""
from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..warp.field import Field
from .apply import geometry_field
from .base import get_op


#: Most steps a recipe file or preset may hold (a real one has a handful).
MAX_STEPS = 256
#: Largest recipe file read (bytes).
MAX_RECIPE_BYTES = 2 ** 20


@dataclass(frozen=True)
class Step:
    op: str
    strength: float

    def label(self) -> str:
        return f"{get_op(self.op).label(self.strength)} {self.strength:+.0f}"

    @classmethod
    def checked(cls, op: object, strength: object, where: str) -> "Step":
        """A step from untrusted values: ``op`` a known name, ``strength`` a finite
        number in [-100, 100]; otherwise a :class:`ConfigError` naming ``where``."""
        if not isinstance(op, str):
            raise ConfigError(f"{where}: 'op' must be an operation name (text), got {op!r:.40}")
        if isinstance(strength, bool) or not isinstance(strength, numbers.Real):
            raise ConfigError(f"{where}: 'strength' must be a number, got {strength!r:.40}")
        s = float(strength)
        if not -100.0 <= s <= 100.0:   # also refuses NaN
            raise ConfigError(f"{where}: {op} strength {s:g} outside [-100, 100]")
        get_op(op).fraction(s)        # a known name (the message lists close ones)
        return cls(op, s)


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
            steps.append(Step.checked(name.strip(), s, f"--op {item!r}"))
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
    def from_list(cls, items: object, max_steps: int = MAX_STEPS) -> "Recipe":
        """From ``[{"op": NAME, "strength": S}, ...]`` (or ``[NAME, S]`` pairs), every
        value checked: a :class:`ConfigError` names the first bad step."""
        if not isinstance(items, list):
            raise ConfigError(f"a recipe must be a list of steps, got {type(items).__name__}")
        if len(items) > max_steps:
            raise ConfigError(f"a recipe has {len(items)} steps, at most {max_steps} are allowed")
        steps = []
        for i, it in enumerate(items, 1):
            where = f"recipe step {i}"
            if isinstance(it, dict) and "op" in it and "strength" in it:
                name, s = it["op"], it["strength"]
            elif isinstance(it, (list, tuple)) and len(it) == 2:
                name, s = it
            else:
                raise ConfigError(f"{where}: expected {{\"op\": NAME, \"strength\": S}}, got {it!r:.60}")
            steps.append(Step.checked(name, s, where))
        return cls(steps)

    @classmethod
    def from_json(cls, text: str, name: str = "recipe") -> "Recipe":
        """From JSON text: a list of steps, or ``{"recipe": [...]}`` / ``{"steps": [...]}``."""
        from ..jsonio import parse_json

        return cls.from_data(parse_json(text, name, "recipe"), name)

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        """From a recipe file (size, encoding and nesting bounded before parsing)."""
        from ..jsonio import read_json
        from ..outputs import note_input

        note_input(path)
        return cls.from_data(read_json(path, "recipe", MAX_RECIPE_BYTES), str(path))

    @classmethod
    def from_data(cls, data: object, name: str = "recipe") -> "Recipe":
        """From parsed JSON: a list of steps, or an object holding one under "recipe"."""
        if isinstance(data, dict):
            data = data.get("recipe", data.get("steps"))
        if not isinstance(data, list):
            raise ConfigError(f"{name}: a recipe is a JSON list of steps or {{\"recipe\": [...]}}")
        try:
            return cls.from_list(data)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None


def recipe_field(points: np.ndarray, recipe: Recipe, size: tuple[int, int],
                 working: int = 1024) -> tuple[Field, np.ndarray]:
    """Fast mode: all ops composed into one backward field, plus the moved landmarks."""
    pts = np.asarray(points, np.float64)
    total: Field | None = None
    for step in recipe.active():
        op = get_op(step.op)
        if op.family == "body":
            continue            # body ops act on a skeleton (mirrorppr.body.edit)
        src = np.round(pts) if op.family == "llw" else pts
        f = geometry_field(op.geometry(src, step.strength), size, working)
        pts = f.forward_points(pts)
        total = f if total is None else total.then(f)
    if total is None:
        total = Field.zeros(size, working)
    return total, pts
