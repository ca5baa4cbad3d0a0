"""Benchmark helpers: real test photos at the sizes benchmarks need, timing, memory."""
from __future__ import annotations

import resource
import time

import cv2
import numpy as np

from mirrorppr import samples
from mirrorppr.imageio import read_image


def portrait(width: int, height: int) -> np.ndarray:
    """The astronaut portrait scaled so it fills the photo's height, centred on a wider
    canvas: a real face at realistic size for that photo."""
    rgb = read_image(samples.astronaut()).rgb8()
    side = min(width, height)
    face = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_CUBIC)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = face[:, :1].mean(axis=(0, 1)).astype(np.uint8)
    x0, y0 = (width - side) // 2, (height - side) // 2
    canvas[y0:y0 + side, x0:x0 + side] = face
    return canvas


def timed(fn, repeat: int = 5) -> tuple[float, float]:
    """(median, min) seconds of ``fn()`` over ``repeat`` runs after one warm-up."""
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(min(ts))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2 ** 20
