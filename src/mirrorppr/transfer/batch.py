"""Retouching folders of photos: parallel, resumable, and never touching the inputs.

Outputs mirror the input tree. Beside every output ``NAME.ext`` a sidecar
``NAME.ext.mirrorppr.json`` records what made it: the input's and the output's sha256,
the preset's hash, the recipe applied, the options and the mirrorppr version (an audit
trail). A rerun into the same folder decides per photo:

- no output yet, an output that does not decode (a torn file), or ``overwrite``:
  retouch it;
- an output whose sidecar has the same settings and whose bytes are the ones recorded:
  up to date, skipped (so an interrupted run resumes);
- the same, but other settings (another preset, ``--strength``, engine, options, or the
  input photo changed): redone, and counted as such;
- an output with no sidecar, or changed since it was written (someone edited it): kept
  and reported, unless ``overwrite``.

Per-file failures (unreadable, no face...) are reported and counted, never fatal. Ctrl-C
stops the workers at once (finished outputs are complete; a rerun resumes); workers
exit when the parent dies (:mod:`mirrorppr.parallel`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..analyze.operation import Operation
from ..errors import ConfigError, MirrorError, OutputError
from ..imageio import check_quality, encode_image, is_image_file, output_format, read_image
from .. import outputs

SIDECAR_SUFFIX = ".mirrorppr.json"
SIDECAR_FORMAT = "mirrorppr.sidecar/1"

_WORKER = None


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)       # retouched in this run
    redone: list[str] = field(default_factory=list)     # ...of which replaced older settings
    skipped: list[str] = field(default_factory=list)    # up to date
    kept: dict[str, str] = field(default_factory=dict)  # existing outputs left alone, with why
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        redone = f" ({len(self.redone)} redone: settings changed)" if self.redone else ""
        kept = (f", {len(self.kept)} kept (existing outputs not made with a record; --overwrite "
                "replaces them)") if self.kept else ""
        stop = "; interrupted, rerun to resume" if self.interrupted else ""
        return (f"{len(self.done)} retouched{redone}, {len(self.skipped)} already done{kept}, "
                f"{len(self.failed)} failed in {self.seconds:.1f} s{stop}")

    def to_dict(self) -> dict:
        return {"done": self.done, "redone": self.redone, "skipped": self.skipped, "kept": self.kept,
                "failed": self.failed, "interrupted": self.interrupted, "seconds": round(self.seconds, 3)}


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
    ind, outd = Path(indir).resolve(), Path(outdir).resolve()
    if outd == ind or ind in outd.parents:
        raise OutputError(f"{outdir}: the output folder must not be the input folder or inside it")


def check_suffix(suffix: str) -> str:
    """An output-name suffix is part of a file name: no folders, no '..'."""
    if any(c in suffix for c in ("/", "\\", "\0")) or ".." in suffix or suffix.strip() in (".",):
        raise ConfigError(f"--suffix {suffix!r}: must be part of a file name (no '/', '\\' or '..')")
    return suffix


def output_path(src: Path, indir: Path, outdir: Path, suffix: str = "") -> Path:
    rel = Path(src).relative_to(indir)
    dst = Path(outdir) / rel.parent / f"{rel.stem}{check_suffix(suffix)}{rel.suffix}"
    if Path(outdir).resolve() not in dst.resolve().parents:
        raise OutputError(f"{dst}: would be written outside {outdir}")
    return dst


def sidecar_path(output: Path) -> Path:
    return Path(output).with_name(Path(output).name + SIDECAR_SUFFIX)


def is_complete(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:
        return False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def preset_hash(operation: Operation) -> str:
    """sha256 of the preset as saved, without what varies between identical analyses
    (timings): the same exemplar analysed twice hashes the same."""
    d = operation.to_dict()
    d["meta"] = {k: v for k, v in d.get("meta", {}).items() if k != "seconds"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def settings(operation: Operation, retoucher_kw: dict, quality: int) -> dict:
    """What decides an output's pixels besides its input: compared on resume."""
    strength = float(retoucher_kw.get("strength", 1.0))
    overrides = dict(retoucher_kw.get("overrides") or {})
    applied = operation.recipe.scaled(strength, overrides).active().to_list()
    options = {k: retoucher_kw.get(k) for k in ("engine", "strength", "overrides", "mode", "landmarker",
                                                "face_index")}
    options.update(engine=options["engine"] or "auto", strength=strength, overrides=overrides,
                   mode=options["mode"] or "auto", quality=quality)
    return {"preset_sha256": preset_hash(operation), "recipe_applied": applied, "options": options}


