"""The result of analysing an exemplar pair, and its JSON form (a preset)."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Union

import numpy as np

from ..errors import ConfigError
from ..ops.recipe import Recipe
from .normalize import STEP, U_RANGE, V_RANGE, grid_points

if TYPE_CHECKING:
    from ..body.edit import BodyEdit

FORMAT = "mirrorppr.operation/2"
#: Presets of the first format still load (their provenance is read off their meta).
OLD_FORMATS = ("mirrorppr.operation/1",)

#: What ``auto`` can do with an operation, simplest first.
CHOICES = ("none", "recipe", "recipe+residual", "flow", "paper")


@dataclass(frozen=True)
class Clean:
    """The exemplar reads as a clean warp: a retoucher's liquify or this project's ops.
    Queries get the same clean warp, resampled once."""

    kind: ClassVar[str] = "clean"

    def to_dict(self) -> dict:
        return {"kind": self.kind}


@dataclass(frozen=True)
class Paper:
    """The exemplar was made by the paper's simulator (the LLW specification's
    procedure), as proven by re-rendering it: queries are re-rendered the same way.

    ``canvas`` (x, y, w, h) is the crop of the exemplar the procedure ran on (None: the
    whole photo), ``working_side`` the long side of the picture it ran at when that was
    not the photo's own, ``face_crop`` whether the exemplar already framed its face as
    an aligned crop (with the canvas, how the exemplar's pipeline frames photos)."""

    canvas: tuple[int, int, int, int] | None = None
    working_side: int | None = None
    face_crop: bool = True
    ramp_slope: float = 0.0

    kind: ClassVar[str] = "paper"

    @property
    def edits_any_photo_whole(self) -> bool:
        """The exemplar's photo was no face crop, and yet it was edited whole: that
        pipeline edits every photo whole, so its queries are edited whole too."""
        return not self.face_crop and self.canvas is None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "canvas": None if self.canvas is None else list(self.canvas),
                "working_side": self.working_side, "face_crop": self.face_crop,
                "ramp_slope": round(self.ramp_slope, 6)}


Provenance = Union[Clean, Paper]


def provenance_from_dict(d: dict) -> Provenance:
    if not isinstance(d, dict) or d.get("kind") not in ("clean", "paper"):
        raise ConfigError("preset provenance: expected {'kind': 'clean'} or {'kind': 'paper', ...}")
    if d["kind"] == "clean":
        return Clean()
    canvas = d.get("canvas")
    return Paper(canvas=None if canvas is None else tuple(int(v) for v in canvas),
                 working_side=None if d.get("working_side") is None else int(d["working_side"]),
                 face_crop=bool(d.get("face_crop", True)), ramp_slope=float(d.get("ramp_slope", 0.0)))


@dataclass(frozen=True)
class Candidate:
    """One way to transfer the edit, tried on the exemplar itself: how well it turned
    the before photo into the after photo (PSNR where the photo changed, and its gain
    over doing nothing)."""

    name: str
    psnr_db: float
    gain_db: float

    def to_dict(self) -> dict:
        return {"name": self.name, "psnr_db": round(self.psnr_db, 3), "gain_db": round(self.gain_db, 3)}


@dataclass(frozen=True)
class MotionShares:
    """Where the exemplar's measured motion lies (shares of its energy), and how much of
    it the chosen transfer carries."""

    face: float = 0.0
    body: float = 0.0
    background: float = 0.0
    other_faces: float = 0.0
    transferred: float = 0.0

    def to_dict(self) -> dict:
        return {k: round(getattr(self, k), 4) for k in ("face", "body", "background", "other_faces",
                                                        "transferred")}


