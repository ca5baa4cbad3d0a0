"""The result of analysing an exemplar pair, and its JSON form (a preset)."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..ops.recipe import Recipe
from .normalize import STEP, U_RANGE, V_RANGE, grid_points

FORMAT = "mirrorppr.operation/1"


@dataclass
class Operation:
    """What a retoucher did, in a form that can be carried to another face.

    ``recipe`` names the library ops that explain the edit; ``flow`` is the whole measured
    motion and ``residual`` the part the recipe leaves unexplained, both on the normalised
    grid (backward displacements in inter-ocular units); ``landmarks`` are the exemplar's
    (before) landmarks in normalised coordinates, the anchor for carrying the fields, and
    ``landmark_motion`` how they moved (detected again on the after photo).
    """

    recipe: Recipe
    flow: np.ndarray
    residual: np.ndarray
    landmarks: np.ndarray
    landmark_motion: np.ndarray | None = None   # after - before landmarks, normalised
    explained: float = 0.0
    confidence: float = 0.0
    meta: dict = field(default_factory=dict)
    #: The exemplar pair itself (uint8 RGB before, after), kept in memory only: what the
    #: learned ``model`` engine reads instead of the analysis. Never written to presets.
    exemplar: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_pair(cls, source_rgb: np.ndarray, target_rgb: np.ndarray) -> "Operation":
        """An unanalysed operation that only carries the exemplar pair (model engine)."""
        zeros = np.zeros(grid_points().shape, np.float32)
        return cls(recipe=Recipe([]), flow=zeros, residual=zeros.copy(), landmarks=np.zeros((0, 2)),
                   meta={"analysed": False}, exemplar=(source_rgb, target_rgb))

    @property
    def summary(self) -> str:
        return self.recipe.summary()

    def describe(self) -> str:
        peak = float(np.hypot(self.flow[..., 0], self.flow[..., 1]).max()) if self.flow.size else 0.0
        return (f"{self.summary} (recipe explains {self.explained:.0%} of the measured motion; "
                f"confidence {self.confidence:.2f}; peak motion {peak * 100:.1f}% of eye distance)")

    def is_identity(self) -> bool:
        return not len(self.recipe.active()) and not np.abs(self.flow).max(initial=0) > 0

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "summary": self.summary,
            "recipe": self.recipe.to_list(),
            "explained": round(self.explained, 4),
            "confidence": round(self.confidence, 4),
            "grid": {"u": list(U_RANGE), "v": list(V_RANGE), "step": STEP},
            "flow": _pack(self.flow),
            "residual": _pack(self.residual),
            "landmarks": np.round(self.landmarks, 5).tolist(),
            "landmark_motion": None if self.landmark_motion is None
            else np.round(self.landmark_motion, 5).tolist(),
            "meta": self.meta,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def save(self, path: str | Path) -> Path:
        from ..imageio import atomic_write_text
        return atomic_write_text(Path(path), self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> "Operation":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"not a mirrorppr preset (expected format {FORMAT!r})")
        g = data.get("grid", {})
        if (tuple(g.get("u", ())) != U_RANGE or tuple(g.get("v", ())) != V_RANGE
                or g.get("step") != STEP):
            raise ConfigError("preset was made with another normalised grid; re-run analyze")
        shape = grid_points().shape
        return cls(recipe=Recipe.from_list(data.get("recipe", [])),
                   flow=_unpack(data["flow"], shape), residual=_unpack(data["residual"], shape),
                   landmarks=np.asarray(data["landmarks"], float),
                   landmark_motion=None if data.get("landmark_motion") is None
                   else np.asarray(data["landmark_motion"], np.float32),
                   explained=float(data.get("explained", 0.0)),
                   confidence=float(data.get("confidence", 0.0)), meta=data.get("meta", {}))

    @classmethod
    def load(cls, path: str | Path) -> "Operation":
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{p}: no such preset file")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid JSON ({exc})") from None
        try:
            return cls.from_dict(data)
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{p}: malformed preset ({exc})") from None


def _pack(grid: np.ndarray) -> dict:
    """Only the non-zero bounding box, as little-endian float16, base64."""
    mag = np.abs(grid).max(axis=2)
    nz = np.nonzero(mag > 0)
    if len(nz[0]) == 0:
        return {"box": [0, 0, 0, 0], "data": ""}
    y0, y1 = int(nz[0].min()), int(nz[0].max()) + 1
    x0, x1 = int(nz[1].min()), int(nz[1].max()) + 1
    sub = grid[y0:y1, x0:x1].astype("<f2")
    return {"box": [x0, y0, x1, y1], "data": base64.b64encode(sub.tobytes()).decode("ascii")}


def _unpack(packed: dict, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    x0, y0, x1, y1 = packed["box"]
    if x1 > x0 and y1 > y0:
        sub = np.frombuffer(base64.b64decode(packed["data"]), dtype="<f2")
        out[y0:y1, x0:x1] = sub.reshape(y1 - y0, x1 - x0, 2).astype(np.float32)
    return out
