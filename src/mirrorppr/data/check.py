"""``data inspect`` (counts and a contact sheet) and ``data verify`` (every record
decodes, its values are in range, every quadruplet is aligned).

``verify`` exits 0 when all is well and 8 when it found problems (listed one a line);
a path that is no shard folder is an input error (exit 3).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..visualize import panels
from .augment import ANGLES, AREA, ASPECT, BUCKETS, Augment, draw
from .shards import MANIFEST, Manifest, read_shard, shard_paths

#: Landmarks may lie this far outside their image (a face cut by the frame), in pixels
#: relative to its long side.
LANDMARK_MARGIN = 0.5


def check_folder(folder: Path) -> None:
    """Refuse a path that is not a shard folder (exit 3), before reporting on it."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (a shard folder holds {MANIFEST} and shard-*.tar)")
    if not (folder / MANIFEST).exists() and not any(folder.glob("*.tar")):
        raise InputError(f"{folder}: not a shard folder (no {MANIFEST}, no .tar shards)")


def inspect(folder: Path, sheet: Path | None = None, n: int = 8, seed: int = 0) -> dict:
    """Manifest totals; with ``sheet``, a contact sheet of ``n`` random samples showing
    source, target, query = A(source), ground truth = A(target)."""
    totals = Manifest.load(folder).totals()
    if sheet is not None:
        rng = random.Random(seed)
        samples = [s for p in shard_paths(folder) for s in read_shard(p)]
        rows = []
        for s in rng.sample(samples, min(n, len(samples))):
            aug = Augment.from_dict(s.record["augment"])
            q = s.images.get("query", aug.apply(s.images["source"]))
            g = s.images.get("ground_truth", aug.apply(s.images["target"]))
            label = ", ".join(f"{st['op']} {st['strength']:+.0f}" for st in s.record.get("recipe", [])) or s.key
            rows.append(panels([s.images["source"], s.images["target"], q, g],
                               [label[:40], "target", "query = A(source)", "truth = A(target)"], height=256))
        if rows:
            width = max(r.shape[1] for r in rows)
            rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
            from ..imageio import Photo, write_image
            write_image(Photo(np.concatenate(rows, axis=0), format="JPEG"), sheet)
    return totals


@dataclass
class VerifyReport:
    samples: int = 0
    shards: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(folder: Path, seed: int | None = None) -> VerifyReport:
    """Decode everything; check manifest counts, the stored A against its (seed, key)
    draw, and that materialised query/ground truth are exactly A(source)/A(target)."""
    rep = VerifyReport()
    try:
        man = Manifest.load(folder)
    except InputError as exc:
        rep.problems.append(str(exc))
        return rep
    for entry in man.entries:
        path = Path(folder) / entry["shard"]
        if not path.exists():
            rep.problems.append(f"{entry['shard']}: listed in the manifest but missing")
            continue
        rep.shards += 1
        n = 0
        try:
            for s in read_shard(path):
                n += 1
                rep.samples += 1
                _check_sample(s, rep, seed)
        except Exception as exc:  # a broken tar or image: report, keep checking others
            rep.problems.append(f"{entry['shard']}: unreadable ({exc})")
            continue
        if n != entry["samples"]:
            rep.problems.append(f"{entry['shard']}: {n} samples, manifest says {entry['samples']}")
    for stray in Path(folder).glob("*.tar"):
        if stray.name not in man.done():
            rep.problems.append(f"{stray.name}: a shard not in the manifest")
    return rep


def _check_sample(s, rep: VerifyReport, seed: int | None) -> None:
    for k in ("source", "target"):
        if k not in s.images:
            rep.problems.append(f"{s.key}: no {k} image")
            return
    if s.images["source"].shape != s.images["target"].shape:
        rep.problems.append(f"{s.key}: source and target sizes differ")
    h, w = s.images["source"].shape[:2]
    found = _value_problems(s.record, (w, h))
    rep.problems.extend(f"{s.key}: {p}" for p in found)
    if found:
        return
    aug = Augment.from_dict(s.record["augment"])
    expect = draw(s.record.get("seed", 0) if seed is None else seed, s.key, (w, h))
    if expect != aug:
        rep.problems.append(f"{s.key}: stored augmentation differs from its (seed, key) draw")
    lossless = s.record.get("format", "png") == "png"
    for name, base in (("query", "source"), ("ground_truth", "target")):
        if name not in s.images:
            continue
        want = aug.apply(s.images[base])
        same = (np.array_equal(s.images[name], want) if lossless
                else float(np.abs(s.images[name].astype(int) - want).mean()) < 3.0)
        if not same:
            rep.problems.append(f"{s.key}: {name} is not A({base})")


def _value_problems(record: dict, size: tuple[int, int]) -> list[str]:
    """Values of a record outside what the data engine makes."""
    from ..ops.recipe import Recipe

    out = []
    if not isinstance(record, dict):
        return ["record is not a JSON object"]
    try:
        Recipe.from_list(record.get("recipe", []))
    except ConfigError as exc:
        out.append(f"recipe: {exc}")
    W, H = size
    if record.get("size") not in (None, [W, H]):
        out.append(f"size {record.get('size')!r:.40} differs from the stored images' {W}x{H}")
    margin = LANDMARK_MARGIN * max(W, H)
    for key in ("landmarks_source", "landmarks_target"):
        pts = record.get(key)
        if pts is None:
            continue
        try:
            a = np.asarray(pts, dtype=np.float64)
        except (TypeError, ValueError):
            out.append(f"{key}: not a list of [x, y] points")
            continue
        if a.ndim != 2 or a.shape[1] != 2:
            out.append(f"{key}: shape {a.shape}, expected (N, 2)")
        elif not np.isfinite(a).all():
            out.append(f"{key}: NaN or infinite coordinates")
        elif (a.min(axis=0) < -margin).any() or (a[:, 0] > W + margin).any() or (a[:, 1] > H + margin).any():
            out.append(f"{key}: points far outside the {W}x{H} image")
    out.extend(_augment_problems(record.get("augment"), (W, H)))
    return out


def _augment_problems(aug: object, size: tuple[int, int]) -> list[str]:
    if not isinstance(aug, dict):
        return ["augment: missing or not an object"]
    fields = {"cx": float, "cy": float, "w": float, "h": float, "angle": float, "flip": bool,
              "out_w": int, "out_h": int}
    for k, kind in fields.items():
        v = aug.get(k)
        ok = isinstance(v, bool) if kind is bool else (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
        if not ok:
            return [f"augment.{k}: {v!r:.30} is not a valid {kind.__name__}"]
    W, H = size
    out = []
    area = aug["w"] * aug["h"] / (W * H)
    if not AREA[0] - 1e-6 <= area <= AREA[1] + 1e-6:
        out.append(f"augment: crop covers {area:.0%} of the image, outside {AREA[0]:.0%}-{AREA[1]:.0%}")
    aspect = aug["w"] / aug["h"] if aug["h"] > 0 else math.inf
    if not ASPECT[0] - 1e-6 <= aspect <= ASPECT[1] + 1e-6 and area < 1 - 1e-6:
        out.append(f"augment: crop aspect {aspect:.2f} outside 1/3-3")
    if aug["angle"] not in ANGLES:
        out.append(f"augment: rotation {aug['angle']:g} is not one of {list(ANGLES)}")
    if (aug["out_w"], aug["out_h"]) not in BUCKETS:
        out.append(f"augment: output size {aug['out_w']}x{aug['out_h']} is not a size bucket")
    return out
