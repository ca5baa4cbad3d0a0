"""``mirrorppr data``: build, inspect and verify training shards."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import ConfigError, InputError
from .common import FORMATTER, claim_image, guard


def register(sub) -> None:
    p = sub.add_parser("data", help="build training data (simulated / professional shards)",
                       description="Build MirrorPPR-style training data from your photos.",
                       formatter_class=FORMATTER)
    dsub = p.add_subparsers(dest="data", metavar="ACTION")

    s = dsub.add_parser(
        "simulate", help="simulated pairs: ops applied to portraits",
        description="For every portrait: each op in both directions at each level (the paper's "
                    "8 ops x 2 directions by default), plus random multi-op combos. Shards are "
                    "WebDataset tars with a manifest; reruns resume; the same seed gives the "
                    "same dataset.",
        epilog="examples:\n  mirrorppr data simulate portraits/ --out shards/sim --levels 50 100\n"
               "  mirrorppr data simulate s3://bucket/faces --out shards/sim --ray-address auto",
        formatter_class=FORMATTER)
    s.add_argument("portraits", help="folder or fsspec URL of portraits")
    _common(s)
    s.add_argument("--ops", choices=["llw", "all"], default="llw")
    s.add_argument("--levels", type=float, nargs="+", default=[100.0], help="strength magnitudes (default 100)")
    s.add_argument("--combos", type=int, default=0, help="random multi-op recipes per portrait")
    s.set_defaults(func=run_simulate)

    s = dsub.add_parser(
        "professional", help="a retoucher's before/after pairs, validated",
        description="Pairs are NAME.ext + NAME_retouched.ext, or before/ and after/ with matching "
                    "names; optional labels in labels.json ({name: [{op, strength}]}) or "
                    "labels.csv (name,op,strength). Bad pairs are rejected with a counted reason.",
        formatter_class=FORMATTER)
    s.add_argument("pairs", type=Path)
    _common(s)
    s.set_defaults(func=run_professional)

    s = dsub.add_parser("inspect", help="counts and a contact sheet", formatter_class=FORMATTER)
    s.add_argument("shards", type=Path)
    s.add_argument("--sheet", type=Path, help="write a contact sheet of random samples")
    s.add_argument("-n", type=int, default=8)
    s.set_defaults(func=run_inspect)

    s = dsub.add_parser("verify", help="check every record decodes and every quadruplet is aligned",
                        description="Decode every record; check manifest counts, values (recipe ops and "
                                    "strengths, landmarks, augmentation parameters) and that stored "
                                    "quadruplets are exactly A(source), A(target). Exit 0 when all is "
                                    "well, 8 when problems were found, 3 when SHARDS is no shard folder.",
                        formatter_class=FORMATTER)
    s.add_argument("shards", type=Path)
    s.set_defaults(func=run_verify)


def _common(s) -> None:
    s.add_argument("--out", type=Path, required=True, help="shard folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=1024, help="long side of stored images")
    s.add_argument("--per-shard", type=int, default=8, help="input photos per shard (default 8)")
    s.add_argument("--samples-per-shard", type=int, default=None, metavar="N",
                   help="size shards by samples instead (rounded to whole input photos)")
    s.add_argument("--format", choices=["png", "jpg", "webp"], default="png")
    s.add_argument("--materialize", action="store_true", help="store query / ground truth too")
    s.add_argument("--workers", type=int, default=None, help="processes or Ray workers (default: all cores)")
    s.add_argument("--ray", action="store_true", help="run on a local Ray cluster")
    s.add_argument("--ray-address", help="an existing Ray cluster (implies --ray)")


def _check_options(args) -> None:
    """Refuse option values that would make nothing, or fail later (exit 6)."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected 1 or more")
    if args.per_shard < 1:
        raise ConfigError(f"--per-shard {args.per_shard}: expected 1 or more")
    if args.samples_per_shard is not None and args.samples_per_shard < 1:
        raise ConfigError(f"--samples-per-shard {args.samples_per_shard}: expected 1 or more")
    if not 64 <= args.size <= 8192:
        raise ConfigError(f"--size {args.size}: expected a long side of 64 to 8192 pixels")
    for lv in getattr(args, "levels", ()):
        if not 0 < lv <= 100:          # also NaN
            raise ConfigError(f"--levels {lv:g}: strength magnitudes are in (0, 100]")
    if getattr(args, "combos", 0) < 0:
        raise ConfigError(f"--combos {args.combos}: expected 0 or more")


