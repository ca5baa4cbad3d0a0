"""The ``mirrorppr`` command line: one module per command family, dispatched here.

Exit codes: 0 success; 1 unexpected failure; 2 bad usage; 3 unreadable or unsupported
input; 4 no usable face; 5 output cannot be written; 6 bad recipe/preset/config;
7 some files of a batch failed.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import MirrorError
from . import edit_cmd

COMMANDS = [edit_cmd]


def _extra_commands():
    mods = []
    for name in ("transfer_cmd", "eval_cmd", "data_cmd", "model_cmd"):
        try:
            mods.append(__import__(f"{__name__}.{name}", fromlist=["register"]))
        except ModuleNotFoundError as exc:  # a command family not built (or its extra not installed)
            if exc.name and exc.name.endswith(name):
                continue
            raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mirrorppr",
        description="Exemplar-based portrait retouching: learn the structural edits of one "
                    "before/after pair and apply them to other people's portraits.",
        epilog="Run 'mirrorppr COMMAND --help' for each command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS + _extra_commands():
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MirrorError as exc:
        if args.debug:
            raise
        print(f"mirrorppr: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("mirrorppr: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so briefly, full trace with --debug
        if args.debug or os.environ.get("MIRRORPPR_DEBUG"):
            raise
        print(f"mirrorppr: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
              file=sys.stderr)
        return 1
