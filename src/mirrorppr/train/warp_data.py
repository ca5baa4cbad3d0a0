"""Training batches for the learned warp head, from the data engine's shards.

Each stored sample is read once into a small cache in the face's frame: the exemplar's
crops and measured motion (what the head reads), and a wider region of the before and
after photos with the stored exact field and blend mask (what the query and its truth
are cut from). Every draw then makes a quadruplet the paper's way, exemplar (source,
target), query = A(source), ground truth = A(target), with A drawn from (seed + epoch,
key) by the data engine's own :func:`~mirrorppr.data.augment.draw`, followed by a small
similarity jitter of the query's frame; the field is carried through the same maps, so
query and truth stay exactly aligned with the motion between them.

With ``cross`` > 0, that share of draws takes the query from another photo (another
person when there is one) edited with the same recipe: cross-identity quadruplets with
an exact truth, which the data engine's layout (every op at the same strengths on every
photo) provides for free.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.augment import Augment, draw
from ..data.shards import read_shard, shard_paths
from ..data.simulate import decode_blend, decode_field
from ..model.frame import (MARGIN, compose, exemplar_inputs, exemplar_motion, face_frame, jitter,
                           query_inputs, ramp_vectors, sample_grid, warp_crop)

#: The cached region around a face, relative to the model's crop (room for jitter).
REGION = 1.6


@dataclass
class Cached:
    key: str
    image: str                      # image id (one photo)
    person: str                     # first part of the id: one folder per person
    recipe: str                     # the recipe part of the key (shared across photos)
    exact: bool                     # made by the paper's procedure (ramp, blend)
    size: tuple[int, int]           # (w, h) of the stored photo
    points: np.ndarray              # its landmarks (stored photo pixels)
    ex_source: np.ndarray           # exemplar input (C, S, S) float16
    ex_target: np.ndarray
    region: np.ndarray              # 2x3 map photo -> region pixels
    before: np.ndarray              # region crops (R x R RGB uint8)
    after: np.ndarray
    field: np.ndarray               # backward motion in region cells (c, c, 2) float16, region px
    mask: np.ndarray | None         # the paper procedure's blend mask there (c, c) float16; None: a plain warp


def _person(image_id: str) -> str:
    return image_id.split("-", 1)[0]


def _region_field(fld, mask, region: np.ndarray, rside: int, cells: int):
    """A stored field (and mask on its cells) resampled onto region cells (vectors in
    region px)."""
    x, y = sample_grid(region, cells, rside)
    # Field.sample is bilinear in the field's own cells.
    pts = np.stack([x.ravel(), y.ravel()], 1)
    d = fld.sample(pts).reshape(cells, cells, 2) @ region[:, :2].T
    m = None
    if mask is not None:
        u = fld.unit
        gx = ((x + 0.5) / u[0] - 0.5).astype(np.float32)
        gy = ((y + 0.5) / u[1] - 0.5).astype(np.float32)
        m = cv2.remap(mask, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return d.astype(np.float16), None if m is None else m.astype(np.float16)


def cache_sample(s, crop: int, shared: dict | None = None) -> Cached | None:
    """One shard sample in the cache's form (None without a stored field). ``shared``
    keeps what depends on the before photo (and its landmarks) alone, once per photo."""
    rec = s.record
    fld = decode_field(rec.get("field"))
    if fld is None or rec.get("landmarks_source") is None:
        return None
    blend = decode_blend(rec.get("field"))
    mask = None
    if blend is not None:                 # the paper's procedure: its motion, then the mask
        fld, mask = blend
    src, tgt = s.images["source"], s.images["target"]
    h, w = src.shape[:2]
    fld = fld.for_size((w, h)) if tuple(fld.size) != (w, h) else fld
    pts = np.asarray(rec["landmarks_source"], np.float64)
    iid = str(rec.get("image_id", s.key.split("_", 1)[0]))
    fe = face_frame(pts, crop)
    src_c, tgt_c = fe.crop(src), fe.crop(tgt)
    ramp = _ramp(fe.matrix, (w, h), crop, crop)
    exs, ext = exemplar_inputs(src_c, tgt_c, exemplar_motion(fe, src, tgt, crop), fe.points(pts), ramp)
    rside = int(round(crop * REGION))
    fr = face_frame(pts, rside, margin=MARGIN * REGION)
    d, m = _region_field(fld, mask, fr.matrix, rside, crop)
    # One photo's landmarks may differ between two runs of the data engine over it: the
    # shared part is keyed by them too.
    shared = {} if shared is None else shared
    exs, before = shared.setdefault((iid, pts.round(2).tobytes()), (exs.astype(np.float16), fr.crop(src)))
    return Cached(s.key, iid, _person(iid), s.key[len(iid) + 1:], mask is not None, (w, h), pts,
                  exs, ext.astype(np.float16), fr.matrix, before, fr.crop(tgt), d, m)


def _ramp(m: np.ndarray, size: tuple[int, int], side: int, cells: int) -> np.ndarray:
    x, y = sample_grid(m, cells, side)
    return (ramp_vectors(size, x, y) @ m[:, :2].T).astype(np.float32)


def load_cache(folders: list[Path], crop: int, limit: int | None = None, progress: bool = False,
               store: Path | None = None) -> list[Cached]:
    """Every sample with a stored field, cached. ``store``: a file that keeps the cache
    between runs, reused while the shards it was made from are unchanged."""
    import pickle

    from tqdm import tqdm

    paths = [p for f in folders for p in shard_paths(Path(f))]
    stamp = [crop, limit] + [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
    if store is not None and Path(store).is_file():
        with open(store, "rb") as fh:
            saved = pickle.load(fh)
        if saved.get("stamp") == stamp:
            return saved["cache"]
    out: list[Cached] = []
    shared: dict = {}
    bar = tqdm(desc="caching samples", unit="sample", disable=not progress)
    for p in paths:
        for s in read_shard(p):
            c = cache_sample(s, crop, shared)
            if c is not None:
                out.append(c)
                bar.update()
            if limit and len(out) >= limit:
                break
        if limit and len(out) >= limit:
            break
    bar.close()
    if store is not None:
        from ..imageio import atomic_path

        with atomic_path(Path(store)) as tmp, open(tmp, "wb") as fh:
            pickle.dump({"stamp": stamp, "cache": out}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return out


def recipe_vector(recipe: str) -> np.ndarray:
    """Each registered op's strength / 100 in a sample key's recipe part
    (``eye_resizep035_nose_lengthm070``), in registry order."""
    import re

    from ..ops.base import face_ops

    names = [op.name for op in face_ops()]
    pat = re.compile("(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")([pm])(\d{3})")
    v = np.zeros(len(names), np.float32)
    for name, sign, mag in pat.findall(recipe):
        v[names.index(name)] = (1 if sign == "p" else -1) * int(mag) / 100.0
    return v


def _warp(img: np.ndarray, m: np.ndarray, side: int) -> np.ndarray:
    return warp_crop(img, m, side)


class WarpBatches:
    """Endless random batches (dicts of float tensors) over a cache; ``rank`` keeps the
    draws of distributed processes apart. ``wait_s`` accumulates the time spent making
    batches (the trainer reports it as time waiting for data)."""

    def __init__(self, cache: list[Cached], cfg: dict, seed: int = 0, rank: int = 0) -> None:
        if not cache:
            raise ValueError("no samples with a stored field")
        self.cache = cache
        self.crop = int(cfg["crop"])
        self.cells = self.crop // int(cfg["out_stride"])
        self.batch = int(cfg["batch_size"])
        self.cross = float(cfg.get("cross", 0.5))
        self.jit = dict(cfg.get("jitter", {}))
        self.seed = seed
        self.rng = np.random.default_rng(seed * 9973 + rank)
        self.pyrng = random.Random(seed * 9973 + rank)
        by_recipe: dict[str, list[int]] = {}
        for i, c in enumerate(cache):
            by_recipe.setdefault(c.recipe, []).append(i)
        self.partners = [[j for j in by_recipe[c.recipe] if cache[j].image != c.image] for c in cache]
        self.recipes = [recipe_vector(c.recipe) for c in cache]      # of the exemplar
        self.draws = 0
        self.wait_s = 0.0

    def epoch(self) -> int:
        return self.draws // len(self.cache)

    def quadruplet(self, i: int, j: int | None = None, aug_seed: int | None = None) -> dict:
        """Exemplar of sample ``i``; query and truth from sample ``j`` (default ``i``)."""
        import torch

        ex, c = self.cache[i], self.cache[i if j is None else j]
        seed = self.seed + self.epoch() if aug_seed is None else aug_seed
        aug = draw(seed, c.key, c.size)
        mq = self._query_map(c, aug)
        rinv = cv2.invertAffineTransform(c.region)
        m_rc = compose(mq, rinv)                        # region px -> query crop px
        q = _warp(c.before, m_rc, self.crop)
        g = _warp(c.after, m_rc, self.crop)
        d, m = self._truth(c, m_rc)
        ramp = _ramp(mq, c.size, self.crop, self.crop)
        qpts = (np.asarray(c.points) @ mq[:, :2].T) + mq[:, 2]
        blur = 0.05 * min(c.size) * math.sqrt(abs(np.linalg.det(mq[:, :2]))) / self.crop
        qin = query_inputs(q, qpts, ramp, blur)
        rc = cv2.resize(ramp, (self.cells, self.cells), interpolation=cv2.INTER_AREA)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
        return {"source": t(ex.ex_source), "target": t(ex.ex_target), "query": t(qin),
                "query_rgb": t(q.transpose(2, 0, 1)) / 127.5 - 1, "truth_rgb": t(g.transpose(2, 0, 1)) / 127.5 - 1,
                "d": t(d.transpose(2, 0, 1)), "mask": t(m[None]), "has_mask": torch.tensor(float(c.exact)),
                "ramp_field": t(rc.transpose(2, 0, 1)), "exact": torch.tensor(float(c.exact)),
                "recipe": t(self.recipes[i])}

    def _query_map(self, c: Cached, aug: Augment) -> np.ndarray:
        """Stored photo px -> query crop px: A, then the frame of A(face), then jitter."""
        a = aug.matrix()
        fq = face_frame(aug.points(c.points), self.crop)
        return compose(jitter(self.rng, self.crop, **self.jit), compose(fq.matrix, a))

    def _truth(self, c: Cached, m_rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Motion and blend mask on the output cells (crop px): for a plain warp the
        field itself and a mask of ones."""
        cells, rs = self.cells, c.before.shape[0]
        x, y = sample_grid(m_rc, cells, self.crop)         # region px of each output cell
        k = c.field.shape[0] / rs
        gx = ((x + 0.5) * k - 0.5).astype(np.float32)
        gy = ((y + 0.5) * k - 0.5).astype(np.float32)
        f = cv2.remap(c.field.astype(np.float32), gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        f = f @ m_rc[:, :2].T
        if c.mask is None:
            return f.astype(np.float32), np.ones((cells, cells), np.float32)
        m = cv2.remap(c.mask.astype(np.float32), gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return f.astype(np.float32), m.astype(np.float32)

    def __iter__(self):
        import torch

        while True:
            t0 = time.perf_counter()
            items = []
            for _ in range(self.batch):
                i = int(self.rng.integers(len(self.cache)))
                j = i
                if self.partners[i] and self.rng.random() < self.cross:
                    others = [k for k in self.partners[i] if self.cache[k].person != self.cache[i].person]
                    j = self.pyrng.choice(others or self.partners[i])
                items.append(self.quadruplet(i, j))
                self.draws += 1
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            self.wait_s += time.perf_counter() - t0
            yield batch

    def fixed(self, n: int) -> dict:
        """``n`` fixed quadruplets (validation): spread over the cache, the stored A."""
        import torch

        idx = np.linspace(0, len(self.cache) - 1, n).round().astype(int)
        rng, self.rng = self.rng, np.random.default_rng(12345)     # the same jitter every time
        items = [self.quadruplet(int(i), None, aug_seed=self.seed) for i in idx]
        self.rng = rng
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

