"""What a preset (``mirrorppr.operation/N`` JSON) may contain, checked field by field.

:func:`validate_preset` runs before an :class:`~mirrorppr.analyze.operation.Operation` is
built from a dict, so nothing downstream ever sees a wrong type, a NaN, a motion that
would tear the face apart or an array sized to exhaust memory. Each check is one small
function named after its field; a failure is a :class:`ConfigError` (exit 6) whose one
line names the field. Unknown extra keys are tolerated (newer versions may add some);
known keys are strictly typed.

Bounds, in the preset's own units (normalised face coordinates: 1 = the inter-ocular
distance):

- ``flow`` / ``residual``: displacements of at most :data:`MOTION_LIMIT` (one eye
  distance: a larger move is no retouch), finite, inside the grid.
- ``landmarks``: exactly 478 finite points within :data:`LANDMARK_LIMIT` of the eyes'
  midpoint; ``landmark_motion`` the same count, within :data:`MOTION_LIMIT`.
- ``recipe``: known operations, strengths in [-100, 100], at most :data:`MAX_STEPS`.
"""
from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from ..jsonio import MAX_DEPTH
from .normalize import STEP, U_RANGE, V_RANGE, grid_points
from .operation import CHOICES, FORMAT, OLD_FORMATS

#: Largest displacement a preset may hold, in eye distances.
MOTION_LIMIT = 1.0
#: Farthest a landmark may lie from the eyes' midpoint, in eye distances.
LANDMARK_LIMIT = 10.0
#: Landmarks per face (MediaPipe's refined mesh).
LANDMARKS = 478
#: Most steps a recipe may have.
MAX_STEPS = 64
#: Largest preset file read (bytes); a real one is well under 1 MB.
MAX_BYTES = 8 * 2 ** 20
#: Longest free-text field (summary, notes, names in meta).
MAX_TEXT = 10_000
#: Most entries of the list fields (candidates, notes).
MAX_ITEMS = 64
#: Most values a free-form field (``meta``) may hold; a real one has a few dozen.
MAX_VALUES = 10_000
#: Largest |value| of a PSNR or gain in dB.
DB_LIMIT = 1000.0


def validate_preset(data: Any) -> None:
    """Raise :class:`ConfigError` unless ``data`` is a well-formed preset dict."""
    if not isinstance(data, dict):
        raise ConfigError(f"not a mirrorppr preset: expected a JSON object with format {FORMAT!r}, "
                          f"got {_kind(data)}")
    _format(data.get("format"))
    for key, check, required in FIELDS:
        if key not in data:
            if required:
                raise ConfigError(f"preset: field {key!r} is missing")
            continue
        check(data[key])


# ------------------------------------------------------------------ fields
def _format(value: Any) -> None:
    if value != FORMAT and value not in OLD_FORMATS:
        got = f"{value!r}"[:60] if value is not None else "none"
        raise ConfigError(f"preset: field 'format' must be {FORMAT!r} (got {got}); "
                          "not a mirrorppr preset, or made by an incompatible version")


def _grid(value: Any) -> None:
    g = _object(value, "grid")
    for key, want in (("u", U_RANGE), ("v", V_RANGE)):
        pair = g.get(key)
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_number(x) for x in pair)):
            raise ConfigError(f"preset: field 'grid.{key}' must be a list of two numbers")
        if tuple(float(x) for x in pair) != want:
            raise _other_grid()
    if not _is_number(g.get("step")):
        raise ConfigError("preset: field 'grid.step' must be a number")
    if float(g["step"]) != STEP:
        raise _other_grid()


