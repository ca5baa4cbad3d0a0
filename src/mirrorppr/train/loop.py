"""The training loop: one function per stage, one loop shape for both.

Every step: next batch (time spent waiting is measured), loss, backward under
``accelerator.accumulate``, clip, optimizer and LR schedule. Every ``log_every`` steps a
line of metrics goes to ``metrics.jsonl`` and TensorBoard; every ``validate_every`` steps
validation images of fixed quadruplets; every ``checkpoint_every`` steps (and at the end)
a resumable accelerate state plus the loadable weights (safetensors).

Distributed (``accelerate launch``; DDP, or FSDP with ``train.fsdp``): every rank runs
validation and export, because a sharded model needs all ranks for each forward and to
gather its full state; only the main process writes files. On CPUs (gloo) FSDP is set up
by hand, since accelerate offers it for accelerators only.

Output folder::

    stage1/            R-Former (+ encoder when trained) + reconstruction head
    weights/           the inference weights: MirrorPPRPipeline.from_pretrained(weights/)
    state/stage{1,2}/  optimizer, scheduler, RNG, step (resume)
    metrics.jsonl  tb/  validation/
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import ConfigError
from ..imageio import atomic_write_text


def _collate(samples: list[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in ("source", "target", "query", "ground_truth")}
    out["key"] = [s["key"] for s in samples]
    return out


class Batches:
    """Endless batches over the shards: epoch 0 uses the stored augmentation, later epochs
    re-draw it; the curriculum's step follows the samples served. Queries keep their
    aspect (size buckets, see :mod:`mirrorppr.data.loader`); a batch is one bucket."""

    def __init__(self, cfg: dict, rank: int, world: int, start_step: int = 0) -> None:
        from torch.utils.data import DataLoader

        from ..data.loader import Buckets, QuadrupletDataset

        d = cfg["data"]
        folders = [Path(p) for p in d.get("shards") or []]
        if not folders:
            raise ConfigError("no training data: set data.shards (folders made by 'mirrorppr data "
                              "simulate' / 'professional'), e.g. --data shards/sim")
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise ConfigError(f"data.shards: no such folder {', '.join(missing)}")
        self.ds = QuadrupletDataset(folders, schedule=d.get("schedule"), seed=cfg["train"]["seed"],
                                    rank=rank, world_size=world, size=int(d["size"]),
                                    multiple=int(d.get("multiple", 16)))
        if not self.ds.streams:
            raise ConfigError(f"data.shards: no shards in {', '.join(map(str, folders))}")
        self.bs = int(d["batch_size"])
        self.loader = lambda: DataLoader(Buckets(self.ds, self.bs, _collate), batch_size=None,
                                         num_workers=int(d.get("workers", 0)))
        self.samples = start_step * self.bs
        self.epoch = 0

    def __iter__(self):
        while True:
            self.ds.epoch = None if self.epoch == 0 else self.epoch
            self.ds.step = self.samples
            n = 0
            for b in self.loader():
                n += 1
                self.samples += self.bs
                yield b
            if n == 0:
                raise ConfigError(f"data.shards hold fewer samples than one batch ({self.bs})")
            self.epoch += 1

    def fixed(self, n: int) -> list[dict]:
        """The first ``n`` samples (stored augmentation): validation quadruplets, each a
        batch of one (their shapes may differ)."""
        from ..data.loader import QuadrupletDataset

        ds = QuadrupletDataset(sorted({p.parent for v in self.ds.streams.values() for p in v}),
                               schedule=self.ds.schedule, seed=self.ds.seed, size=self.ds.size,
                               multiple=self.ds.multiple)
        items = []
        for s in ds:
            items.append(_collate([s]))
            if len(items) == n:
                break
        return items


def _lr_lambda(warmup: int):
    return lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


#: Modules FSDP shards one by one (the rest is sharded with the root).
WRAP = ("QwenImageTransformerBlock", "ViTMAELayer", "Block", "Level", "Stem")


def _accelerator(cfg: dict, out: Path):
    from accelerate import Accelerator, FullyShardedDataParallelPlugin, PartialState
    from accelerate.utils import DistributedType, ProjectConfiguration

    t = cfg["train"]
    cpu = not torch.cuda.is_available()
    plugin = None
    if t.get("fsdp"):
        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
            transformer_cls_names_to_wrap=list(WRAP), reshard_after_forward=True,
            state_dict_type="SHARDED_STATE_DICT")
    acc = Accelerator(mixed_precision=t["mixed_precision"], gradient_accumulation_steps=int(t["grad_accum"]),
                      project_config=ProjectConfiguration(project_dir=str(out)), cpu=cpu,
                      fsdp_plugin=None if cpu else plugin)
    if plugin is not None and acc.distributed_type == DistributedType.MULTI_CPU:
        # accelerate turns FSDP on for accelerators only; FSDP2 itself runs on gloo, so the
        # state says FSDP (in both shared states: later Accelerator objects re-read them).
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        acc.state.distributed_type = DistributedType.FSDP
        acc.state.fsdp_plugin = plugin
        if t["mixed_precision"] != "no":
            plugin.set_mixed_precision(t["mixed_precision"])
    return acc


def fit_wrap(acc, model) -> None:
    """FSDP shards, one by one, the wrap classes this model has (accelerate refuses a
    name it cannot find, and each stage holds other modules)."""
    plugin = getattr(acc.state, "fsdp_plugin", None)
    if plugin is None:
        return
    have = {type(m).__name__ for m in model.modules()}
    names = [n for n in WRAP if n in have]
    plugin.transformer_cls_names_to_wrap = names
    if not names:
        plugin.auto_wrap_policy = None


def _root(model):
    """The module under a DDP wrapper (FSDP2 shards in place: the module itself)."""
    return model.module if hasattr(model, "module") else model


class _Unsharded:
    """Within: the root's own parameters of an FSDP2 module gathered, so submodules can be
    called outside the root's forward (validation); every rank must enter together."""

    def __init__(self, model) -> None:
        self.m = model if hasattr(model, "unshard") and hasattr(model, "reshard") else None

    def __enter__(self):
        if self.m is not None:
            self.m.unshard()
        return self

    def __exit__(self, *exc) -> None:
        if self.m is not None:
            self.m.reshard()


