"""Retouching folders of photos: parallel, resumable, and never touching the inputs.

Outputs mirror the input tree. A photo whose output already exists and decodes is
skipped (writes are atomic, so an existing output is complete), which makes an
interrupted run resume where it stopped. Per-file failures (unreadable, no face...) are
reported and counted, never fatal.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..analyze.operation import Operation
from ..errors import MirrorError, OutputError
from ..imageio import is_image_file

_WORKER = None


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{len(self.done)} retouched, {len(self.skipped)} already done, "
                f"{len(self.failed)} failed in {self.seconds:.1f} s")


def list_images(indir: Path) -> list[Path]:
    """Image files below ``indir`` (recursive, hidden files and folders skipped), sorted."""
    out = []
    for root, dirs, files in os.walk(indir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            p = Path(root) / f
            if is_image_file(p):
                out.append(p)
    return out


def check_dirs(indir: Path, outdir: Path) -> None:
    ind, outd = indir.resolve(), outdir.resolve()
    if outd == ind or ind in outd.parents:
        raise OutputError(f"{outdir}: the output folder must not be the input folder or inside it")


def output_path(src: Path, indir: Path, outdir: Path, suffix: str = "") -> Path:
    rel = src.relative_to(indir)
    return outdir / rel.parent / f"{rel.stem}{suffix}{rel.suffix}"


def is_complete(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:
        return False


def _init(op_dict: dict, kw: dict) -> None:
    global _WORKER
    from .retoucher import Retoucher

    _WORKER = Retoucher(Operation.from_dict(op_dict), **kw)


def _one(src: str, dst: str) -> tuple[str, str | None]:
    try:
        _WORKER.retouch_file(src, dst)
        return src, None
    except MirrorError as exc:
        return src, str(exc)
    except Exception as exc:  # keep the batch going; report the file
        return src, f"{type(exc).__name__}: {exc}"


def run_batch(operation: Operation, indir: Path, outdir: Path, *, workers: int | None = None,
              suffix: str = "", progress: bool = True, **retoucher_kw) -> BatchReport:
    """Retouch every image below ``indir`` into ``outdir`` (same tree)."""
    import time

    from tqdm import tqdm

    indir, outdir = Path(indir), Path(outdir)
    check_dirs(indir, outdir)
    t0 = time.perf_counter()
    report = BatchReport()
    todo = []
    for src in list_images(indir):
        dst = output_path(src, indir, outdir, suffix)
        if is_complete(dst):
            report.skipped.append(str(src))
        else:
            todo.append((src, dst))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(todo), unit="photo", disable=not progress, desc="retouching")
    if workers == 1:
        _init(operation.to_dict(), retoucher_kw)
        for src, dst in todo:
            s, err = _one(str(src), str(dst))
            (report.failed.__setitem__(s, err) if err else report.done.append(s))
            bar.update()
    else:
        from ..landmarks.backends import models_loaded

        # Forked workers start in milliseconds, but MediaPipe graphs do not survive a fork:
        # spawn fresh interpreters when this process has started one.
        ctx = mp.get_context("spawn" if models_loaded() else "fork")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                                 initargs=(operation.to_dict(), retoucher_kw)) as pool:
            futures = [pool.submit(_one, str(s), str(d)) for s, d in todo]
            for fut in as_completed(futures):
                s, err = fut.result()
                (report.failed.__setitem__(s, err) if err else report.done.append(s))
                bar.update()
    bar.close()
    report.seconds = time.perf_counter() - t0
    return report