def _motion_grid(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        p = _object(value, name)
        h, w = grid_points().shape[:2]
        box = p.get("box")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_int(x) for x in box)):
            raise ConfigError(f"preset: field '{name}.box' must be 4 integers [x0, y0, x1, y1]")
        x0, y0, x1, y1 = box
        if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
            raise ConfigError(f"preset: field '{name}.box' {box} lies outside the {w}x{h} grid")
        data = p.get("data")
        if not isinstance(data, str):
            raise ConfigError(f"preset: field '{name}.data' must be a base64 string")
        n = (x1 - x0) * (y1 - y0) * 2
        if len(data) != 4 * math.ceil(n * 2 / 3):
            raise ConfigError(f"preset: field '{name}.data' holds the wrong amount of data for its box "
                              f"({len(data)} base64 characters, {4 * math.ceil(n * 2 / 3)} expected)")
        if n == 0:
            return
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"preset: field '{name}.data' is not valid base64") from None
        values = np.frombuffer(raw, dtype="<f2")
        _bounded(values, f"{name}.data", MOTION_LIMIT)
    return check


def _landmarks(value: Any) -> None:
    _points(value, "landmarks", LANDMARK_LIMIT)


def _landmark_motion(value: Any) -> None:
    if value is not None:
        _points(value, "landmark_motion", MOTION_LIMIT)


def _recipe(value: Any) -> None:
    from ..ops.recipe import Recipe

    try:
        Recipe.from_list(value, max_steps=MAX_STEPS)
    except ConfigError as exc:
        raise ConfigError(f"preset: field 'recipe': {exc}") from None


def _share(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"preset: field {name!r} must be a number in [0, 1] (got {_short(value)})")
    return check


def _provenance(value: Any) -> None:
    p = _object(value, "provenance")
    kind = p.get("kind")
    if kind not in ("clean", "paper"):
        raise ConfigError(f"preset: field 'provenance.kind' must be 'clean' or 'paper' (got {_short(kind)})")
    if kind == "paper":
        for key, check in PAPER_FIELDS.items():
            if p.get(key) is not None:
                check(p[key], f"provenance.{key}")


def _choice(value: Any) -> None:
    if value not in CHOICES:
        raise ConfigError(f"preset: field 'choice' must be one of {', '.join(CHOICES)} (got {_short(value)})")


def _candidates(value: Any) -> None:
    items = _list(value, "candidates")
    for i, c in enumerate(items):
        c = _object(c, f"candidates[{i}]")
        _meta_text(c.get("name"), f"candidates[{i}].name")
        for key in ("psnr_db", "gain_db"):
            v = c.get(key)
            if not _is_number(v) or abs(float(v)) > DB_LIMIT:
                raise ConfigError(f"preset: field 'candidates[{i}].{key}' must be a finite number of dB "
                                  f"(got {_short(v)})")


def _motion(value: Any) -> None:
    m = _object(value, "motion")
    for key, v in m.items():
        if key not in MOTION_KEYS:
            raise ConfigError(f"preset: field 'motion.{key}' is unknown (known: {', '.join(MOTION_KEYS)})")
        if not _is_number(v) or not 0.0 <= float(v) <= 1.0:
            raise ConfigError(f"preset: field 'motion.{key}' must be a share in [0, 1] (got {_short(v)})")


