"""Helpers shared by the commands."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import outputs
from ..errors import ConfigError, OutputError
from ..imageio import SUPPORTED_SUFFIXES, Photo, write_image

FORMATTER = argparse.RawDescriptionHelpFormatter


def write_rgb(rgb, path: str | Path, protect=(), quality: int = 95) -> Path:
    """Write a diagnostic RGB image (compare, overlay, heatmap)."""
    return write_image(Photo(rgb, format="PNG"), path, protect=tuple(Path(p) for p in protect),
                       quality=quality)


def quality_arg(text: str) -> int:
    """argparse type of ``--quality``: an integer 1-100."""
    try:
        q = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"{q} is outside 1..100")
    return q


def add_output_options(p: argparse.ArgumentParser, quality: bool = True) -> None:
    """``--overwrite`` (the existing-output policy) and ``--quality`` (JPEG/WebP)."""
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that already exist (default: refuse, exit 5)")
    if quality:
        p.add_argument("--quality", type=quality_arg, default=95, metavar="Q",
                       help="JPEG/WebP quality 1-100 (default 95; PNG and TIFF are lossless)")


def guard(args=None) -> outputs.RunGuard:
    """The running command's output guard (a fresh one when called outside ``main``)."""
    return outputs.current() or outputs.RunGuard(overwrite=bool(getattr(args, "overwrite", False)))


def claim_image(g: outputs.RunGuard, path: Path | None, role: str) -> Path | None:
    return None if path is None else g.claim(path, role, suffixes=SUPPORTED_SUFFIXES)


def claim_json(g: outputs.RunGuard, path: Path | None, role: str, replace: bool | None = None) -> Path | None:
    """A JSON output (preset, report): refused under an image name, where it would pass
    for a photo."""
    if path is None:
        return None
    p = g.claim(path, role, replace=replace)     # an input or another output: that first
    if p.suffix.lower() in SUPPORTED_SUFFIXES:
        raise OutputError(f"{path}: {role} writes JSON; give it a .json name, not an image name")
    return p


def load_preset(path: Path):
    """A preset file, read within bounds and validated (exit 6 on anything wrong)."""
    from ..analyze.preset_schema import MAX_BYTES
    from ..jsonio import read_json

    outputs.note_input(path)
    return preset_from_data(read_json(path, "preset", MAX_BYTES), path)


def preset_from_data(data: object, path: Path):
    """An :class:`Operation` from a preset file's parsed JSON (messages name ``path``)."""
    from ..analyze.operation import Operation

    try:
        return Operation.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError) as exc:   # a field the schema does not check yet
        raise ConfigError(f"{path}: malformed preset ({type(exc).__name__}: {exc})") from None


def add_landmarker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landmarker", choices=["facemesh", "tasks"], default=None,
                   help="face-mesh backend (default: facemesh, the paper's; or $MIRRORPPR_LANDMARKER)")
    p.add_argument("--face-index", type=int, default=None, metavar="N",
                   help="which face to use when a photo has several (0 = largest)")


def add_procedure(p: argparse.ArgumentParser) -> None:
    """``--procedure``: how an exemplar may be read."""
    p.add_argument("--procedure", choices=["auto", "clean", "paper"], default="auto",
                   help="how the exemplar was made: auto (default) reads it as a clean edit and "
                        "tries the MirrorPPR paper's simulator only when the pair shows signs of "
                        "it; clean never tries it; paper always does (kept only if it reproduces "
                        "the exemplar better)")


class StageLine:
    """Progress of a multi-second job as one self-updating line on a terminal (nothing
    when stderr is not a terminal, so logs and pipes stay clean)."""

    def __init__(self, what: str) -> None:
        import sys
        import time

        self.what, self.t0, self.stream = what, time.perf_counter(), sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, stage: str, fraction: float) -> None:
        import time

        if not self.live:
            return
        bar = "#" * int(20 * fraction)
        self.stream.write(f"\r{self.what}: [{bar:<20s}] {stage} ({time.perf_counter() - self.t0:.1f} s)\033[K")
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


def print_notes(op) -> None:
    """What a user should know about an analysis, one line each."""
    for note in getattr(op, "notes", ()):
        print(f"note: {note}")
