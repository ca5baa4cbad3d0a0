"""What an operation is, and the one registry that holds them all.

An operation turns a face's landmarks and a strength in [-100, 100] into a
:class:`Geometry`: points that move (with their targets), points that stay (anchors),
and the polygons whose blurred union limits where pixels may change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError

STRENGTH_LIMIT = 100.0


@dataclass(frozen=True)
class Geometry:
    """One operation instantiated on one face (pixel coordinates)."""

    moving: np.ndarray                  # (K, 2) where the moved points are now
    targets: np.ndarray                 # (K, 2) where they go
    anchors: np.ndarray                 # (A, 2) points held fixed
    regions: tuple[np.ndarray, ...]     # polygons; the union of their convex hulls is the blend region
    blur: float | None = None           # blend-mask blur kernel in pixels; None = the LLW spec's rule
    spec_grid: bool = False             # solve on the LLW spec's coarse grid (30 px nodes)...
    spec_ramp: bool = True              # ...and upsample its absolute map as the spec does
                                        # (cv2.resize: a position-dependent shift inside the mask)

    @property
    def is_identity(self) -> bool:
        return bool(np.allclose(self.moving, self.targets))


#: f(points, f) -> Geometry, where f is the signed fraction of the op's maximum.
GeometryFn = Callable[[np.ndarray, float], Geometry]


@dataclass(frozen=True)
class Op:
    """A named retouching operation with two directions.

    ``strength`` s in [-100, 100] maps to the signed fraction
    ``f = s/100 * max_pos`` (s > 0) or ``s/100 * max_neg`` (s < 0).
    """

    name: str
    labels: tuple[str, str]             # (s > 0, s < 0), e.g. ("Enlarge eyes", "Shrink eyes")
    group: str                          # eyes, brows, nose, mouth, face-shape, ...
    family: str                         # "llw" (paper's simulated ops) or "pro" (this project's)
    max_pos: float
    max_neg: float
    build: GeometryFn = field(repr=False, compare=False)
    moves: tuple[int, ...] = ()         # landmark ids it moves (documentation, UI)
    anchors: tuple[int, ...] = ()       # landmark ids it holds
    description: str = ""

    def fraction(self, strength: float) -> float:
        s = float(strength)
        if not -STRENGTH_LIMIT <= s <= STRENGTH_LIMIT:
            raise ConfigError(f"{self.name}: strength {s:g} outside [-100, 100]")
        return s / 100.0 * (self.max_pos if s >= 0 else self.max_neg)

    def geometry(self, points: np.ndarray, strength: float) -> Geometry:
        """Instantiate on a face's (478, 2) landmarks."""
        return self.build(np.asarray(points, dtype=np.float64), self.fraction(strength))

    def label(self, strength: float) -> str:
        return self.labels[0] if strength >= 0 else self.labels[1]

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "group": self.group,
                "family": self.family, "max": [self.max_pos, self.max_neg],
                "moves": list(self.moves), "anchors": list(self.anchors),
                "description": self.description}


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"operation {op.name!r} registered twice")
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op:
    try:
        return REGISTRY[name]
    except KeyError:
        close = [n for n in REGISTRY if name.replace("-", "_") in n or n in name]
        hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
        raise ConfigError(f"unknown operation {name!r}{hint}; `mirrorppr ops` lists them") from None


#: The families of ops that act on a face's landmarks (``body`` ops act on a skeleton).
FACE_FAMILIES = ("llw", "pro")


def ops_in(family: str | None = None) -> list[Op]:
    """The registered ops of one family (``llw``, ``pro``, ``body``), or all of them."""
    return [op for op in REGISTRY.values() if family is None or op.family == family]


def face_ops() -> list[Op]:
    """The ops that act on face landmarks, in registry order."""
    return [op for op in REGISTRY.values() if op.family in FACE_FAMILIES]


def is_body_op(name: str) -> bool:
    return get_op(name).family == "body"