def _body(value: Any) -> None:
    """The body part: its recipe (body ops only), choice, check and motion strokes
    (named parts and sides, finite and bounded place, size and push)."""
    from ..body.edit import BODY_CHOICES
    from ..body.parts import PART_INDEX
    from ..ops.base import get_op

    if value is None:
        return
    b = _object(value, "body")
    _recipe(b.get("recipe", []))
    if any(get_op(s["op"] if isinstance(s, dict) else s[0]).family != "body" for s in b.get("recipe", [])):
        raise ConfigError("preset: field 'body.recipe' may hold body ops only")
    if b.get("choice", "none") not in BODY_CHOICES:
        raise ConfigError(f"preset: field 'body.choice' must be one of {', '.join(BODY_CHOICES)} "
                          f"(got {_short(b.get('choice'))})")
    _share("body.confidence")(b.get("confidence", 0.0))
    turn = b.get("turn")
    if turn is not None and (not _is_number(turn) or not 0.0 <= float(turn) <= 100.0):
        raise ConfigError(f"preset: field 'body.turn' must be a number in [0, 100] (got {_short(turn)})")
    _candidates(b.get("candidates", []))
    for i, p in enumerate(_list(b.get("parts", []), "body.parts")):
        if p not in PART_INDEX:
            raise ConfigError(f"preset: field 'body.parts[{i}]' is not a body part (got {_short(p)})")
    for i, r in enumerate(_list(b.get("reads", []), "body.reads")):
        if not isinstance(r, str) or not 0 < len(r) <= 80 or not r.isprintable():
            raise ConfigError(f"preset: field 'body.reads[{i}]' must be a short text (got {_short(r)})")
    m = _object(b.get("motion", {}), "body.motion")
    for i, p in enumerate(_list(m.get("seen", []), "body.motion.seen")):
        if p not in PART_INDEX:
            raise ConfigError(f"preset: field 'body.motion.seen[{i}]' is not a body part (got {_short(p)})")
    if "parts" in m:
        raise ConfigError("preset: field 'body.motion' holds part grids of an older version; re-run analyze")
    for i, st in enumerate(_list(m.get("strokes", []), "body.motion.strokes")):
        where = f"body.motion.strokes[{i}]"
        st = _object(st, where)
        if "anchors" not in st:             # a single part's stroke (the previous version)
            _stroke_anchor(st, where)
            continue
        anchors = _list(st["anchors"], f"{where}.anchors")
        if not anchors:
            raise ConfigError(f"preset: field '{where}.anchors' must name at least one part")
        for j, a in enumerate(anchors):
            _stroke_anchor(_object(a, f"{where}.anchors[{j}]"), f"{where}.anchors[{j}]")


def _stroke_anchor(a: dict, where: str) -> None:
    """A stroke's anchor on a part: a named part and side, finite and bounded place, size,
    push and weight."""
    from ..body.motion import MAX_PUSH, MAX_SIZE
    from ..body.parts import PART_INDEX, S_RANGE, TORSO

    if a.get("part") not in PART_INDEX and a.get("part") != TORSO:
        raise ConfigError(f"preset: field '{where}.part' is not a body part (got {_short(a.get('part'))})")
    if a.get("side") not in (0, 1):
        raise ConfigError(f"preset: field '{where}.side' must be 0 or 1 (got {_short(a.get('side'))})")
    limits = {"s": (S_RANGE[0], S_RANGE[1]), "q": (-1.0, 10.0), "size": (1e-6, MAX_SIZE),
              "along": (-MAX_PUSH, MAX_PUSH), "across": (-MAX_PUSH, MAX_PUSH), "scale": (1e-3, 100.0),
              "pose": (-180.0, 180.0), "weight": (1e-6, 1.0)}
    for key, (lo, hi) in limits.items():
        v = a.get(key, {"scale": 1.0, "pose": 0.0, "weight": 1.0}.get(key))   # these optional
        if not _is_number(v) or not lo <= float(v) <= hi:
            raise ConfigError(f"preset: field '{where}.{key}' must be a number in [{lo:g}, {hi:g}] "
                              f"(got {_short(v)})")


def _notes(value: Any) -> None:
    for i, n in enumerate(_list(value, "notes")):
        _meta_text(n, f"notes[{i}]")


def _summary(value: Any) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ConfigError(f"preset: field 'summary' must be text of at most {MAX_TEXT} characters")


def _meta(value: Any) -> None:
    m = _object(value, "meta")
    _depth(m, "meta")
    for key, check in META_FIELDS.items():
        if m.get(key) is not None:
            check(m[key], f"meta.{key}")


# ------------------------------------------------------------------ meta fields the engines read
def _meta_number(value: Any, name: str) -> None:
    if not _is_number(value) or not math.isfinite(float(value)) or abs(float(value)) > 1e6:
        raise ConfigError(f"preset: field {name!r} must be a finite number (got {_short(value)})")


def _meta_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"preset: field {name!r} must be true or false (got {_short(value)})")


def _meta_side(value: Any, name: str) -> None:
    if not _is_int(value) or not 16 <= value <= 100_000:
        raise ConfigError(f"preset: field {name!r} must be an integer number of pixels in [16, 100000]")


def _meta_canvas(value: Any, name: str) -> None:
    if not (isinstance(value, list) and len(value) == 4 and all(_is_int(x) for x in value)
            and all(abs(x) <= 100_000 for x in value) and value[2] > 0 and value[3] > 0):
        raise ConfigError(f"preset: field {name!r} must be [x, y, width, height] in pixels")


