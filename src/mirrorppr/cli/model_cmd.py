"""``mirrorppr train``: two-stage training of the learned MirrorPPR system."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .common import FORMATTER


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train the learned MirrorPPR model (stage I, then stage II)",
        description="Stage I pretrains the operation extractor (R-Former) with a reconstruction "
                    "head on self-augmented quadruplets; stage II trains R-Former + connector + "
                    "LoRA (or a small from-scratch base) with the flow-matching loss, simulated "
                    "data first, professional later (the curriculum in data.schedule). Runs "
                    "resume from OUT/state. The weights for 'retouch --engine model' end up "
                    "in OUT/weights. Shipped configs: tiny (CPU, seconds), small (one GPU, "
                    "minutes, 256 px), paper (Qwen-Image-Edit + MAE-L from local folders); and the "
                    "learned warp head (beyond the paper: operation tokens decoded into a "
                    "displacement field, 'retouch --engine learned-warp'): warp-tiny (tests), "
                    "warp-small (two CPU cores, an hour).",
        epilog="examples:\n"
               "  mirrorppr data simulate portraits/ --out shards/sim --size 256\n"
               "  mirrorppr train --config small --data shards/sim --out runs/small --minutes 8\n"
               "  mirrorppr train --config my.yaml --out runs/x --set stage2.steps=500 --stage 2\n"
               "  accelerate launch -m mirrorppr train --config paper --out runs/paper   # many GPUs\n"
               "  mirrorppr train --config warp-small --data shards/llw shards/pro --out runs/warp --minutes 60\n"
               "  mirrorppr retouch --engine model --weights runs/small/weights --source a.jpg "
               "--target b.jpg --query q.jpg -o out.jpg",
        formatter_class=FORMATTER)
    p.add_argument("--config", required=True, metavar="NAME|FILE", help="tiny, small, paper or a YAML file")
    p.add_argument("--out", type=Path, help="run folder (weights, state, metrics, validation images)")
    p.add_argument("--data", type=Path, nargs="+", metavar="SHARDS", help="shard folders (replace data.shards)")
    p.add_argument("--stage", choices=["1", "2", "all"], default="all",
                   help="which stage to run (default all: I, then II from its R-Former)")
    p.add_argument("--steps", type=int, help="steps per stage (overrides the config)")
    p.add_argument("--minutes", type=float, help="stop (and save) after this much wall time")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config value, e.g. --set data.batch_size=8")
    p.add_argument("--describe", action="store_true",
                   help="build the model, print parameters per module (total / trainable) and exit")
    p.set_defaults(func=run_train)


def describe(cfg: dict) -> list[tuple[str, int, int]]:
    """(module, parameters, trainable) of the stage-II model of ``cfg`` (or of the warp head)."""
    if cfg.get("kind") == "warp":
        from ..model.warp import LearnedWarp

        m = LearnedWarp(**cfg["model"])
        return [(name, sum(p.numel() for p in c.parameters()), sum(p.numel() for p in c.parameters()))
                for name, c in m.named_children() if sum(p.numel() for p in c.parameters())]
    from ..model.pipeline import MirrorPPRPipeline

    pipe = MirrorPPRPipeline.build(cfg["model"])
    rows = []
    for name in ("encoder", "rformer", "connector", "transformer"):
        m = getattr(pipe, name)
        rows.append((name, sum(p.numel() for p in m.parameters()),
                     sum(p.numel() for p in m.parameters() if p.requires_grad)))
    return rows


def run_train(args) -> int:
    try:
        from ..train import load_config, train
    except ModuleNotFoundError as exc:
        raise ConfigError(f"training needs the 'model' extra ({exc.name} missing): "
                          "pip install 'mirrorppr[model]'") from None
    overrides = list(args.overrides)
    if args.data:
        overrides.append("data.shards=[" + ", ".join(f'"{d}"' for d in args.data) + "]")
    cfg = load_config(args.config, overrides)
    if args.describe:
        print(f"{'module':<12} {'parameters':>14} {'trainable':>14}")
        for name, n, t in describe(cfg):
            print(f"{name:<12} {n:>14,} {t:>14,}")
        return 0
    if args.out is None:
        raise ConfigError("--out DIR is required to train")
    if cfg.get("kind") == "warp":
        from ..train.warp import train_warp

        results = train_warp(cfg, args.out, max_steps=args.steps, minutes=args.minutes)
    else:
        stages = ("1", "2") if args.stage == "all" else (args.stage,)
        results = train(cfg, args.out, stages, max_steps=args.steps, minutes=args.minutes)
    for r in results:
        if "skipped" in r:
            print(f"stage {r['stage']}: {r['skipped']}")
            continue
        first, last = (r["losses"][0][1], r["losses"][-1][1]) if r["losses"] else (None, None)
        loss = f"loss {first:.4f} -> {last:.4f}" if first is not None else "no full logging window"
        print(f"stage {r['stage']}: steps {r['start_step']} -> {r['steps']}, {loss}")
    print(f"weights: {args.out / 'weights'}  metrics: {args.out / 'metrics.jsonl'}  "
          f"validation images: {args.out / 'validation'}")
    return 0