@dataclass
class Operation:
    """What a retoucher did, in a form that can be carried to another face.

    ``recipe`` names the library ops that explain the edit; ``flow`` is the whole measured
    motion and ``residual`` the part the recipe leaves unexplained, both on the normalised
    grid (backward displacements in inter-ocular units); ``landmarks`` are the exemplar's
    (before) landmarks in normalised coordinates, the anchor for carrying the fields, and
    ``landmark_motion`` how they moved (detected again on the after photo).

    ``provenance`` says how the exemplar was made (clean warp, or the paper's procedure),
    ``candidates`` how each way of transferring it reproduced the exemplar, ``choice``
    the one ``auto`` uses and ``confidence`` how much of the exemplar's change that one
    reproduced (0 = nothing, 1 = all). ``notes`` are what a user should know.
    ``body`` is the body's part of the edit (its ops, motion and own check).
    """

    recipe: Recipe
    flow: np.ndarray
    residual: np.ndarray
    landmarks: np.ndarray
    landmark_motion: np.ndarray | None = None   # after - before landmarks, normalised
    explained: float = 0.0
    confidence: float = 0.0
    provenance: Provenance = field(default_factory=Clean)
    candidates: tuple[Candidate, ...] = ()
    choice: str = "recipe+residual"
    motion: MotionShares = field(default_factory=MotionShares)
    notes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    #: The body part of the edit (:class:`mirrorppr.body.edit.BodyEdit`), None when the
    #: exemplar shows no body or nothing on it moved.
    body: "BodyEdit | None" = None
    #: The exemplar pair itself (uint8 RGB before, after), kept in memory only: what the
    #: learned ``model`` engine reads instead of the analysis. Never written to presets.
    exemplar: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ConfigError(f"operation choice {self.choice!r}: one of {', '.join(CHOICES)}")

    @classmethod
    def from_pair(cls, source_rgb: np.ndarray, target_rgb: np.ndarray) -> "Operation":
        """An unanalysed operation that only carries the exemplar pair (model engine)."""
        zeros = np.zeros(grid_points().shape, np.float32)
        return cls(recipe=Recipe([]), flow=zeros, residual=zeros.copy(), landmarks=np.zeros((0, 2)),
                   choice="none", meta={"analysed": False}, exemplar=(source_rgb, target_rgb))

    @property
    def summary(self) -> str:
        """The edit in a retoucher's words: the recipe, or what carries it instead."""
        if self.choice == "none":
            return "no structural retouching found"
        if self.choice == "flow" or not len(self.recipe.active()):
            near = self.recipe.summary()
            return "measured motion, carried as a dense field" + (
                f" (nearest ops: {near})" if len(self.recipe.active()) else "")
        return self.recipe.summary()

    @property
    def body_only(self) -> bool:
        """Nothing found on the face, and a body edit carried."""
        return self.choice == "none" and self.body is not None and self.body.choice != "none"

    def describe(self) -> str:
        peak = float(np.hypot(self.flow[..., 0], self.flow[..., 1]).max()) if self.flow.size else 0.0
        body = "" if self.body is None or self.body.choice == "none" else f"; body: {self.body.summary}"
        if self.body_only:
            # The face's numbers would describe nothing.
            return (f"no face retouching found{body} (reproduces {self.body.confidence:.0%} of the "
                    "body's change on the exemplar)")
        how = {"none": "nothing to transfer", "recipe": "transferred as named ops",
               "recipe+residual": "named ops plus the motion they leave",
               "flow": "the measured motion itself", "paper": "the paper's procedure"}[self.choice]
        return (f"{self.summary} ({how}; reproduces {self.confidence:.0%} of the exemplar's change; "
                f"ops explain {self.explained:.0%} of the face motion; peak motion "
                f"{peak * 100:.1f}% of eye distance){body}")

    def is_identity(self) -> bool:
        face = self.choice == "none" or (not len(self.recipe.active()) and not np.abs(self.flow).max(initial=0) > 0)
        return face and (self.body is None or self.body.choice == "none")

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "summary": self.summary,
            "recipe": self.recipe.to_list(),
            "explained": round(self.explained, 4),
            "confidence": round(self.confidence, 4),
            "provenance": self.provenance.to_dict(),
            "choice": self.choice,
            "candidates": [c.to_dict() for c in self.candidates],
            "motion": self.motion.to_dict(),
            "notes": list(self.notes),
            "grid": {"u": list(U_RANGE), "v": list(V_RANGE), "step": STEP},
            "flow": _pack(self.flow),
            "residual": _pack(self.residual),
            "landmarks": np.round(self.landmarks, 5).tolist(),
            "landmark_motion": None if self.landmark_motion is None
            else np.round(self.landmark_motion, 5).tolist(),
            "body": None if self.body is None else self.body.to_dict(),
            "meta": self.meta,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def save(self, path: str | Path) -> Path:
        from ..imageio import atomic_write_text
        return atomic_write_text(Path(path), self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> "Operation":
        from .preset_schema import validate_preset

        validate_preset(data)            # types, sizes and ranges, before anything reads them
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt != FORMAT and fmt not in OLD_FORMATS:
            raise ConfigError(f"not a mirrorppr preset (expected format {FORMAT!r})")
        g = data.get("grid", {})
        if (tuple(g.get("u", ())) != U_RANGE or tuple(g.get("v", ())) != V_RANGE
                or g.get("step") != STEP):
            raise ConfigError("preset was made with another normalised grid; re-run analyze")
        shape = grid_points().shape
        meta = data.get("meta", {})
        explained = float(data.get("explained", 0.0))
        if fmt in OLD_FORMATS:
            provenance, choice = _first_format(meta, explained)
            candidates, motion, notes = (), MotionShares(), ()
        else:
            provenance = provenance_from_dict(data.get("provenance"))
            choice = data.get("choice")
            candidates = tuple(Candidate(str(c["name"]), float(c["psnr_db"]), float(c["gain_db"]))
                               for c in data.get("candidates", []))
            motion = MotionShares(**{k: float(v) for k, v in data.get("motion", {}).items()})
            notes = tuple(str(n) for n in data.get("notes", []))
        body = None
        if data.get("body") is not None:
            from ..body.edit import BodyEdit
            body = BodyEdit.from_dict(data["body"])
        return cls(recipe=Recipe.from_list(data.get("recipe", [])),
                   flow=_unpack(data["flow"], shape), residual=_unpack(data["residual"], shape),
                   landmarks=np.asarray(data["landmarks"], float),
                   landmark_motion=None if data.get("landmark_motion") is None
                   else np.asarray(data["landmark_motion"], np.float32),
                   explained=explained, confidence=float(data.get("confidence", 0.0)),
                   provenance=provenance, candidates=candidates, choice=choice, motion=motion,
                   notes=notes, meta=meta, body=body)

    @classmethod
    def load(cls, path: str | Path) -> "Operation":
        from ..jsonio import read_json
        from .preset_schema import MAX_BYTES

        p = Path(path)
        data = read_json(p, "preset", MAX_BYTES)
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{p}: malformed preset ({exc})") from None


def _first_format(meta: dict, explained: float) -> tuple[Provenance, str]:
    """Provenance and choice of a first-format preset, as its engines read its meta."""
    choice = "recipe+residual" if 1.0 - explained >= 0.5 else "recipe"
    if float(meta.get("ramp_slope", 0.0) or 0.0) > 0:
        canvas = meta.get("canvas")
        return Paper(canvas=None if canvas is None else tuple(int(v) for v in canvas),
                     working_side=meta.get("working_side"), face_crop=bool(meta.get("face_crop", True)),
                     ramp_slope=float(meta["ramp_slope"])), choice
    return Clean(), choice


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
