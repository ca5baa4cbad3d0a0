"""``retouch``, ``analyze``, ``apply``, ``batch`` and ``demo``: the main job."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


from ..analyze import analyze
from ..analyze.operation import Operation
from ..errors import ConfigError, InputError, OutputError
from ..imageio import read_image, write_image
from ..landmarks import find_face
from ..transfer import ENGINES, Retoucher
from ..transfer.batch import check_dirs, run_batch
from ..transfer.transport import transport
from ..visualize import flow_arrows, panels
from .common import FORMATTER, add_landmarker, write_rgb


def _engine_options(p) -> None:
    p.add_argument("--engine", default="auto", choices=sorted(ENGINES) + (["model"] if "model" not in ENGINES else []),
                   help="auto (default): fitted ops + unexplained motion; recipe: fitted ops "
                        "only; flow: the measured motion carried to the new face; model: the "
                        "learned system (needs --weights)")
    p.add_argument("--strength", type=float, default=1.0, metavar="K",
                   help="global strength multiplier, 0..2 (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="OP=STRENGTH", dest="overrides",
                   help="override one op's strength (-100..100), e.g. --set eye_resize=30")
    p.add_argument("--mode", choices=["auto", "fast", "exact"], default="auto",
                   help="how recipes are applied: exact = the paper's procedure (LLW ops, "
                        "default when all ops are LLW and the photo is <= 8 MP), fast = one warp")
    m = p.add_argument_group("model engine (learned MirrorPPR; needs the 'model' extra)")
    m.add_argument("--weights", type=Path, help="trained weights folder (from 'mirrorppr train')")
    m.add_argument("--steps", type=int, default=40, help="sampling steps (default 40)")
    m.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    m.add_argument("--paste", choices=["flow", "resize"], default="flow",
                   help="carry the result to full resolution as a warp of the original (flow, "
                        "default) or by resizing the model's pixels (resize)")
    m.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    m.add_argument("--base", metavar="DIR", help="where the frozen base model is on this machine, "
                                                 "if not where it was during training")
    add_landmarker(p)


def _overrides(items: list[str]) -> dict[str, float]:
    out = {}
    for it in items:
        name, sep, val = it.partition("=")
        if not sep:
            raise ConfigError(f"--set {it!r}: expected OP=STRENGTH")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise ConfigError(f"--set {it!r}: {val!r} is not a number") from None
    return out


def _retoucher(op: Operation, args) -> Retoucher:
    if args.engine == "model":
        _register_model(args)
    return Retoucher(op, engine=args.engine, strength=args.strength, overrides=_overrides(args.overrides),
                     mode=args.mode, landmarker=args.landmarker, face_index=args.face_index)


def _register_model(args) -> None:
    if args.weights is None:
        raise ConfigError("--engine model needs --weights DIR (a trained MirrorPPR folder)")
    try:
        from ..model.engine import register_model_engine
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the model engine needs the 'model' extra ({exc.name} missing): "
                          "pip install 'mirrorppr[model]'") from None
    from ..model.engine import ModelSettings

    if not (args.weights / "mirrorppr.json").is_file():
        raise ConfigError(f"{args.weights}: not a MirrorPPR weights folder (mirrorppr.json missing)")
    register_model_engine(args.weights, ModelSettings(
        steps=args.steps, seed=getattr(args, "seed", 0), paste=args.paste, device=args.device,
        base_path=getattr(args, "base", None)))


def register(sub) -> None:
    p = sub.add_parser(
        "retouch", help="retouch a portrait the way an exemplar pair was retouched",
        description="Learn the structural edits between --source (before) and --target (after) "
                    "of one person, and apply the same edits to --query, adapted to its face.",
        epilog="examples:\n"
               "  mirrorppr retouch --source before.jpg --target after.jpg --query new.jpg -o out.jpg\n"
               "  mirrorppr retouch ... --strength 0.5 --compare cmp.jpg --save-preset look.json",
        formatter_class=FORMATTER)
    p.add_argument("--source", type=Path, required=True, help="exemplar before retouching")
    p.add_argument("--target", type=Path, required=True, help="the same photo after retouching")
    p.add_argument("--query", type=Path, required=True, help="the portrait to retouch")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--compare", type=Path, metavar="FILE", help="write exemplar + before/after panels")
    p.add_argument("--save-preset", type=Path, metavar="FILE", help="also save the analysed operation")
    _engine_options(p)
    p.set_defaults(func=run_retouch)

    p = sub.add_parser(
        "analyze", help="infer the operation of an exemplar pair and save it as a preset",
        description="Measure what moved between --source and --target, explain it with named "
                    "operations, and save the result as a reusable preset (JSON).",
        epilog="example:\n  mirrorppr analyze --source before.jpg --target after.jpg -o look.json "
               "--visualize motion.jpg",
        formatter_class=FORMATTER)
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--target", type=Path, required=True)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="PRESET.json")
    p.add_argument("--visualize", type=Path, metavar="FILE", help="write the measured motion as arrows on a heatmap")
    p.add_argument("--ops", choices=["all", "llw", "pro"], default="all",
                   help="which op vocabulary may explain the edit (default all)")
    add_landmarker(p)
    p.set_defaults(func=run_analyze)

    p = sub.add_parser(
        "apply", help="apply a saved preset to photos",
        description="Apply a preset made by 'mirrorppr analyze' to one or more photos.",
        epilog="example:\n  mirrorppr apply look.json a.jpg b.jpg -o retouched/",
        formatter_class=FORMATTER)
    p.add_argument("preset", type=Path)
    p.add_argument("inputs", type=Path, nargs="+")
    p.add_argument("-o", "--outdir", type=Path, required=True)
    p.add_argument("--suffix", default="", help="added to output names (default none)")
    _engine_options(p)
    p.set_defaults(func=run_apply)

    p = sub.add_parser(
        "batch", help="retouch a whole folder (parallel, resumable)",
        description="Retouch every image below INDIR into OUTDIR (same sub-folders), from an "
                    "exemplar pair or a preset. Existing complete outputs are skipped, so an "
                    "interrupted run resumes. Files that fail are reported and skipped.",
        epilog="examples:\n  mirrorppr batch --source before.jpg --target after.jpg shoot/ retouched/\n"
               "  mirrorppr batch --preset look.json shoot/ retouched/ --workers 2",
        formatter_class=FORMATTER)
    p.add_argument("indir", type=Path)
    p.add_argument("outdir", type=Path)
    p.add_argument("--source", type=Path)
    p.add_argument("--target", type=Path)
    p.add_argument("--preset", type=Path)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--suffix", default="")
    p.add_argument("--report", type=Path, help="write a JSON report of done/skipped/failed files")
    _engine_options(p)
    p.set_defaults(func=run_batch_cmd)

    p = sub.add_parser(
        "demo", help="retouch bundled portraits from a bundled exemplar pair",
        description="The main job on bundled real photos (no files needed): an exemplar pair is "
                    "made from one portrait, analysed, and its retouching applied to other "
                    "portraits; before/after images are written to --out.",
        formatter_class=FORMATTER)
    p.add_argument("--out", type=Path, default=Path("out"))
    p.set_defaults(func=run_demo)


def run_retouch(args) -> int:
    t = time.perf_counter()
    if args.engine == "model":      # the learned system reads the pair itself, no analysis
        op = Operation.from_pair(read_image(args.source).rgb8(), read_image(args.target).rgb8())
        if args.save_preset:
            raise ConfigError("--save-preset: the model engine makes no analysis to save")
    else:
        op = analyze(args.source, args.target, backend=args.landmarker)
    ta = time.perf_counter() - t
    r = _retoucher(op, args)
    query = read_image(args.query)
    res = r.run(query)
    write_image(res.photo, args.output, protect=(args.source, args.target, args.query))
    if args.save_preset:
        op.save(args.save_preset)
    if args.compare:
        src, tgt = read_image(args.source).rgb8(), read_image(args.target).rgb8()
        img = panels([src, tgt, query.rgb8(), res.photo.rgb8()],
                     ["exemplar before", "exemplar after", "query", f"retouched ({args.engine})"])
        write_rgb(img, args.compare, protect=(args.source, args.target, args.query))
    what = "learned model" if args.engine == "model" else op.describe()
    print(f"{args.output}: {what}; engine {args.engine}; analysis {ta:.2f} s, "
          f"retouch {res.seconds:.2f} s")
    return 0


def run_analyze(args) -> int:
    fams = {"all": ("llw", "pro"), "llw": ("llw",), "pro": ("pro",)}[args.ops]
    src = read_image(args.source)
    face = find_face(src.rgb8(), source=str(args.source), backend=args.landmarker, index=args.face_index)
    op = analyze(src, args.target, families=fams, face=face)
    op.save(args.output)
    if args.visualize:
        rgb = src.rgb8()
        f = transport(op.flow, op.landmarks, face.points, (rgb.shape[1], rgb.shape[0]))
        write_rgb(flow_arrows(rgb, f.dense()), args.visualize, protect=(args.source, args.target))
    print(op.describe())
    print(f"preset written to {args.output}")
    return 0


def run_apply(args) -> int:
    r = _retoucher(Operation.load(args.preset), args)
    failures = 0
    for src in args.inputs:
        dst = args.outdir / f"{src.stem}{args.suffix}{src.suffix}"
        try:
            res = r.retouch_file(src, dst)
            print(f"{dst}: {res.seconds:.2f} s")
        except (InputError, OutputError) as exc:
            failures += 1
            print(f"mirrorppr: {exc}", file=sys.stderr)
        except Exception as exc:  # a face error etc.: report and go on with the rest
            from ..errors import MirrorError
            if not isinstance(exc, MirrorError):
                raise
            failures += 1
            print(f"mirrorppr: {exc}", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(args.inputs)} failed", file=sys.stderr)
        return 7
    return 0


def run_batch_cmd(args) -> int:
    if args.preset and (args.source or args.target):
        raise ConfigError("give either --preset or --source/--target, not both")
    if not args.preset and not (args.source and args.target):
        raise ConfigError("give --preset FILE or both --source and --target")
    if not args.indir.is_dir():
        raise InputError(f"{args.indir}: not a folder")
    check_dirs(args.indir, args.outdir)
    op = Operation.load(args.preset) if args.preset else analyze(args.source, args.target,
                                                                 backend=args.landmarker)
    print(f"operation: {op.describe()}")
    if args.engine == "model":
        raise ConfigError("batch with the model engine: use 'apply' (one GPU process)")
    kw = dict(engine=args.engine, strength=args.strength, overrides=_overrides(args.overrides),
              mode=args.mode, landmarker=args.landmarker, face_index=args.face_index)
    rep = run_batch(op, args.indir, args.outdir, workers=args.workers, suffix=args.suffix,
                    progress=True, **kw)
    for src, err in sorted(rep.failed.items()):
        print(f"  failed: {err}", file=sys.stderr)
    print(rep.summary())
    if args.report:
        from ..imageio import atomic_write_text
        atomic_write_text(args.report, json.dumps({"done": rep.done, "skipped": rep.skipped,
                                                   "failed": rep.failed, "seconds": rep.seconds}, indent=1))
    return 7 if rep.failed else 0


def run_demo(args) -> int:
    from ..demo import run_demo as demo
    demo(args.out)
    return 0


__all__ = ["register"]