def _meta_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ConfigError(f"preset: field {name!r} must be text of at most {MAX_TEXT} characters")


# ------------------------------------------------------------------ helpers
def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"preset: field {name!r} must be an object (got {_kind(value)})")
    return value


def _list(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"preset: field {name!r} must be a list (got {_kind(value)})")
    if len(value) > MAX_ITEMS:
        raise ConfigError(f"preset: field {name!r} has {len(value)} entries, at most {MAX_ITEMS}")
    return value


def _points(value: Any, name: str, limit: float) -> None:
    if not isinstance(value, list):
        raise ConfigError(f"preset: field {name!r} must be a list of [x, y] points (got {_kind(value)})")
    if len(value) != LANDMARKS:
        raise ConfigError(f"preset: field {name!r} must hold {LANDMARKS} points (got {len(value)})")
    if not all(isinstance(p, list) and len(p) == 2 and _is_number(p[0]) and _is_number(p[1]) for p in value):
        raise ConfigError(f"preset: field {name!r} must be a list of [x, y] number pairs")
    _bounded(np.asarray(value, np.float64), name, limit)


def _bounded(values: np.ndarray, name: str, limit: float) -> None:
    if not np.isfinite(values).all():
        raise ConfigError(f"preset: field {name!r} holds NaN or infinite values")
    peak = float(np.abs(values).max(initial=0.0))
    if peak > limit:
        raise ConfigError(f"preset: field {name!r} holds {peak:.3g}, beyond the limit of {limit:g} "
                          "eye distances")


def _depth(value: Any, name: str) -> None:
    """Nesting depth and size of a free-form value, iteratively (a dict built in Python
    was not bounded by the file reader)."""
    stack = [(value, 1)]
    seen = 1
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            raise ConfigError(f"preset: field {name!r} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, (dict, list, tuple)):
            seen += len(v)
            if seen > MAX_VALUES:
                raise ConfigError(f"preset: field {name!r} holds more than {MAX_VALUES:,} values")
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false",
            type(None): "null"}.get(type(x), "a number" if isinstance(x, (int, float)) else type(x).__name__)


def _short(x: Any) -> str:
    return repr(x)[:40]


def _other_grid() -> ConfigError:
    return ConfigError("preset: field 'grid' differs from this version's normalised grid; "
                       "re-run analyze to make the preset again")


#: (key, check, required) for the top level, in the order they are checked.
FIELDS: tuple[tuple[str, Callable[[Any], None], bool], ...] = (
    ("grid", _grid, True),
    ("flow", _motion_grid("flow"), True),
    ("residual", _motion_grid("residual"), True),
    ("landmarks", _landmarks, True),
    ("landmark_motion", _landmark_motion, False),
    ("recipe", _recipe, False),
    ("explained", _share("explained"), False),
    ("confidence", _share("confidence"), False),
    ("summary", _summary, False),
    ("provenance", _provenance, False),
    ("choice", _choice, False),
    ("candidates", _candidates, False),
    ("motion", _motion, False),
    ("notes", _notes, False),
    ("body", _body, False),
    ("meta", _meta, False),
)

#: Keys of ``meta`` that the engines read, and their checks (others: any JSON).
META_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "ramp_slope": _meta_number,
    "image_refined_gain_db": _meta_number,
    "face_crop": _meta_bool,
    "working_side": _meta_side,
    "canvas": _meta_canvas,
    "source": _meta_text,
    "target": _meta_text,
}

#: Fields of a ``paper`` provenance (first-format presets keep them in ``meta``).
PAPER_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "canvas": _meta_canvas,
    "working_side": _meta_side,
    "face_crop": _meta_bool,
    "ramp_slope": _meta_number,
}

#: The shares ``motion`` may hold.
MOTION_KEYS = ("face", "body", "background", "other_faces", "transferred")

__all__ = ["validate_preset", "MOTION_LIMIT", "LANDMARK_LIMIT", "MAX_BYTES", "MAX_STEPS"]
