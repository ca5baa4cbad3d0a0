"""Making training pairs: the simulated subset (ops applied to portraits) and the
professional subset (a retoucher's before/after pairs, validated).

Each function turns one input into samples and never raises for a bad input: it
returns a failure reason instead, so a large run counts failures and goes on.

Simulated samples also store the exact displacement that made the target (record key
``field``, see :func:`encode_field`): the composed backward field of the recipe's ops,
mask and (for the paper's procedure) its resampling ramp included, so a model can be
supervised by the motion itself and not only by pixels. Shards written before this key
existed stay readable; they simply have no field.
"""
from __future__ import annotations

import base64
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import MirrorError
from ..eval.metrics import pixel_difference
from ..imageio import read_image
from ..landmarks import find_face
from ..ops import get_op, ops_in
from ..ops.base import face_ops
from ..ops.apply import apply_exact, blend_mask, displacement, geometry_field, region_box
from ..ops.recipe import Recipe, Step, recipe_field
from ..warp.field import Field
from .augment import draw, rng_for
from .shards import Sample


@dataclass(frozen=True)
class SimConfig:
    ops: str = "llw"                        # llw | pro | all
    levels: tuple[float, ...] = (100.0,)    # strength magnitudes; both directions each
    combos: int = 0                         # random multi-op recipes per portrait
    size: int = 1024                        # long side of stored images
    seed: int = 0
    materialize: bool = False               # also store query / ground truth (A applied)
    fmt: str = "png"


def load_portrait(uri: str) -> np.ndarray:
    """8-bit RGB of a local path or any fsspec URL (s3://, gs://, https://, memory://...)."""
    if "://" not in uri or uri.startswith("file://"):
        return read_image(uri.removeprefix("file://")).rgb8()
    import fsspec

    with fsspec.open(uri, "rb") as fh:
        data = fh.read()
    suffix = Path(uri).suffix or ".img"
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return read_image(tmp).rgb8()
    finally:
        os.unlink(tmp)


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    k = size / max(rgb.shape[:2])
    if abs(k - 1) < 1e-6:
        return rgb
    return cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)


def image_id(name: str) -> str:
    """A key-safe id from an input's path relative to the input root (WebDataset keys may
    not contain dots): ``people/ann/01.jpg`` -> ``people-ann-01``."""
    stem = name.strip("/").rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name.strip("/")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem)


def _key(iid: str, recipe: Recipe) -> str:
    parts = [f"{s.op}{'p' if s.strength >= 0 else 'm'}{abs(int(round(s.strength))):03d}" for s in recipe]
    return f"{iid}_{'_'.join(parts)}"


def _ops(cfg: SimConfig) -> list:
    return face_ops() if cfg.ops == "all" else ops_in(cfg.ops)


def recipes_for(iid: str, cfg: SimConfig) -> list[Recipe]:
    """The paper's layout: every op in both directions at each level, plus combos."""
    ops = _ops(cfg)
    out = [Recipe([Step(op.name, sign * lv)]) for op in ops for lv in cfg.levels for sign in (1, -1)]
    rng = rng_for(cfg.seed, f"combos:{iid}")
    for _ in range(cfg.combos):
        names = rng.choice([op.name for op in ops], size=int(rng.integers(2, 4)), replace=False)
        out.append(Recipe([Step(str(n), float(rng.integers(30, 101) * rng.choice([-1, 1])))
                           for n in names]))
    return out


def samples_per_input(cfg: SimConfig) -> int:
    """How many samples one portrait yields (when its face is found)."""
    n_ops = len(_ops(cfg))
    return n_ops * len(cfg.levels) * 2 + cfg.combos


def _sample(key: str, iid: str, subset: str, src: np.ndarray, tgt: np.ndarray, recipe: Recipe | None,
            lm_src: np.ndarray | None, lm_tgt: np.ndarray | None, cfg: SimConfig, extra: dict) -> Sample:
    aug = draw(cfg.seed, key, (src.shape[1], src.shape[0]))
    record = {"key": key, "image_id": iid, "subset": subset, "seed": cfg.seed,
              "recipe": recipe.to_list() if recipe is not None else [],
              "landmarks_source": None if lm_src is None else np.round(lm_src, 2).tolist(),
              "landmarks_target": None if lm_tgt is None else np.round(lm_tgt, 2).tolist(),
              "augment": aug.to_dict(), "size": [int(src.shape[1]), int(src.shape[0])],
              "format": cfg.fmt, **extra}
    images = {"source": src, "target": tgt}
    if cfg.materialize:
        images["query"] = aug.apply(src)
        images["ground_truth"] = aug.apply(tgt)
    return Sample(key, images, record)


#: Long side (cells) of a stored displacement field: fine enough for the op's motion
#: (the procedure's own grid is 30 px), small enough for the record.
FIELD_CELLS = 256


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 6)).decode("ascii")


