"""A streaming PyTorch dataset over the shards: model-ready quadruplets, curriculum
mixing between subsets, sharded across data-loader workers and distributed ranks.

Each (rank, worker) reads a disjoint, fixed slice of the shard list, so an epoch sees
every sample once. Subsets (simulated, professional) are separate streams; each step
draws the next sample from a subset chosen with the curriculum's weights at that step.
The schedule is plain data: ``[[step, {"simulated": w, "professional": w}], ...]``,
interpolated linearly between points.

Sizes: with ``size`` set, query and ground truth keep the aspect of the augmentation's
size bucket, scaled to about ``size``^2 pixels with sides a multiple of ``multiple``,
exactly as the pipeline sizes a query at inference (``working_size``); :class:`Buckets`
batches samples of one shape together. Exemplars (source, target) are resized to
``size`` x ``size``: the patch encoder reads a square, in training and inference alike.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Iterator

import numpy as np

from .augment import Augment, draw
from .shards import read_shard, shard_paths

DEFAULT_SCHEDULE = [[0, {"simulated": 1.0, "professional": 0.0}],
                    [10_000, {"simulated": 0.2, "professional": 0.8}]]


def weights_at(schedule: list, step: int) -> dict[str, float]:
    """Curriculum weights at ``step`` (linear between the schedule's points)."""
    pts = sorted(schedule, key=lambda p: p[0])
    if step <= pts[0][0]:
        return dict(pts[0][1])
    for (s0, w0), (s1, w1) in zip(pts, pts[1:]):
        if s0 <= step <= s1:
            t = (step - s0) / max(1, s1 - s0)
            keys = set(w0) | set(w1)
            return {k: (1 - t) * w0.get(k, 0.0) + t * w1.get(k, 0.0) for k in keys}
    return dict(pts[-1][1])


def to_tensor(img: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div(127.5).sub(1.0)


def bucket_size(h: int, w: int, size: int, multiple: int = 16) -> tuple[int, int]:
    """(h, w) with about ``size``^2 pixels, the aspect of (h, w), sides a multiple of
    ``multiple``: the same rule as :func:`mirrorppr.model.pipeline.working_size`."""
    k = size / math.sqrt(h * w)
    return (max(multiple, int(round(h * k / multiple)) * multiple),
            max(multiple, int(round(w * k / multiple)) * multiple))


def _split(items: list, rank: int, world: int, worker: int, workers: int) -> list:
    return items[rank * workers + worker::world * workers]


try:
    from torch.utils.data import IterableDataset as _Base
except ModuleNotFoundError:  # the loader needs the 'model' extra; the rest of data does not
    _Base = object


class QuadrupletDataset(_Base):
    """Yields dicts of float tensors in [-1, 1] (C, H, W): source, target, query,
    ground_truth, plus the sample's key, subset and recipe. Query/ground truth are drawn
    on the fly with A(seed, key) (or read, when materialised); ``epoch_seed`` re-draws A
    per epoch when set."""

    def __init__(self, folders: dict[str, Path] | list[Path] | Path, schedule: list | None = None,
                 start_step: int = 0, seed: int = 0, rank: int = 0, world_size: int = 1,
                 size: int | None = None, epoch: int | None = None, multiple: int = 16) -> None:
        if isinstance(folders, (str, Path)):
            folders = [Path(folders)]
        self.streams: dict[str, list[Path]] = {}
        for f in (folders.values() if isinstance(folders, dict) else folders):
            for p in shard_paths(Path(f)):
                sub = self._subset_of(p)
                self.streams.setdefault(sub, []).append(p)
        self.schedule = schedule or DEFAULT_SCHEDULE
        self.step = start_step
        self.seed, self.rank, self.world = seed, rank, world_size
        self.size = size
        self.multiple = multiple
        self.epoch = epoch

    @staticmethod
    def _subset_of(path: Path) -> str:
        for s in read_shard(path):
            return s.record.get("subset", "simulated")
        return "simulated"

    def _stream(self, shards: list[Path]) -> Iterator:
        import torch.utils.data as tud

        info = tud.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for p in _split(shards, self.rank, self.world, worker, workers):
            for s in read_shard(p):
                yield s

    def _tensors(self, s) -> dict:
        src, tgt = s.images["source"], s.images["target"]
        if "query" in s.images and self.epoch is None:
            q, g = s.images["query"], s.images["ground_truth"]
        else:
            aug = (Augment.from_dict(s.record["augment"]) if self.epoch is None
                   else draw(self.seed + self.epoch, s.key, (src.shape[1], src.shape[0])))
            q, g = aug.apply(src), aug.apply(tgt)
        if self.size:
            import cv2
            qh, qw = bucket_size(q.shape[0], q.shape[1], self.size, self.multiple)
            src, tgt = (cv2.resize(x, (self.size, self.size), interpolation=cv2.INTER_AREA) for x in (src, tgt))
            q, g = (cv2.resize(x, (qw, qh), interpolation=cv2.INTER_AREA) for x in (q, g))
        return {"source": to_tensor(src), "target": to_tensor(tgt), "query": to_tensor(q),
                "ground_truth": to_tensor(g), "key": s.key, "subset": s.record.get("subset"),
                "recipe": s.record.get("recipe", [])}

    def __iter__(self):
        iters = {k: self._stream(v) for k, v in self.streams.items()}
        rng = random.Random(hash((self.seed, self.rank)))
        step = self.step
        while iters:
            w = weights_at(self.schedule, step)
            names = [k for k in iters if w.get(k, 0.0) > 0] or list(iters)
            pick = rng.choices(names, weights=[max(w.get(k, 0.0), 1e-9) for k in names])[0]
            try:
                s = next(iters[pick])
            except StopIteration:
                del iters[pick]        # this subset is exhausted for the epoch
                continue
            step += 1
            yield self._tensors(s)


class Buckets(_Base):
    """Batches of ``batch_size`` samples of one query shape from a
    :class:`QuadrupletDataset` (use with ``DataLoader(batch_size=None)``); a shape's
    incomplete batch at the end of an epoch is dropped."""

    def __init__(self, dataset: QuadrupletDataset, batch_size: int, collate) -> None:
        self.ds, self.batch_size, self.collate = dataset, int(batch_size), collate

    def __iter__(self):
        pending: dict[tuple, list] = {}
        for s in self.ds:
            k = tuple(s["query"].shape)
            items = pending.setdefault(k, [])
            items.append(s)
            if len(items) == self.batch_size:
                yield self.collate(items)
                pending[k] = []
