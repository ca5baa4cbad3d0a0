"""WebDataset shards: tar files whose members ``KEY.source.png``, ``KEY.target.png``
(optionally ``KEY.query.png``, ``KEY.ground_truth.png``) and ``KEY.json`` form a sample.

A dataset folder holds ``shard-NNNNN.tar`` files and ``manifest.jsonl``, one line per
finished shard (its sample and per-op counts). A shard is written to a temporary name and
renamed when complete, then listed in the manifest (also rewritten atomically): an
interrupted run leaves no broken shard, and a rerun skips the shards already listed.
"""
from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError
from ..outputs import atomic_path, write_text as atomic_write_text

IMAGE_KEYS = ("source", "target", "query", "ground_truth")
MANIFEST = "manifest.jsonl"


def encode(img: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    bgr = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    params = {"png": [cv2.IMWRITE_PNG_COMPRESSION, 1], "jpg": [cv2.IMWRITE_JPEG_QUALITY, quality],
              "webp": [cv2.IMWRITE_WEBP_QUALITY, quality]}[fmt]
    ok, buf = cv2.imencode(f".{fmt}", bgr, params)
    if not ok:
        raise ValueError(f"could not encode {fmt}")
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("undecodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class Sample:
    """One stored pair (or materialised quadruplet) and its record."""

    key: str
    images: dict[str, np.ndarray]
    record: dict

    def ops(self) -> list[str]:
        return [s["op"] for s in self.record.get("recipe", [])]


def write_shard(path: Path, samples: list[Sample], fmt: str = "png") -> dict:
    """Write samples into ``path`` atomically; returns the shard's manifest entry."""
    ops: Counter = Counter()
    with atomic_path(path) as tmp, tarfile.open(tmp, "w") as tar:
        for s in samples:
            for name, img in s.images.items():
                _add(tar, f"{s.key}.{name}.{fmt}", encode(img, fmt))
            _add(tar, f"{s.key}.json", json.dumps(s.record, sort_keys=True).encode())
            ops.update(s.ops())
    return {"shard": path.name, "samples": len(samples), "bytes": path.stat().st_size,
            "ops": dict(sorted(ops.items())),
            "subsets": dict(Counter(s.record.get("subset", "?") for s in samples))}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0          # reproducible bytes for the same content
    tar.addfile(info, io.BytesIO(data))


def read_shard(path: Path) -> Iterator[Sample]:
    """Samples of a shard, in order."""
    with tarfile.open(path, "r") as tar:
        current: str | None = None
        images: dict[str, np.ndarray] = {}
        record: dict = {}
        for m in tar:
            if not m.isfile():
                continue
            key, _, rest = m.name.partition(".")
            if current is not None and key != current:
                yield Sample(current, images, record)
                images, record = {}, {}
            current = key
            data = tar.extractfile(m).read()
            if rest == "json":
                record = json.loads(data)
            else:
                images[rest.rsplit(".", 1)[0]] = decode(data)
        if current is not None:
            yield Sample(current, images, record)


@dataclass
class Manifest:
    entries: list[dict] = field(default_factory=list)
    #: Shards this run made again because their settings changed (not saved).
    redone: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        """The manifest of ``folder`` (empty when there is none yet); an unreadable one
        is an :class:`InputError` naming the line."""
        p = Path(folder) / MANIFEST
        if not p.exists():
            return cls([])
        try:
            lines = p.read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{p}: cannot read the manifest ({type(exc).__name__})") from None
        entries = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError:
                raise InputError(f"{p}: line {i} is not valid JSON") from None
            if not (isinstance(e, dict) and isinstance(e.get("shard"), str) and isinstance(e.get("samples"), int)):
                raise InputError(f"{p}: line {i} is not a shard entry ({{\"shard\": ..., \"samples\": N}})")
            entries.append(e)
        return cls(entries)

    def done(self) -> set[str]:
        return {e["shard"] for e in self.entries}

    def add(self, entry: dict) -> None:
        self.entries = [e for e in self.entries if e["shard"] != entry["shard"]] + [entry]
        self.entries.sort(key=lambda e: e["shard"])

    def save(self, folder: Path) -> None:
        atomic_write_text(Path(folder) / MANIFEST,
                          "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries))

    def totals(self) -> dict:
        ops: Counter = Counter()
        subsets: Counter = Counter()
        failed: Counter = Counter()
        for e in self.entries:
            ops.update(e.get("ops", {}))
            subsets.update(e.get("subsets", {}))
            failed.update(e.get("failed", {}))
        return {"shards": len(self.entries), "samples": sum(e["samples"] for e in self.entries),
                "bytes": sum(e.get("bytes", 0) for e in self.entries), "ops": dict(sorted(ops.items())),
                "subsets": dict(subsets), "failed": dict(failed)}


def shard_paths(folder: Path) -> list[Path]:
    done = Manifest.load(folder).done()
    return [Path(folder) / name for name in sorted(done) if (Path(folder) / name).exists()]
