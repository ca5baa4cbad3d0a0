"""``mirrorppr eval`` and ``mirrorppr bench``: measuring the engines."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, InputError
from ..eval.runner import run_eval, to_markdown
from ..eval.simface import build_simface, make_portraits
from .common import FORMATTER, guard, add_procedure


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="score engines on benchmark case folders",
        description="Run engines on every case folder (source, target, query, ground-truth) and "
                    "score them: PSNR, SSIM, PSNR and gain in the edit region, PSNR outside it, "
                    "flow end-point error, face similarity, time. The no-op row and any "
                    "<system>-output.* in the cases are scored too.",
        epilog="example:\n  mirrorppr eval cases/ --engine auto --engine flow --out eval-out/",
        formatter_class=FORMATTER)
    p.add_argument("cases", type=Path)
    p.add_argument("--engine", action="append", default=[], help="engine to run (repeatable; default auto)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-facesim", action="store_true", help="skip the dlib face-similarity metric")
    p.add_argument("--ops", choices=["all", "llw", "pro"], default="all")
    add_procedure(p)
    m = p.add_argument_group("model engine (--engine model)")
    m.add_argument("--weights", type=Path, help="trained MirrorPPR weights folder")
    m.add_argument("--steps", type=int, default=40, help="sampling steps (default 40)")
    m.add_argument("--paste", choices=["flow", "resize"], default="flow")
    m.add_argument("--device", help="default: cuda when available")
    p.set_defaults(func=run_eval_cmd)

    p = sub.add_parser("bench", help="build benchmark cases",
                       description="Build benchmark material.", formatter_class=FORMATTER)
    bsub = p.add_subparsers(dest="bench", metavar="KIND")
    s = bsub.add_parser(
        "simface", help="SimFace-style cross-identity LLW cases from a folder of portraits",
        description="Build cases the paper's way: an exemplar person retouched with 1-3 random "
                    "LLW ops, a different query person, ground truth = the same recipe on the "
                    "query. Files in one sub-folder are one person.",
        formatter_class=FORMATTER)
    _case_args(s, "portraits", 100, "long side of every case image (default 1024)")
    s.set_defaults(func=run_simface)
    s = bsub.add_parser(
        "liquify", help="cross-identity cases from liquify-style brush strokes (no op of ours)",
        description="Build cases that no operation of this project made: an exemplar person "
                    "edited with 1-3 retoucher-style brush strokes (push, bloat, pucker with a "
                    "smooth falloff, placed on features with dlib's 68 landmarks in face units, "
                    "mirrored on both sides), a different query person, ground truth = the same "
                    "strokes placed on the query's own features. Files in one sub-folder are one "
                    "person; files directly in the folder are each their own.",
        epilog="example:\n  mirrorppr bench portraits people/ && mirrorppr bench liquify people/ --out liq/ --n 24",
        formatter_class=FORMATTER)
    _case_args(s, "portraits", 24)
    s.set_defaults(func=run_liquify)
    s = bsub.add_parser(
        "liquify-body", help="cross-identity body cases from liquify-style strokes (no op of ours)",
        description="Build body cases that no operation of this project made: an exemplar "
                    "person edited with 1-2 retoucher-style push strokes (shoulder width, "
                    "shoulder height, waist, upper arms; placed from the pose keypoints and the "
                    "person mask in shoulder-width units, at random heights, mirrored), a "
                    "different query person in their own pose, ground truth = the same strokes "
                    "on the query's body. Each photo is its own person; its shoulders must show.",
        epilog="example:\n  mirrorppr bench liquify-body photos/ --out body-cases/ --n 16\n"
               "  mirrorppr eval body-cases/ --engine auto --no-facesim --out body-eval/",
        formatter_class=FORMATTER)
    _case_args(s, "photos", 16)
    s.set_defaults(func=run_liquify_body)
    s = bsub.add_parser("portraits", help="write the bundled real portraits and variants to a folder",
                        formatter_class=FORMATTER)
    s.add_argument("out", type=Path)
    s.set_defaults(func=run_portraits)


def _case_args(s, source: str, n: int,
               size_help: str = "largest long side of a case image (default 1024)") -> None:
    """The arguments every case builder takes: the photos, --out, --n, --seed, --size."""
    s.add_argument("portraits", type=Path, metavar=source)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--n", type=int, default=n, help=f"number of cases (default {n})")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=1024, help=size_help)


def run_eval_cmd(args) -> int:
    from ..eval.cases import load_cases

    if not args.cases.is_dir():
        raise InputError(f"{args.cases}: not a folder of cases")
    scored = [c for c in load_cases(args.cases) if c.ground_truth is not None]
    if not scored:
        raise InputError(f"{args.cases}: no case folders with source, target, query and ground-truth images "
                         "(see 'mirrorppr eval --help')")
    g = guard(args)
    g.protect(args.cases, role="the cases folder")
    g.claim_dir(args.out, "--out")
    fams = {"all": ("llw", "pro"), "llw": ("llw",), "pro": ("pro",)}[args.ops]
    from .transfer_cmd import PAIR_ENGINES, _register_model
    for e in PAIR_ENGINES:
        if e in args.engine:
            _register_model(args, e)
    res = run_eval(args.cases, args.engine or ["auto"], args.out, facesim=not args.no_facesim,
                   families=fams, procedure=args.procedure)
    print(to_markdown(res))
    print(f"written: {args.out / 'results.json'}, {args.out / 'results.md'}, {args.out / 'index.html'}")
    return 0


def _build_cases(args, build) -> int:
    """Write a benchmark's cases from a portraits folder (never into it)."""
    if args.n < 1:
        raise ConfigError(f"--n {args.n}: expected 1 or more")
    g = guard(args)
    g.protect(args.portraits, role="the portraits folder")
    g.claim_dir(args.out, "--out")
    made = build(args.portraits, args.out, n=args.n, seed=args.seed, size=args.size)
    print(f"{len(made)} cases written to {args.out}")
    return 0


def run_simface(args) -> int:
    return _build_cases(args, build_simface)


def run_liquify(args) -> int:
    from ..eval.liquify import build_liquify

    return _build_cases(args, build_liquify)


def run_liquify_body(args) -> int:
    from ..eval.liquify_body import build_body_liquify

    return _build_cases(args, build_body_liquify)


def run_portraits(args) -> int:
    guard(args).claim_dir(args.out, "OUT")
    made = make_portraits(args.out)
    print(f"{len(made)} portraits written to {args.out}")
    return 0
