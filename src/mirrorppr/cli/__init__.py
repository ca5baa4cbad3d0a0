"""The ``mirrorppr`` command line: one module per command family, dispatched here.

Exit codes: 0 success; 1 internal error (a bug: please report it); 2 bad usage;
3 unreadable or unsupported input; 4 no usable face; 5 output cannot be written (an
input, another output of the run, an existing file without --overwrite, a read-only or
full disk); 6 bad recipe/preset/option/setting or a missing dependency; 7 some files of a
batch failed; 8 ``data verify`` found problems; 130 interrupted (Ctrl-C).

Every command runs inside one output guard (:mod:`mirrorppr.outputs`).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

from .. import outputs
from ..errors import ConfigError, MirrorError
from . import edit_cmd

COMMANDS = [edit_cmd]


def _extra_commands():
    mods = []
    for name in ("transfer_cmd", "eval_cmd", "data_cmd", "model_cmd", "app_cmd"):
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
    p.add_argument("--version", action="version", version=_version())
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
        with outputs.run_scope(overwrite=bool(getattr(args, "overwrite", False))), _stop_on_sigterm():
            try:
                return int(args.func(args) or 0)
            except ModuleNotFoundError as exc:
                raise _missing(exc) from None
    except MirrorError as exc:
        if args.debug:
            raise
        print(f"mirrorppr: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("mirrorppr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``mirrorppr ops | head``): stop quietly, as Unix tools do.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug: say so briefly, full trace with --debug
        if args.debug or os.environ.get("MIRRORPPR_DEBUG"):
            raise
        print(f"mirrorppr: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
              file=sys.stderr)
        return 1


@contextlib.contextmanager
def _stop_on_sigterm():
    """SIGTERM (kill, a service manager) unwinds like Ctrl-C does: temp files are removed
    and workers stopped, then the exit status is 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _version() -> str:
    from .. import __version__
    return f"mirrorppr {__version__} (Python {sys.version.split()[0]})"


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.splitlines() if part.strip()) or "failed"


def _missing(exc: ModuleNotFoundError) -> Exception:
    """A dependency that is not installed: an installation problem, said plainly."""
    name = (exc.name or "").split(".")[0]
    if name == "mirrorppr" or not name:
        return exc          # our own module missing is a bug
    if name == "mediapipe":
        return ConfigError("mediapipe is not installed: mirrorppr needs mediapipe==0.10.21, which "
                           "exists for Python 3.11 and 3.12 only (this is Python "
                           f"{sys.version_info[0]}.{sys.version_info[1]}); pip install 'mediapipe==0.10.21'")
    return ConfigError(f"the Python package {name!r} is not installed; reinstall mirrorppr "
                       f"(pip install mirrorppr) or pip install {name}")
