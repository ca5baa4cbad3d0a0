"""``data inspect`` (counts and a contact sheet) and ``data verify`` (every record
decodes; every quadruplet is aligned)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..visualize import panels
from .augment import Augment, draw
from .shards import Manifest, read_shard, shard_paths


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
    man = Manifest.load(folder)
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
    aug = Augment.from_dict(s.record["augment"])
    h, w = s.images["source"].shape[:2]
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
