"""``retouch``, ``analyze``, ``apply``, ``batch`` and ``demo``: the main job."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


from ..analyze import analyze
from ..analyze.operation import Operation
from ..errors import ConfigError, InputError, MirrorError
from ..imageio import SUPPORTED_SUFFIXES, read_image, write_image
from ..landmarks import find_face
from ..transfer import ENGINES, Retoucher
from ..transfer.batch import check_dirs, check_suffix, list_images, run_batch
from ..transfer.transport import transport
from ..visualize import flow_arrows, panels
from .common import (FORMATTER, StageLine, add_landmarker, add_output_options, add_procedure,
                     claim_image, claim_json, guard, load_preset, print_notes, quality_arg, write_rgb)


#: Engines that read the exemplar pair itself (no analysis) and load --weights.
PAIR_ENGINES = ("model", "learned-warp")


def _engine_options(p) -> None:
    p.add_argument("--engine", default="auto", choices=sorted(ENGINES) + [e for e in PAIR_ENGINES if e not in ENGINES],
                   help="auto (default): fitted ops + unexplained motion; recipe: fitted ops "
                        "only; flow: the measured motion carried to the new face; model: the "
                        "learned system (needs --weights); learned-warp: the learned warp head "
                        "(needs --weights)")
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
    from ..ops.recipe import Step

    out = {}
    for it in items:
        name, sep, val = it.partition("=")
        if not sep:
            raise ConfigError(f"--set {it!r}: expected OP=STRENGTH")
        try:
            value = float(val)
        except ValueError:
            raise ConfigError(f"--set {it!r}: {val!r} is not a number") from None
        out[name.strip()] = Step.checked(name.strip(), value, f"--set {it!r}").strength
    return out


def _check_options(args) -> None:
    """Refuse bad option values before any work (exit 6)."""
    k = getattr(args, "strength", 1.0)
    if not 0.0 <= k <= 2.0:        # also NaN
        raise ConfigError(f"--strength {k:g}: expected a multiplier from 0 to 2")
    _overrides(getattr(args, "overrides", []))
    if getattr(args, "face_index", None) is not None and args.face_index < 0:
        raise ConfigError(f"--face-index {args.face_index}: expected 0 (the largest face) or more")
    if getattr(args, "workers", None) is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected 1 or more")
    if getattr(args, "steps", None) is not None and args.steps < 1:
        raise ConfigError(f"--steps {args.steps}: expected 1 or more")


def _retoucher(op: Operation, args) -> Retoucher:
    if args.engine in PAIR_ENGINES:
        _register_model(args)
    return Retoucher(op, engine=args.engine, strength=args.strength, overrides=_overrides(args.overrides),
                     mode=args.mode, landmarker=args.landmarker, face_index=args.face_index)


def _register_model(args, engine: str = "model") -> None:
    if getattr(args, "engine", engine) == "learned-warp" or engine == "learned-warp":
        _register_warp(args)
        return
    if args.weights is None:
        raise ConfigError("--engine model needs --weights DIR (a trained MirrorPPR folder)")
    try:
        from ..model.engine import ModelSettings, register_model_engine
    except ModuleNotFoundError as exc:
        raise _needs_model_extra("model", exc) from None

    if not (args.weights / "mirrorppr.json").is_file():
        raise ConfigError(f"{args.weights}: not a MirrorPPR weights folder (mirrorppr.json missing)")
    register_model_engine(args.weights, ModelSettings(
        steps=args.steps, seed=getattr(args, "seed", 0), paste=args.paste, device=args.device,
        base_path=getattr(args, "base", None)))


def _register_warp(args) -> None:
    if args.weights is None:
        raise ConfigError("--engine learned-warp needs --weights DIR (from 'mirrorppr train --config warp-small')")
    try:
        from ..model.warp_engine import WarpSettings, register_warp_engine
    except ModuleNotFoundError as exc:
        raise _needs_model_extra("learned-warp", exc) from None
    register_warp_engine(args.weights, WarpSettings(device=args.device))


def _needs_model_extra(engine: str, exc: ModuleNotFoundError) -> ConfigError:
    return ConfigError(f"the {engine} engine needs the 'model' extra ({exc.name} missing): "
                       "pip install 'mirrorppr[model]'")


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
    add_procedure(p)
    add_output_options(p)
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
    add_procedure(p)
    add_landmarker(p)
    add_output_options(p)
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
    add_output_options(p)
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
    add_procedure(p)
    p.add_argument("--overwrite", action="store_true",
                   help="redo every photo, replacing existing outputs (default: skip up-to-date outputs, "
                        "redo those made with other settings, keep files without a record)")
    p.add_argument("--quality", type=quality_arg, default=95, metavar="Q",
                   help="JPEG/WebP quality 1-100 (default 95)")
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
    _check_options(args)
    g = guard(args)
    g.protect(args.source, role="--source")
    g.protect(args.target, role="--target")
    g.protect(args.query, role="--query")
    if args.engine in PAIR_ENGINES and args.save_preset:
        raise ConfigError(f"--save-preset: the {args.engine} engine makes no analysis to save")
    claim_image(g, args.output, "-o")
    claim_image(g, args.compare, "--compare")
    claim_json(g, args.save_preset, "--save-preset")
    t = time.perf_counter()
    if args.engine in PAIR_ENGINES:      # the learned systems read the pair itself, no analysis
        op = Operation.from_pair(read_image(args.source).rgb8(), read_image(args.target).rgb8())
        if args.save_preset:
            raise ConfigError("--save-preset: the model engine makes no analysis to save")
    else:
        op = analyze(args.source, args.target, procedure=args.procedure, backend=args.landmarker,
                     face_index=args.face_index, progress=StageLine("analysing the exemplar"))
        print_notes(op)
    ta = time.perf_counter() - t
    r = _retoucher(op, args)
    query = read_image(args.query)
    res = r.run(query)
    for note in res.notes:
        print(f"note: {note}")
    write_image(res.photo, args.output, protect=(args.source, args.target, args.query), quality=args.quality)
    if args.save_preset:
        op.save(args.save_preset)
    if args.compare:
        src, tgt = read_image(args.source).rgb8(), read_image(args.target).rgb8()
        img = panels([src, tgt, query.rgb8(), res.photo.rgb8()],
                     ["exemplar before", "exemplar after", "query", f"retouched ({args.engine})"])
        write_rgb(img, args.compare, protect=(args.source, args.target, args.query), quality=args.quality)
    what = {"model": "learned model", "learned-warp": "learned warp head"}.get(args.engine) or op.describe()
    print(f"{args.output}: {what}; engine {args.engine}; analysis {ta:.2f} s, "
          f"retouch {res.seconds:.2f} s")
    return 0


def run_analyze(args) -> int:
    _check_options(args)
    g = guard(args)
    g.protect(args.source, role="--source")
    g.protect(args.target, role="--target")
    claim_json(g, args.output, "-o (the preset)")
    claim_image(g, args.visualize, "--visualize")
    fams = {"all": ("llw", "pro"), "llw": ("llw",), "pro": ("pro",)}[args.ops]
    src = read_image(args.source)
    face = find_face(src.rgb8(), source=str(args.source), backend=args.landmarker, index=args.face_index)
    op = analyze(src, args.target, families=fams, face=face, procedure=args.procedure,
                 backend=args.landmarker, progress=StageLine("analysing the exemplar"))
    op.save(args.output)
    if args.visualize:
        rgb = src.rgb8()
        f = transport(op.flow, op.landmarks, face.points, (rgb.shape[1], rgb.shape[0]))
        write_rgb(flow_arrows(rgb, f.dense()), args.visualize, protect=(args.source, args.target),
                  quality=args.quality)
    print(op.describe())
    print_notes(op)
    print(f"preset written to {args.output}")
    return 0


def run_apply(args) -> int:
    _check_options(args)
    g = guard(args)
    g.protect(args.preset, role="the preset")
    g.protect(*args.inputs)
    suffix = check_suffix(args.suffix)
    op = load_preset(args.preset)
    g.claim_dir(args.outdir, "-o")
    # All outputs are claimed before any work: two inputs named alike, an output that is
    # an input, or an existing file without --overwrite stop the run here.
    dsts = [g.claim(args.outdir / f"{src.stem}{suffix}{src.suffix}", f"the output of {src}",
                    suffixes=SUPPORTED_SUFFIXES) for src in args.inputs]
    r = _retoucher(op, args)
    failures: list[MirrorError] = []
    for src, dst in zip(args.inputs, dsts):
        try:
            res = r.run(src)
            write_image(res.photo, dst, protect=(src,), quality=args.quality)
            print(f"{dst}: {res.seconds:.2f} s")
        except MirrorError as exc:  # unreadable, no face...: report and go on with the rest
            if len(args.inputs) == 1:
                raise               # one photo: its own exit code
            failures.append(exc)
            print(f"mirrorppr: {exc}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(args.inputs)} failed", file=sys.stderr)
        return 7
    return 0


def run_batch_cmd(args) -> int:
    _check_options(args)
    if args.preset and (args.source or args.target):
        raise ConfigError("give either --preset or --source/--target, not both")
    if not args.preset and not (args.source and args.target):
        raise ConfigError("give --preset FILE or both --source and --target")
    if not args.indir.is_dir():
        raise InputError(f"{args.indir}: not a folder")
    if args.engine == "model":
        raise ConfigError("batch with the model engine: use 'apply' (one GPU process)")
    check_suffix(args.suffix)
    check_dirs(args.indir, args.outdir)
    g = guard(args)
    g.protect(args.indir, role="the input folder")
    g.protect(*list_images(args.indir))
    g.protect(args.preset, role="--preset")
    g.protect(args.source, role="--source")
    g.protect(args.target, role="--target")
    g.claim_dir(args.outdir, "OUTDIR")
    claim_json(g, args.report, "--report", replace=True)    # a log of this run: rewritten
    op = load_preset(args.preset) if args.preset else analyze(
        args.source, args.target, procedure=args.procedure, backend=args.landmarker,
        face_index=args.face_index, progress=StageLine("analysing the exemplar"))
    print(f"operation: {op.describe()}")
    print_notes(op)
    kw = dict(engine=args.engine, strength=args.strength, overrides=_overrides(args.overrides),
              mode=args.mode, landmarker=args.landmarker, face_index=args.face_index)
    rep = run_batch(op, args.indir, args.outdir, workers=args.workers, suffix=args.suffix,
                    progress=True, overwrite=args.overwrite, quality=args.quality, **kw)
    for src, err in sorted(rep.failed.items()):
        print(f"  failed: {err}", file=sys.stderr)
    for src, why in sorted(rep.kept.items()):
        print(f"  kept: {why}", file=sys.stderr)
    print(rep.summary())
    if args.report:
        from ..outputs import write_text
        write_text(args.report, json.dumps(rep.to_dict(), indent=1))
        print(f"report: {args.report}")
    if rep.interrupted:
        print("mirrorppr: interrupted", file=sys.stderr)
        return 130
    return 7 if rep.failed else 0


def run_demo(args) -> int:
    from ..demo import run_demo as demo
    guard(args).claim_dir(args.out, "--out")     # the demo rewrites its own files there
    demo(args.out)
    return 0


__all__ = ["register"]
