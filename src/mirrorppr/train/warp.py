"""Training the learned warp head (``mirrorppr train --config warp-small``).

One objective, :class:`WarpObjective`, supervised by the exact motion the data engine
stored and by the image:

- ``field``: end-point error of the effective motion (mask x motion, what moves the
  pixels to first order) against the stored field, everywhere in the crop;
- ``motion``: the motion itself where the truth's blend mask is on (the paper's
  procedure blends warped and original pixels: there the motion and the mask both count);
- ``mask``: the blend mask (paper procedure) or ones where anything moves (plain warps);
- ``relative``: the effective motion's squared error over its energy, per sample;
- ``ramp``: whether the exemplar shows the paper procedure's resampling ramp (the motion
  terms use the true verdict: motion and detection are learnt apart);
- ``image``: the query rendered by the prediction (warp, then blend) against the truth;
- ``recipe``: the exemplar's recipe read off the tokens (a training aid: simulated data
  knows it, and it makes the tokens carry the edit early).

Output folder: ``weights/`` (``LearnedWarp.from_pretrained``; what ``--engine
learned-warp --weights`` loads), ``state/warp`` (resume), ``metrics.jsonl``, ``tb/``,
``validation/``.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..imageio import atomic_write_text
from ..model.warp import LearnedWarp, save_weights


def render(query: torch.Tensor, d: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The query (B, 3, S, S) warped backwards by ``d`` (B, 2, c, c, crop pixels) and
    blended through ``mask`` (B, 1, c, c): what the engine does at full resolution."""
    b, _, s, _ = query.shape
    d = F.interpolate(d, size=(s, s), mode="bilinear", align_corners=False)
    m = F.interpolate(mask, size=(s, s), mode="bilinear", align_corners=False)
    u = torch.arange(s, dtype=query.dtype, device=query.device)
    gy, gx = torch.meshgrid(u, u, indexing="ij")
    x = (2 * (gx + d[:, 0]) + 1) / s - 1
    y = (2 * (gy + d[:, 1]) + 1) / s - 1
    warped = F.grid_sample(query, torch.stack([x, y], -1), mode="bilinear", padding_mode="border",
                           align_corners=False)
    return m * warped + (1 - m) * query


def total_motion(out, ramp_field: torch.Tensor, ramp: torch.Tensor | None = None) -> torch.Tensor:
    """The head's motion plus the paper procedure's ramp when the exemplar shows it:
    ``ramp`` (B,) given (in training, the truth: the motion is learnt apart from the
    ramp's detection), or the head's own verdict."""
    r = (out.ramp > 0.5).to(out.d.dtype) if ramp is None else ramp.to(out.d.dtype)
    return out.d + r[:, None, None, None] * ramp_field


class WarpObjective(nn.Module):
    def __init__(self, model: LearnedWarp, weights: dict | None = None) -> None:
        super().__init__()
        self.model = model
        self.w = {"field": 1.0, "relative": 1.0, "motion": 0.5, "mask": 0.5, "ramp": 0.2, "image": 10.0,
                  "recipe": 1.0, **(weights or {})}
        self.last: dict[str, float] = {}

    def terms(self, batch: dict) -> dict[str, torch.Tensor]:
        out = self.model(batch["source"], batch["target"], batch["query"])
        d = total_motion(out, batch["ramp_field"], batch["exact"])
        eff, eff_gt = out.mask * d, batch["mask"] * batch["d"]
        epe = torch.sqrt(((eff - eff_gt) ** 2).sum(1) + 1e-6)
        # Per sample, the motion error relative to the motion itself (1 for "no motion"):
        # what the gain in the edit region measures, and a signal that sparse, small edits
        # do not drown in the unmoved rest of the crop.
        energy = (eff_gt ** 2).sum((1, 2, 3))
        rel = (((eff - eff_gt) ** 2).sum((1, 2, 3)) / (energy + 0.5)).mean()
        on = batch["mask"][:, 0] * batch["has_mask"][:, None, None]
        motion = (torch.sqrt(((d - batch["d"]) ** 2).sum(1) + 1e-6) * on).sum() / on.sum().clamp_min(1.0)
        moving = (batch["d"].abs().sum(1) > 0.05).float()
        mw = batch["has_mask"][:, None, None] + (1 - batch["has_mask"][:, None, None]) * moving
        mtarget = torch.where(batch["has_mask"][:, None, None] > 0, batch["mask"][:, 0], torch.ones_like(moving))
        bce = F.binary_cross_entropy(out.mask[:, 0].clamp(1e-4, 1 - 1e-4), mtarget, reduction="none")
        mask = (bce * mw).sum() / mw.sum().clamp_min(1.0)
        ramp = F.binary_cross_entropy_with_logits(out.ramp_logit, batch["exact"])
        pred = render(batch["query_rgb"], d, out.mask)
        image = (pred - batch["truth_rgb"]).abs().mean()
        t = {"field": epe.mean(), "relative": rel, "motion": motion, "mask": mask, "ramp": ramp, "image": image}
        if out.recipe is not None and "recipe" in batch:
            t["recipe"] = F.mse_loss(out.recipe, batch["recipe"]) * out.recipe.shape[1]
        return t

    def forward(self, batch: dict) -> torch.Tensor:
        t = self.terms(batch)
        self.last = {k: float(v.detach()) for k, v in t.items()}
        return sum(self.w[k] * v for k, v in t.items())


