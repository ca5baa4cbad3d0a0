"""Helpers shared by the commands."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..imageio import Photo, write_image

FORMATTER = argparse.RawDescriptionHelpFormatter


def write_rgb(rgb, path: str | Path, protect=()) -> Path:
    """Write a diagnostic RGB image (compare, overlay, heatmap)."""
    return write_image(Photo(rgb, format="PNG"), path, protect=tuple(Path(p) for p in protect))


def add_landmarker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landmarker", choices=["facemesh", "tasks"], default=None,
                   help="face-mesh backend (default: facemesh, the paper's; or $MIRRORPPR_LANDMARKER)")
    p.add_argument("--face-index", type=int, default=None, metavar="N",
                   help="which face to use when a photo has several (0 = largest)")
