"""The Python API of the main job: learn from one exemplar pair, retouch other portraits.

    >>> r = Retoucher.from_exemplar("before.jpg", "after.jpg")
    >>> r.apply("someone.jpg").pixels            # or r.retouch_file("a.jpg", "a-out.jpg")
    >>> r.save_preset("look.json"); Retoucher.from_preset("look.json")
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analyze import analyze
from ..analyze.operation import Operation
from ..imageio import Photo, read_image, write_image
from ..landmarks import Face, find_face
from .engines import TransferOptions, get_engine


@dataclass
class Result:
    photo: Photo
    face: Face
    seconds: float
    #: What the transfer could not do on this query (a body part it does not show...).
    notes: tuple[str, ...] = ()


class Retoucher:
    """Applies one analysed :class:`Operation` with a chosen engine."""

    def __init__(self, operation: Operation, engine: str = "auto", strength: float = 1.0,
                 overrides: dict[str, float] | None = None, mode: str = "auto",
                 landmarker: str | None = None, face_index: int | None = None) -> None:
        self.operation = operation
        self.engine_name = engine
        self.engine = get_engine(engine)
        self.options = TransferOptions(strength=strength, overrides=dict(overrides or {}), mode=mode,
                                       landmarker=landmarker, face_index=face_index)

    @classmethod
    def from_exemplar(cls, source, target, *, families: tuple[str, ...] = ("llw", "pro"),
                      procedure: str = "auto", weights: str | os.PathLike | None = None,
                      **kw) -> "Retoucher":
        """Analyse the pair (warp engines), or keep it for the learned ``model`` engine
        (``engine="model", weights=DIR``; loads and registers the weights)."""
        if kw.get("engine") == "model":
            if weights is not None:
                from ..model.engine import register_model_engine
                register_model_engine(weights)
            as_rgb = lambda x: (x if isinstance(x, Photo) else read_image(x)).rgb8()  # noqa: E731
            return cls(Operation.from_pair(as_rgb(source), as_rgb(target)), **kw)
        op = analyze(source, target, families=families, procedure=procedure,
                     backend=kw.get("landmarker"), face_index=kw.get("face_index"))
        return cls(op, **kw)

    @classmethod
    def from_preset(cls, path: str | os.PathLike, **kw) -> "Retoucher":
        return cls(Operation.load(path), **kw)

    def save_preset(self, path: str | os.PathLike) -> Path:
        return self.operation.save(path)

    def _detect(self, source: str):
        opts = self.options

        def detect(px: np.ndarray) -> np.ndarray:
            return find_face(Photo(px).rgb8(), source=source, backend=opts.landmarker,
                             index=opts.face_index).points
        return detect

    def run(self, query) -> Result:
        """Retouch a query (path, :class:`Photo` or array); keeps size, depth, metadata."""
        photo = query if isinstance(query, Photo) else (
            read_image(query) if isinstance(query, (str, os.PathLike)) else Photo(np.asarray(query)))
        name = str(photo.path or "query")
        t = time.perf_counter()
        face = find_face(photo.rgb8(), source=name, backend=self.options.landmarker,
                         index=self.options.face_index)
        self.options.notes.clear()
        px = self.engine(self.operation, photo.pixels, face, self.options, self._detect(name))
        return Result(photo.with_pixels(px), face, time.perf_counter() - t, tuple(self.options.notes))

    def apply(self, query) -> Photo:
        return self.run(query).photo

    def retouch_file(self, src: str | os.PathLike, dst: str | os.PathLike) -> Result:
        res = self.run(src)
        write_image(res.photo, dst, protect=(Path(src),))
        return res