class Logger:
    """Metrics to ``metrics.jsonl`` (append) and TensorBoard, on the main process."""

    def __init__(self, out: Path, main: bool) -> None:
        self.main = main
        self.path = out / "metrics.jsonl"
        self.tb = None
        if main:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(out / "tb"))
            except ModuleNotFoundError:
                self.tb = None

    def log(self, stage: str, step: int, metrics: dict) -> None:
        if not self.main:
            return
        row = {"stage": stage, "step": step, "time": round(time.time(), 3),
               **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{stage}/{k}", v, step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    h = 160
    lines = []
    for row in rows:
        cells = [cv2.resize(c, (max(1, round(c.shape[1] * h / c.shape[0])), h), interpolation=cv2.INTER_AREA)
                 for c in row]
        lines.append(np.concatenate(cells, axis=1))
    w = max(line.shape[1] for line in lines)
    return np.concatenate([np.pad(line, ((0, 0), (0, w - line.shape[1]), (0, 0))) for line in lines])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _save_image(img: np.ndarray, path: Path) -> None:
    from ..imageio import Photo, write_image

    write_image(Photo(img), path, overwrite=True)


def _save_state(acc, out: Path, stage: str, step: int, done: bool) -> None:
    final = out / "state" / f"stage{stage}"
    tmp = final.with_name(final.name + ".partial")
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()              # then every rank writes its part (FSDP: its shards)
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        atomic_write_text(tmp / "progress.json", json.dumps({"stage": stage, "step": step, "done": done}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    acc.wait_for_everyone()


def _progress(out: Path, stage: str) -> dict:
    p = out / "state" / f"stage{stage}" / "progress.json"
    return json.loads(p.read_text()) if p.is_file() else {"step": 0, "done": False}


def run_loop(stage: str, cfg: dict, out: Path, objective, params: list, acc, log: Logger, *,
             validate, export, max_steps: int | None, deadline: float | None, progress: bool) -> dict:
    from tqdm import tqdm

    scfg = cfg[f"stage{stage}"]
    steps = int(max_steps if max_steps is not None else scfg["steps"])
    opt = torch.optim.AdamW(params, lr=float(scfg["lr"]), weight_decay=float(scfg.get("weight_decay", 0.0)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(int(scfg.get("warmup", 0))))
    fit_wrap(acc, objective)
    objective, opt, sched = acc.prepare(objective, opt, sched)
    params = [p for p in objective.parameters() if p.requires_grad]     # FSDP swaps them for shards
    prog = _progress(out, stage)
    start = 0
    if prog["step"] and (out / "state" / f"stage{stage}").is_dir():
        acc.load_state(str(out / "state" / f"stage{stage}"))
        start = int(prog["step"])
    t = cfg["train"]
    batches = iter(Batches(cfg, acc.process_index, acc.num_processes, start))
    gen = torch.Generator().manual_seed(int(t["seed"]) * 1000 + acc.process_index + start)
    objective.train()
    window, wait, busy, seen = [], 0.0, 0.0, 0
    summary = {"stage": stage, "start_step": start, "steps": start, "losses": []}
    bar = tqdm(total=steps, initial=start, desc=f"stage {stage}", unit="step",
               disable=not (progress and acc.is_main_process))
    step = start
    t_last = time.perf_counter()
    while step < steps:
        if deadline is not None and time.time() > deadline:
            break
        for _ in range(int(t["grad_accum"])):
            t0 = time.perf_counter()
            batch = next(batches)
            batch = {k: (v.to(acc.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            t1 = time.perf_counter()
            with acc.accumulate(objective):
                loss = objective(batch, gen) if stage == "2" else objective(batch)
                acc.backward(loss)
                if acc.sync_gradients and t["max_grad_norm"]:
                    acc.clip_grad_norm_(params, float(t["max_grad_norm"]))
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
            wait += t1 - t0
            busy += time.perf_counter() - t1
            seen += batch["query"].shape[0] * acc.num_processes
            window.append(float(loss.detach()))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(window[-10:]):.4f}")
        if step % int(t["log_every"]) == 0 or step == steps:
            dt = time.perf_counter() - t_last
            m = {"loss": float(np.mean(window)), "lr": float(sched.get_last_lr()[0]),
                 "samples_per_s": seen / max(dt, 1e-9), "data_wait_s": wait, "compute_s": busy,
                 "data_wait_share": wait / max(wait + busy, 1e-9), "processes": acc.num_processes}
            if torch.cuda.is_available():
                m["gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 2 ** 30
            log.log(f"stage{stage}", step, m)
            summary["losses"].append((step, m["loss"]))
            window, wait, busy, seen, t_last = [], 0.0, 0.0, 0, time.perf_counter()
        if step % int(t["validate_every"]) == 0:
            validate(step)
        if step % int(t["checkpoint_every"]) == 0 and step < steps:
            _save_state(acc, out, stage, step, done=False)
            export(step)
    bar.close()
    summary["steps"] = step
    _save_state(acc, out, stage, step, done=step >= steps)
    export(step)
    if step % int(t["validate_every"]):
        validate(step)
    return summary


def train_stage1(cfg: dict, out: Path, *, max_steps=None, deadline=None, progress=True) -> dict:
    from ..model.blocks import save_model
    from ..model.encoder import PatchEncoder
    from ..model.head import ReconstructionHead
    from ..model.pipeline import build_extractor, to_uint8
    from ..model.rformer import RFormer
    from .losses import ReconstructionObjective

    acc = _accelerator(cfg, out)
    torch.manual_seed(int(cfg["train"]["seed"]))
    src = out / "stage1"
    spec = cfg["model"]
    encoder, rformer = build_extractor(spec)
    h = spec["head"]
    head = ReconstructionHead(token_width=rformer.config.width, num_queries=rformer.config.num_queries,
                              feature_dim=encoder.dim, width=h["width"], num_layers=h["num_layers"],
                              num_heads=h["num_heads"], patch_size=int(encoder.vit.config.patch_size),
                              num_patches=encoder.num_patches())
    if (src / "rformer").is_dir():           # resume: start from the last export
        rformer.load_state_dict(RFormer.from_pretrained(src / "rformer").state_dict())
        head.load_state_dict(ReconstructionHead.from_pretrained(src / "head").state_dict())
        if (src / "encoder").is_dir():
            encoder.load_state_dict(PatchEncoder.from_pretrained(src / "encoder").state_dict())
    objective = ReconstructionObjective(encoder, rformer, head)
    params = [p for p in objective.parameters() if p.requires_grad]
    log = Logger(out, acc.is_main_process)
    val = Batches(cfg, 0, 1).fixed(int(cfg["data"].get("validation", 4)))

    def export(step: int) -> None:
        state = acc.get_state_dict(objective)          # every rank: FSDP gathers the shards
        if acc.is_main_process:
            part = lambda name: {k[len(name) + 1:]: v for k, v in state.items()  # noqa: E731
                                 if k.startswith(name + ".")}
            tmp = out / "stage1.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            obj = _root(objective)
            save_model(obj.rformer, tmp / "rformer", part("rformer"))
            save_model(obj.head, tmp / "head", part("head"))
            if not obj.encoder.frozen:
                save_model(obj.encoder, tmp / "encoder", part("encoder"))
            (tmp / "progress.json").write_text(json.dumps({"step": step}))
            shutil.rmtree(src, ignore_errors=True)
            tmp.rename(src)
        acc.wait_for_everyone()

    @torch.no_grad()
    def validate(step: int) -> None:
        obj = _root(objective)
        obj.eval()
        rows, ps, p0, losses = [], [], [], []
        with _Unsharded(objective):
            for item in val:
                b = {k: (v.to(acc.device) if torch.is_tensor(v) else v) for k, v in item.items()}
                fs, ft = obj.encoder(torch.cat([b["source"], b["target"]])).chunk(2)
                fq = obj.encoder(b["query"])
                pred = obj.head(obj.rformer(fs, ft), fq, b["query"])
                # Scored at the head's own size: the no-op is the query resampled the same way.
                size = pred.shape[-2:]
                rs = lambda x: torch.nn.functional.interpolate(x.float(), size=size, mode="bilinear",  # noqa: E731
                                                               antialias=True, align_corners=False)
                losses.append(float(torch.nn.functional.mse_loss(pred, rs(b["ground_truth"]))))
                q, g, p = to_uint8(rs(b["query"]))[0], to_uint8(rs(b["ground_truth"]))[0], to_uint8(pred)[0]
                rows.append([q, g, p])
                ps.append(_psnr(p, g))
                p0.append(_psnr(q, g))
        if acc.is_main_process:
            _save_image(_grid(rows), out / "validation" / f"stage1-{step:06d}.png")
        log.log("stage1/val", step, {"loss": float(np.mean(losses)), "psnr": float(np.mean(ps)),
                                     "psnr_noop": float(np.mean(p0))})
        obj.train()

    try:
        return run_loop("1", cfg, out, objective, params, acc, log, validate=validate, export=export,
                        max_steps=max_steps, deadline=deadline, progress=progress)
    finally:
        log.close()


def train_stage2(cfg: dict, out: Path, *, max_steps=None, deadline=None, progress=True) -> dict:
    from ..model.encoder import PatchEncoder
    from ..model.pipeline import MirrorPPRPipeline, to_uint8
    from ..model.rformer import RFormer
    from .losses import FlowMatchingObjective

    acc = _accelerator(cfg, out)
    torch.manual_seed(int(cfg["train"]["seed"]))
    weights = out / "weights"
    if (weights / "mirrorppr.json").is_file() and _progress(out, "2")["step"]:
        pipe = MirrorPPRPipeline.from_pretrained(weights)           # resume stage II
    else:
        pipe = MirrorPPRPipeline.build(cfg["model"])
        s1 = out / "stage1"
        if (s1 / "rformer").is_dir():        # the extractor pretrained in stage I
            pipe.rformer.load_state_dict(RFormer.from_pretrained(s1 / "rformer").state_dict())
            if (s1 / "encoder").is_dir():
                pipe.encoder.load_state_dict(PatchEncoder.from_pretrained(s1 / "encoder").state_dict())
        elif acc.is_main_process:
            print("stage II without stage I: the R-Former starts from scratch")
    if cfg["train"]["grad_checkpointing"]:
        pipe.transformer.enable_gradient_checkpointing()
    s2 = cfg["stage2"]
    objective = FlowMatchingObjective(pipe, float(s2.get("logit_mean", 0.0)), float(s2.get("logit_std", 1.0)))
    params = [p for p in objective.parameters() if p.requires_grad]
    log = Logger(out, acc.is_main_process)
    val = Batches(cfg, 0, 1).fixed(int(cfg["data"].get("validation", 4)))

    def export(step: int) -> None:
        state = acc.get_state_dict(objective)          # every rank: FSDP gathers the shards
        if acc.is_main_process:
            pipe.save_pretrained(weights, extra={"trained_steps": step, "config": cfg.get("name")},
                                 state_dict=state)
        acc.wait_for_everyone()

    @torch.no_grad()
    def validate(step: int) -> None:
        objective.eval()
        rows, ps, p0 = [], [], []
        with _Unsharded(objective):
            for i, item in enumerate(val):
                s, t_, q, g = (to_uint8(item[k])[0] for k in ("source", "target", "query", "ground_truth"))
                o = pipe(s, t_, q, num_inference_steps=int(cfg["train"]["inference_steps"]),
                         generator=torch.Generator().manual_seed(i), output_type="np", progress=False).images[0]
                o = (o * 255).round().astype(np.uint8)
                rows.append([s, t_, q, g, o])
                ps.append(_psnr(o, g))
                p0.append(_psnr(q, g))
        if acc.is_main_process:
            _save_image(_grid(rows), out / "validation" / f"stage2-{step:06d}.png")
        log.log("stage2/val", step, {"psnr": float(np.mean(ps)), "psnr_noop": float(np.mean(p0))})
        objective.train()

    try:
        return run_loop("2", cfg, out, objective, params, acc, log, validate=validate, export=export,
                        max_steps=max_steps, deadline=deadline, progress=progress)
    finally:
        log.close()


def train(cfg: dict, out: str | Path, stages: tuple[str, ...] = ("1", "2"), *, max_steps: int | None = None,
          minutes: float | None = None, progress: bool = True) -> list[dict]:
    """Run the requested stages (resuming each where a previous run stopped); returns a
    summary per stage. ``minutes`` bounds the wall time of the whole call."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=1))
    deadline = time.time() + 60 * minutes if minutes else None
    results = []
    for st in stages:
        if _progress(out, st).get("done") and max_steps is None:
            results.append({"stage": st, "skipped": "already done"})
            continue
        fn = train_stage1 if st == "1" else train_stage2
        results.append(fn(cfg, out, max_steps=max_steps, deadline=deadline, progress=progress))
    return results