def _cfg(args, **kw):
    from ..data import SimConfig

    return SimConfig(seed=args.seed, size=args.size, materialize=args.materialize, fmt=args.format, **kw)


def _run(args, tasks) -> int:
    from ..data import run_tasks

    if "://" not in str(args.out):
        guard(args).claim_dir(args.out, "--out")
    man = run_tasks(tasks, args.out, workers=args.workers, ray_address=args.ray_address,
                    use_ray=args.ray)
    t = man.totals()
    if man.redone:
        print(f"{len(man.redone)} shards redone: made with other settings ({', '.join(man.redone[:3])}"
              f"{'...' if len(man.redone) > 3 else ''})")
    print(f"{t['samples']} samples in {t['shards']} shards ({t['bytes'] / 2 ** 20:.1f} MB) at {args.out}")
    if t["failed"]:
        print("failed inputs: " + ", ".join(f"{k}: {v}" for k, v in sorted(t["failed"].items())))
    return 0


def run_simulate(args) -> int:
    from ..data import list_inputs, make_tasks

    _check_options(args)
    if "://" not in args.portraits:
        guard(args).protect(args.portraits, role="the portraits folder")
    inputs = list_inputs(args.portraits)
    if not inputs:
        raise InputError(f"{args.portraits}: no images found")
    cfg = _cfg(args, ops=args.ops, levels=tuple(args.levels), combos=args.combos)
    from ..data.simulate import samples_per_input
    return _run(args, make_tasks("simulate", inputs, cfg, _per_shard(args, samples_per_input(cfg))))


def _per_shard(args, per_input: int) -> int:
    if args.samples_per_shard:
        return max(1, round(args.samples_per_shard / max(1, per_input)))
    return args.per_shard


def _labels(folder: Path) -> dict:
    """{pair name: recipe steps} from labels.json or labels.csv, every step checked."""
    from ..jsonio import read_json
    from ..ops.recipe import MAX_RECIPE_BYTES, Recipe

    out: dict = {}
    if (folder / "labels.json").exists():
        path = folder / "labels.json"
        data = read_json(path, "labels", 64 * MAX_RECIPE_BYTES)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected {{NAME: [{{\"op\": OP, \"strength\": S}}, ...]}}")
        out = data
    elif (folder / "labels.csv").exists():
        path = folder / "labels.csv"
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                for i, row in enumerate(csv.DictReader(fh), 2):
                    name, op, strength = row.get("name"), row.get("op"), row.get("strength")
                    if not (name and op and strength):
                        raise ConfigError(f"{path}: line {i}: expected name,op,strength")
                    try:
                        value = float(strength)
                    except ValueError:
                        raise ConfigError(f"{path}: line {i}: strength {strength!r} is not a number") from None
                    out.setdefault(name, []).append({"op": op, "strength": value})
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"{path}: cannot read it ({type(exc).__name__})") from None
    else:
        return {}
    for name, steps in out.items():
        try:
            Recipe.from_list(steps)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {name!r}: {exc}") from None
    return out


def run_professional(args) -> int:
    from ..data import make_tasks
    from ..data.simulate import find_pairs

    _check_options(args)
    if not args.pairs.is_dir():
        raise InputError(f"{args.pairs}: not a folder")
    guard(args).protect(args.pairs, role="the pairs folder")
    pairs = [[str(b), str(a), n] for b, a, n in find_pairs(args.pairs)]
    if not pairs:
        raise InputError(f"{args.pairs}: no pairs (NAME.ext + NAME_retouched.ext, or before/ + after/)")
    return _run(args, make_tasks("professional", pairs, _cfg(args), _per_shard(args, 1), _labels(args.pairs)))


def run_inspect(args) -> int:
    from ..data.check import check_folder, inspect

    check_folder(args.shards)
    g = guard(args)
    g.protect(args.shards, role="the shard folder")
    claim_image(g, args.sheet, "--sheet")
    t = inspect(args.shards, args.sheet, args.n)
    print(json.dumps(t, indent=1))
    if args.sheet:
        print(f"contact sheet: {args.sheet}")
    return 0


def run_verify(args) -> int:
    from ..data.check import check_folder, verify

    check_folder(args.shards)
    rep = verify(args.shards)
    for p in rep.problems:
        print(f"problem: {p}")
    print(f"{rep.samples} samples in {rep.shards} shards: {'OK' if rep.ok else f'{len(rep.problems)} problems'}")
    return 0 if rep.ok else 8