def _read_sidecar(path: Path) -> dict | None:
    try:
        data = json.loads(sidecar_path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == SIDECAR_FORMAT else None


def plan(src: Path, dst: Path, wanted: dict, overwrite: bool) -> str:
    """"do", "redo", "skip" or "keep: <why>" for one photo (see the module doc)."""
    if overwrite or not is_complete(dst):     # missing or torn: nothing to lose
        return "do"
    record = _read_sidecar(dst)
    if record is None:
        return f"keep: {dst} exists without a {SIDECAR_SUFFIX} record"
    if record.get("output_sha256") != sha256_file(dst):
        return f"keep: {dst} changed since mirrorppr wrote it"
    same = all(record.get(k) == v for k, v in wanted.items()) and \
        record.get("input_sha256") == sha256_file(src)
    return "skip" if same else "redo"


def _init(op_dict: dict, kw: dict) -> None:
    global _WORKER
    from .retoucher import Retoucher

    _WORKER = Retoucher(Operation.from_dict(op_dict), **kw)


def _one(src: str, dst: str, record: dict) -> str:
    """Retouch one photo; write its sidecar, then the output (both atomically): an
    output is never there without its record, whenever the run is stopped (a record
    without its output is simply done again)."""
    t = time.perf_counter()
    photo = read_image(src)
    res = _WORKER.run(photo)
    out = Path(dst)
    data = encode_image(res.photo, output_format(out, res.photo.format), quality=record["options"]["quality"])
    side = {"format": SIDECAR_FORMAT, "mirrorppr": _version(), "input": str(src),
            "input_sha256": sha256_file(Path(src)), **record,
            "output_sha256": hashlib.sha256(data).hexdigest(),
            "notes": list(dict.fromkeys(photo.notes + res.photo.notes)),
            "seconds": round(time.perf_counter() - t, 3),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    outputs.write_text(sidecar_path(out), json.dumps(side, indent=1, sort_keys=True), protect=(src,))
    outputs.write_bytes(out, data, protect=(src,))
    return src


def _version() -> str:
    from .. import __version__
    return __version__


def run_batch(operation: Operation, indir: Path, outdir: Path, *, workers: int | None = None,
              suffix: str = "", progress: bool = True, overwrite: bool = False, quality: int = 95,
              **retoucher_kw) -> BatchReport:
    """Retouch every image below ``indir`` into ``outdir`` (same tree)."""
    from tqdm import tqdm

    indir, outdir = Path(indir), Path(outdir)
    check_dirs(indir, outdir)
    check_quality(quality)
    t0 = time.perf_counter()
    report = BatchReport()
    wanted = settings(operation, retoucher_kw, quality)
    todo: list[tuple[str, str, dict]] = []
    for src in list_images(indir):
        dst = output_path(src, indir, outdir, suffix)
        what = plan(src, dst, wanted, overwrite)
        if what == "skip":
            report.skipped.append(str(src))
        elif what.startswith("keep"):
            report.kept[str(src)] = what.partition(": ")[2]
        else:
            if what == "redo":
                report.redone.append(str(src))
            todo.append((str(src), str(dst), wanted))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(todo), unit="photo", disable=not progress, desc="retouching")

    def record(src: str, err: str | None) -> None:
        if err:
            report.failed[src] = err
            if src in report.redone:
                report.redone.remove(src)
        else:
            report.done.append(src)
        bar.update()

    try:
        if workers == 1:
            _init(operation.to_dict(), retoucher_kw)
            for src, dst, rec in todo:
                try:
                    _one(src, dst, rec)
                    record(src, None)
                except MirrorError as exc:
                    record(src, str(exc))
                except Exception as exc:  # keep the batch going; report the file
                    record(src, f"{type(exc).__name__}: {exc}")
        else:
            from ..landmarks.backends import models_loaded
            from ..parallel import run_parallel

            # Forked workers start in milliseconds, but MediaPipe graphs do not survive a
            # fork: spawn fresh interpreters when this process has started one.
            method = "spawn" if models_loaded() else "fork"
            outcomes = run_parallel(_one, todo, workers, init=_init, init_args=(operation.to_dict(), retoucher_kw),
                                    start_method=method,
                                    outputs_of=lambda t: (Path(t[1]), sidecar_path(Path(t[1]))))
            with contextlib.closing(outcomes):      # closing stops the workers, whatever happens
                for o in outcomes:
                    record(todo[o.index][0], o.error)
    except KeyboardInterrupt:
        report.interrupted = True
        done = set(report.done) | set(report.failed)
        report.redone = [s for s in report.redone if s in done]
    finally:
        bar.close()
    report.seconds = time.perf_counter() - t0
    return report