def _unpack(text: str, dtype, shape) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype).reshape(shape)


def encode_field(field: Field, blend: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """A :class:`Field` as JSON: its image size, cell grid and float16 values, zlib'd and
    base64'd (most of a face edit's field is zero, so it packs small). ``blend``: the
    paper procedure's unmasked motion and blend mask on the same cells (its pixels are a
    blend of warped and original ones through the mask), the mask stored as uint8."""
    d = field.d.astype(np.float16)
    rec = {"size": [int(field.size[0]), int(field.size[1])], "cells": [int(d.shape[1]), int(d.shape[0])],
           "dtype": "float16", "data": _pack(d)}
    if blend is not None:
        rec["motion"] = _pack(blend[0].astype(np.float16))
        rec["mask"] = _pack(np.clip(np.round(blend[1] * 255), 0, 255).astype(np.uint8))
    return rec


def decode_field(rec: dict | None) -> Field | None:
    """Inverse of :func:`encode_field` (None for samples stored without a field)."""
    if not rec:
        return None
    w, h = rec["cells"]
    d = _unpack(rec["data"], rec.get("dtype", "float16"), (h, w, 2))
    return Field(d.astype(np.float32), (int(rec["size"][0]), int(rec["size"][1])))


def decode_blend(rec: dict | None) -> tuple[Field, np.ndarray] | None:
    """The unmasked motion (a :class:`Field`) and blend mask (float32 in [0, 1]) of
    :func:`encode_field`, or None (the target is a plain warp by the field)."""
    if not rec or "mask" not in rec or "motion" not in rec:
        return None
    w, h = rec["cells"]
    motion = Field(_unpack(rec["motion"], np.float16, (h, w, 2)).astype(np.float32),
                   (int(rec["size"][0]), int(rec["size"][1])))
    return motion, _unpack(rec["mask"], np.uint8, (h, w)).astype(np.float32) / 255.0


def edit_with_field(src: np.ndarray, recipe: Recipe, points: np.ndarray, exact: bool, detect,
                    cells: int = FIELD_CELLS) -> tuple[np.ndarray, Field, tuple[np.ndarray, np.ndarray] | None]:
    """The target of ``recipe`` on ``src``, the exact backward field that made it, and
    (paper procedure only) the motion and blend mask behind it.

    ``exact``: the paper's procedure, as :func:`mirrorppr.edit.edit_pixels` runs it
    (landmarks detected again before every op, each op warped and blended, truncated);
    the field is each op's displacement with its blend mask and the procedure's
    resampling ramp folded in, composed in order. Its pixels blend warped and original
    ones, which no warp alone reproduces, so the ops' unmasked motion (averaged by mask
    where two overlap) and the union of their masks come too. Otherwise the fast path:
    one composed field, applied once (exactly what moved the pixels), and None."""
    h, w = src.shape[:2]
    if not exact:
        f, _ = recipe_field(points, recipe, (w, h))
        return f.apply(src), f.resampled(_cells((w, h), cells)), None
    cw, ch = _cells((w, h), cells)
    out, total = src, None
    keep = np.ones((ch, cw), np.float32)
    num = np.zeros((ch, cw, 2), np.float32)
    den = np.zeros((ch, cw), np.float32)
    for i, step in enumerate(recipe.active()):
        op = get_op(step.op)
        pts = points if i == 0 else detect(out)
        geom = op.geometry(np.round(pts) if op.family == "llw" else pts, step.strength)
        out = apply_exact(out, geom)
        f = geometry_field(geom, (w, h), cells, spec=True)
        total = f if total is None else total.then(f)
        m = cv2.resize(blend_mask(geom, (w, h), cw / w), (cw, ch), interpolation=cv2.INTER_AREA)
        keep *= 1.0 - m
        box = region_box(geom, (w, h))
        if box is not None and not geom.is_identity:
            d = displacement(geom, (w, h), (cw, ch), box)
            x0, y0 = int(box[0] / (w / cw)), int(box[1] / (h / ch))
            sl = (slice(y0, y0 + d.shape[0]), slice(x0, x0 + d.shape[1]))
            dm = d[: ch - y0, : cw - x0]
            num[sl] += dm * m[sl][..., None]
            den[sl] += m[sl]
    if total is None:
        total = Field.zeros((w, h), cells)
    motion = np.where(den[..., None] > 1e-6, num / np.maximum(den, 1e-6)[..., None], 0.0).astype(np.float32)
    return (out.copy() if out is src else out), total, (motion, 1.0 - keep)


def _cells(size: tuple[int, int], cells: int) -> tuple[int, int]:
    from ..warp.field import working_shape

    return working_shape(size, cells)


def simulate_portrait(uri: str, cfg: SimConfig, name: str | None = None) -> tuple[list[Sample], str | None]:
    """All simulated samples of one portrait, or ([], reason). ``name``: its path relative
    to the input root (the sample ids derive from it)."""
    iid = image_id(name or uri.rstrip("/").split("/")[-1])
    try:
        src = _resize(load_portrait(uri), cfg.size)
        face = find_face(src, source=uri)
    except MirrorError as exc:
        return [], _reason(exc)
    except Exception as exc:  # unreadable in ways the reader did not foresee
        return [], f"error: {type(exc).__name__}"
    samples = []

    def detect(px: np.ndarray) -> np.ndarray:
        return find_face(px, source="image").points      # as edit_pixels detects

    for recipe in recipes_for(iid, cfg):
        exact = all(get_op(s.op).family == "llw" for s in recipe)
        try:
            tgt, fld, blend = edit_with_field(src, recipe, face.points, exact, detect)
            lm_t = find_face(tgt, source=uri).points
        except MirrorError:
            continue
        samples.append(_sample(_key(iid, recipe), iid, "simulated", src, tgt, recipe, face.points,
                               lm_t, cfg, {"source_uri": uri, "field": encode_field(fld, blend),
                                           "procedure": "exact" if exact else "fast"}))
    return samples, None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for key in ("no face", "several", "too small", "only", "not a readable", "corrupt", "limit"):
        if key in text:
            return {"only": "face too small"}.get(key, key)
    return type(exc).__name__


# ---------------------------------------------------------------- professional pairs

#: Validation thresholds for professional pairs.
SAME_PERSON = 0.93          # dlib descriptor cosine (unit vectors): the same photo retouched scores ~0.98
MAX_CHANGED = 0.35          # share of pixels that may change (retouching is local)
MAX_GLOBAL_SHIFT = 12.0     # mean absolute level difference of unchanged areas (exposure)


def find_pairs(folder: Path) -> list[tuple[Path, Path, str]]:
    """(before, after, name) from ``NAME.ext`` + ``NAME_retouched.ext``, or ``before/`` and
    ``after/`` with matching names."""
    from ..imageio import is_image_file

    folder = Path(folder)
    pairs = []
    if (folder / "before").is_dir() and (folder / "after").is_dir():
        after = {p.stem: p for p in (folder / "after").iterdir() if is_image_file(p)}
        for b in sorted((folder / "before").iterdir()):
            if is_image_file(b) and b.stem in after:
                pairs.append((b, after[b.stem], b.stem))
        return pairs
    files = {p.stem: p for p in folder.iterdir() if is_image_file(p)}
    for stem, p in sorted(files.items()):
        if stem.endswith("_retouched") and stem[: -len("_retouched")] in files:
            pairs.append((files[stem[: -len("_retouched")]], p, stem[: -len("_retouched")]))
    return pairs


def validate_pair(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The after image aligned to the before image, or a rejection reason."""
    if before.shape[:2] != after.shape[:2]:
        hb, wb = before.shape[:2]
        ha, wa = after.shape[:2]
        if abs(ha / wa - hb / wb) > 0.01:
            return None, "size mismatch"
        after = cv2.resize(after, (wb, hb), interpolation=cv2.INTER_AREA if wa > wb else cv2.INTER_CUBIC)
    from ..landmarks.identity import descriptor

    da, db = descriptor(before), descriptor(after)
    if da is None or db is None:
        return None, "no face"
    if float(da @ db) < SAME_PERSON:
        return None, "different person"
    diff = pixel_difference(before, after)
    if float((diff > 24).mean()) > MAX_CHANGED or float(np.median(diff)) > MAX_GLOBAL_SHIFT:
        return None, "global change"
    return after, None


def professional_pair(before_uri: str, after_uri: str, name: str, cfg: SimConfig,
                      labels: dict | None = None) -> tuple[list[Sample], str | None]:
    try:
        b = _resize(load_portrait(before_uri), cfg.size)
        a = load_portrait(after_uri)
    except MirrorError as exc:
        return [], _reason(exc)
    a = _resize(a, cfg.size) if a.shape[:2] != b.shape[:2] else a
    a, reason = validate_pair(b, a)
    if reason:
        return [], reason
    try:
        lm_b = find_face(b, source=before_uri).points
        lm_a = find_face(a, source=after_uri).points
    except MirrorError as exc:
        return [], _reason(exc)
    iid = image_id(name)
    recipe = None
    if labels and labels.get(name):
        recipe = Recipe.from_list(labels[name])
    extra = {"source_uri": before_uri, "target_uri": after_uri}
    key = f"{iid}_pro"
    return [_sample(key, iid, "professional", b, a, recipe, lm_b, lm_a, cfg, extra)], None
