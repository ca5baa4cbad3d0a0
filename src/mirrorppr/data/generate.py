"""Running dataset generation: inputs -> shard tasks -> shards + manifest, on local
processes or on a Ray cluster (Ray Data), resumable and deterministic.

Inputs are sorted and cut into fixed groups, one group per shard, so a shard's content
depends only on its inputs and the seed: reruns skip finished shards, any worker can
make any shard, and the same seed gives the same dataset. Each manifest entry records
the hash of the task that made it (``settings``): a rerun with other settings (seed,
levels, size, inputs...) into the same folder makes those shards again instead of
mixing two datasets. Local workers stop at once on Ctrl-C and exit when the parent dies
(:mod:`mirrorppr.parallel`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError
from .shards import Manifest, write_shard
from .simulate import SimConfig, professional_pair, simulate_portrait


@dataclass
class Task:
    name: str                                  # shard file name
    kind: str                                  # simulate | professional
    inputs: list                               # uris, or [before, after, name] triples
    cfg: dict
    labels: dict = field(default_factory=dict)

    def run(self, out: str) -> dict:
        cfg = SimConfig(**{**self.cfg, "levels": tuple(self.cfg.get("levels", (100.0,)))})
        samples, failed = [], Counter()
        for item in self.inputs:
            if self.kind == "simulate":
                uri, name = (item, None) if isinstance(item, str) else item
                got, reason = simulate_portrait(uri, cfg, name)
            else:
                got, reason = professional_pair(item[0], item[1], item[2], cfg, self.labels)
            samples.extend(got)
            if reason:
                failed[reason] += 1
        entry = write_shard(Path(out) / self.name, samples, cfg.fmt)
        entry["inputs"] = len(self.inputs)
        entry["failed"] = dict(failed)
        entry["settings"] = self.settings()
        return entry

    def settings(self) -> str:
        """sha256 of everything that decides this shard's bytes."""
        d = {"kind": self.kind, "inputs": self.inputs, "cfg": self.cfg, "labels": self.labels}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def list_inputs(source: str) -> list[list[str]]:
    """[uri, name relative to ``source``] of the image files of a local folder
    (recursive) or of an fsspec URL prefix, sorted."""
    from ..imageio import SUPPORTED_SUFFIXES

    if "://" in source and not source.startswith("file://"):
        import fsspec

        fs, _, paths = fsspec.get_fs_token_paths(source)
        found = [p for p in fs.find(paths[0]) if Path(p).suffix.lower() in SUPPORTED_SUFFIXES]
        proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        root = paths[0].rstrip("/")
        return sorted([f"{proto}://{p}", p[len(root):].lstrip("/")] for p in found)
    from ..transfer.batch import list_images

    folder = Path(source.removeprefix("file://"))
    if not folder.is_dir():
        raise InputError(f"{source}: not a folder")
    return [[str(p), p.relative_to(folder).as_posix()] for p in list_images(folder)]


def make_tasks(kind: str, inputs: list, cfg: SimConfig, per_shard: int,
               labels: dict | None = None) -> list[Task]:
    c = asdict(cfg)
    return [Task(f"shard-{i // per_shard:05d}.tar", kind, inputs[i:i + per_shard], c, labels or {})
            for i in range(0, len(inputs), per_shard)]


def _run(task_dict: dict, out: str) -> dict:
    return Task(**task_dict).run(out)


def run_tasks(tasks: list[Task], out: Path, *, workers: int | None = None,
              ray_address: str | None = None, use_ray: bool = False, progress: bool = True) -> Manifest:
    """Make every shard not yet in ``out``'s manifest; returns the final manifest."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load(out)
    made = {e["shard"]: e.get("settings") for e in manifest.entries}
    todo = [t for t in tasks if made.get(t.name, "") != t.settings() or not (out / t.name).exists()]
    manifest.redone = [t.name for t in todo if t.name in made and (out / t.name).exists()]
    bar = tqdm(total=len(todo), unit="shard", desc="shards", disable=not progress)
    workers = max(1, workers or os.cpu_count() or 1)

    def record(entry: dict) -> None:
        manifest.add(entry)
        manifest.save(out)
        bar.update()

    if not todo:
        pass
    elif use_ray or ray_address:
        for entry in _run_ray(todo, out, workers, ray_address):
            record(entry)
    elif workers == 1:
        for t in todo:
            record(t.run(str(out)))
    else:
        from ..errors import error_with_code
        from ..parallel import run_parallel

        jobs = [(asdict(t), str(out)) for t in todo]
        outcomes = run_parallel(_run, jobs, min(workers, len(jobs)),
                                outputs_of=lambda job: (out / job[0]["name"],))
        with contextlib.closing(outcomes):          # closing stops the workers, whatever happens
            for o in outcomes:
                if o.error:     # as in one process: the run stops with the task's error
                    msg = f"{todo[o.index].name}: {o.error}"
                    raise error_with_code(o.code, msg) if o.code else RuntimeError(msg)
                record(o.value)
    bar.close()
    return manifest


def _ray_task(row: dict) -> dict:
    entry = _run(json.loads(row["task"]), row["out"])
    return {"entry": json.dumps(entry)}


def _run_ray(todo: list[Task], out: Path, workers: int, address: str | None):
    """Ray Data: one row per shard task, mapped on the cluster, streamed back."""
    import ray

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        rows = [{"task": json.dumps(asdict(t)), "out": str(out.resolve())} for t in todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map(_ray_task, num_cpus=1,
                    compute=ray.data.TaskPoolStrategy(size=min(workers, len(rows))))
        for row in ds.iter_rows():
            yield json.loads(row["entry"])
    finally:
        if started:
            ray.shutdown()