def _psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    d = (a - b) ** 2 * (127.5 ** 2)
    if mask is not None:
        d = d[mask.expand_as(d)]
    mse = float(d.mean()) if d.numel() else 0.0
    return 99.0 if mse <= 1e-10 else 10 * math.log10(255.0 ** 2 / mse)


def train_warp(cfg: dict, out: str | Path, *, max_steps: int | None = None, minutes: float | None = None,
               progress: bool = True) -> list[dict]:
    """Train (or resume) the warp head of ``cfg``; returns a one-stage summary.
    ``minutes`` bounds the training time (the data is cached first: OUT/cache.pkl, or
    data.cache, reused by later runs on the same shards)."""
    from tqdm import tqdm

    from ..model.sizes import model_spec
    from .loop import Logger, _Unsharded, _accelerator, _progress, _root, _save_state, fit_wrap
    from .warp_data import WarpBatches, load_cache

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=1))
    deadline = time.time() + 60 * minutes if minutes else None
    t = cfg["train"]
    acc = _accelerator(cfg, out)
    torch.manual_seed(int(t["seed"]))
    spec = model_spec(cfg["model"])
    weights = out / "weights"
    prog = _progress(out, "warp")
    model = LearnedWarp.from_pretrained(weights) if prog["step"] and (weights / "config.json").is_file() \
        else LearnedWarp(**spec)
    d = cfg["data"]
    folders = [Path(p) for p in d.get("shards") or []]
    from ..errors import ConfigError
    if not folders:
        raise ConfigError("no training data: set data.shards (folders made by 'mirrorppr data simulate'), "
                          "e.g. --data shards/sim")
    store = Path(d["cache"]) if d.get("cache") else out / "cache.pkl"
    if acc.is_main_process:              # one process builds the cache file, the others read it
        cache = load_cache(folders, int(spec["crop"]), d.get("limit"), progress=progress, store=store)
    acc.wait_for_everyone()
    if not acc.is_main_process:
        cache = load_cache(folders, int(spec["crop"]), d.get("limit"), store=store)
    if minutes:                          # the time bound counts training, not caching
        deadline = time.time() + 60 * minutes
    if not cache:
        raise ConfigError(f"data.shards: no samples with a stored field in {', '.join(map(str, folders))} "
                          "(shards from before the field was stored; simulate them again)")
    bcfg = {**d, "crop": spec["crop"], "out_stride": spec["out_stride"]}
    batches = WarpBatches(cache, bcfg, seed=int(t["seed"]), rank=acc.process_index)
    val = WarpBatches(cache, {**bcfg, "batch_size": 1}, seed=int(t["seed"])).fixed(int(d.get("validation", 8)))
    objective = WarpObjective(model, cfg.get("loss"))
    s = cfg["stage"]
    steps = int(max_steps if max_steps is not None else s["steps"])
    opt = torch.optim.AdamW(objective.parameters(), lr=float(s["lr"]), weight_decay=float(s.get("weight_decay", 0.0)))
    warm = int(s.get("warmup", 0))

    def lr_at(step: int) -> float:       # warm-up, then cosine to a tenth
        if step < warm:
            return (step + 1) / warm
        p = min(1.0, (step - warm) / max(1, steps - warm))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    fit_wrap(acc, objective)
    objective, opt, sched = acc.prepare(objective, opt, sched)
    start = 0
    if prog["step"] and (out / "state" / "stagewarp").is_dir():
        acc.load_state(str(out / "state" / "stagewarp"))
        start = int(prog["step"])
    log = Logger(out, acc.is_main_process)
    dev = acc.device

    def export(step: int) -> None:
        # Every rank takes part in gathering the full state (FSDP shards it); one writes.
        state = acc.get_state_dict(objective)
        if acc.is_main_process:
            state = {k.removeprefix("model."): v for k, v in state.items()}
            save_weights(acc.unwrap_model(objective).model, weights, state,
                         {"trained_steps": step, "config": cfg.get("name"), "crop": spec["crop"]})
        acc.wait_for_everyone()

    @torch.no_grad()
    def validate(step: int) -> None:
        # Every rank runs the same forward (a sharded model needs all of them); one logs.
        objective.eval()
        b = {k: v.to(dev) for k, v in val.items()}
        with _Unsharded(objective):
            out_ = _root(objective).model(b["source"], b["target"], b["query"])
        dd = total_motion(out_, b["ramp_field"])
        pred = render(b["query_rgb"], dd, out_.mask)
        eff, eff_gt = out_.mask * dd, b["mask"] * b["d"]
        epe = float(torch.sqrt(((eff - eff_gt) ** 2).sum(1)).mean())
        edit = ((b["truth_rgb"] - b["query_rgb"]).abs().amax(1, keepdim=True) > 12 / 127.5)
        m = {"epe": epe, "epe_noop": float(torch.sqrt((eff_gt ** 2).sum(1)).mean()),
             "psnr_edit": _psnr(pred, b["truth_rgb"], edit),
             "psnr_edit_noop": _psnr(b["query_rgb"], b["truth_rgb"], edit),
             "ramp_acc": float(((out_.ramp > 0.5).float() == b["exact"]).float().mean())}
        log.log("warp/val", step, m)
        if acc.is_main_process:
            from .loop import _grid, _save_image
            from ..model.pipeline import to_uint8
            q, g, p = to_uint8(b["query_rgb"]), to_uint8(b["truth_rgb"]), to_uint8(pred)
            _save_image(_grid([[qi, gi, pi] for qi, gi, pi in zip(q, g, p)][:8]),
                        out / "validation" / f"warp-{step:06d}.png")
        objective.train()

    objective.train()
    it = iter(batches)
    summary = {"stage": "warp", "start_step": start, "steps": start, "losses": []}
    bar = tqdm(total=steps, initial=start, desc="warp", unit="step", disable=not (progress and acc.is_main_process))
    step, window, terms, busy, seen = start, [], [], 0.0, 0
    wait0, t_last = batches.wait_s, time.perf_counter()
    while step < steps:
        if deadline is not None and time.time() > deadline:
            break
        for _ in range(int(t["grad_accum"])):
            batch = {k: v.to(dev) for k, v in next(it).items()}
            t1 = time.perf_counter()
            with acc.accumulate(objective):
                loss = objective(batch)
                acc.backward(loss)
                if acc.sync_gradients and t["max_grad_norm"]:
                    acc.clip_grad_norm_(objective.parameters(), float(t["max_grad_norm"]))
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
            busy += time.perf_counter() - t1
            seen += batch["query"].shape[0] * acc.num_processes
            window.append(float(loss.detach()))
            terms.append(_root(objective).last)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(window[-10:]):.4f}")
        if step % int(t["log_every"]) == 0 or step == steps:
            dt = time.perf_counter() - t_last
            wait = batches.wait_s - wait0
            m = {"loss": float(np.mean(window)), "lr": float(sched.get_last_lr()[0]),
                 "samples_per_s": seen / max(dt, 1e-9), "data_wait_s": wait, "compute_s": busy,
                 "data_wait_share": wait / max(wait + busy, 1e-9), "processes": acc.num_processes,
                 **{k: float(np.mean([x[k] for x in terms])) for k in terms[0]}}
            if torch.cuda.is_available():
                m["gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 2 ** 30
            log.log("warp", step, m)
            summary["losses"].append((step, m["loss"]))
            window, terms, busy, seen, wait0, t_last = [], [], 0.0, 0, batches.wait_s, time.perf_counter()
        if step % int(t["validate_every"]) == 0:
            validate(step)
        if step % int(t["checkpoint_every"]) == 0 and step < steps:
            _save_state(acc, out, "warp", step, done=False)
            export(step)
    bar.close()
    summary["steps"] = step
    _save_state(acc, out, "warp", step, done=step >= steps)
    export(step)
    if step % int(t["validate_every"]):
        validate(step)
    log.close()
    return [summary]
