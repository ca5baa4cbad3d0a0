"""Images people look at: before/after panels, landmark overlays, motion heatmaps."""
from __future__ import annotations

import cv2
import numpy as np

from .eval.metrics import pixel_difference


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h == height:
        return img
    k = height / h
    return cv2.resize(img, (max(1, int(round(w * k))), height),
                      interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    scale = max(0.5, img.shape[0] / 700)
    th = max(1, int(round(scale * 2)))
    (tw, tht), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    cv2.rectangle(out, (0, 0), (tw + 12, tht + 14), (0, 0, 0), -1)
    cv2.putText(out, text, (6, tht + 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), th, cv2.LINE_AA)
    return out


def panels(images: list[np.ndarray], labels: list[str] | None = None, height: int = 768) -> np.ndarray:
    """Side-by-side panels (8-bit RGB) at a common height, each with its label."""
    height = min(height, max(i.shape[0] for i in images))
    tiles = []
    for i, img in enumerate(images):
        t = _fit(np.ascontiguousarray(img[..., :3]), height)
        if labels:
            t = _label(t, labels[i])
        tiles.append(t)
        tiles.append(np.full((height, 6, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def compare(before: np.ndarray, after: np.ndarray, height: int = 768) -> np.ndarray:
    """Before | after | amplified difference."""
    diff = pixel_difference(before, after).astype(np.float32)
    return panels([before, after, heatmap(diff, vmax=max(8.0, float(diff.max())))],
                  ["before", "after", "difference"], height)


def heatmap(values: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """A scalar map as an RGB heatmap (black = 0)."""
    v = values.astype(np.float32)
    vmax = float(vmax if vmax is not None else max(1e-6, np.percentile(v, 99.5)))
    u8 = np.clip(v / max(vmax, 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def landmarks_overlay(rgb: np.ndarray, points: np.ndarray, max_side: int = 1600) -> np.ndarray:
    """Landmarks drawn as dots (iris points in a second colour), downscaled if huge."""
    img = np.ascontiguousarray(rgb[..., :3]).copy()
    k = min(1.0, max_side / max(img.shape[:2]))
    if k < 1:
        img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    span = np.ptp(points[:, 0]) * k
    r = max(1, int(span / 250))
    for i, (x, y) in enumerate(points * k):
        colour = (255, 60, 60) if i >= 468 else (60, 255, 90)
        cv2.circle(img, (int(round(x)), int(round(y))), r, colour, -1, cv2.LINE_AA)
    return img


def flow_arrows(rgb: np.ndarray, disp: np.ndarray, step: int | None = None, gain: float = 4.0) -> np.ndarray:
    """A motion picture: magnitude heatmap blended over the image, with arrows showing
    where content moved (forward direction, exaggerated by ``gain``)."""
    h, w = rgb.shape[:2]
    mag = np.hypot(disp[..., 0], disp[..., 1])
    heat = heatmap(mag, vmax=max(1.0, float(mag.max())))
    alpha = np.clip(mag / max(1.0, float(mag.max())), 0, 1)[..., None] * 0.7
    img = (rgb[..., :3].astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).astype(np.uint8)
    step = step or max(8, min(h, w) // 40)
    thick = max(1, min(h, w) // 500)
    for y in range(step // 2, h, step):
        for x in range(step // 2, w, step):
            dx, dy = disp[y, x]
            if dx * dx + dy * dy < 0.04:
                continue
            # backward field: content at x + d moved to x, so it moved by -d
            p0 = (int(x + dx), int(y + dy))
            p1 = (int(x + dx - gain * dx), int(y + dy - gain * dy))
            cv2.arrowedLine(img, p0, p1, (80, 220, 255), thick, cv2.LINE_AA, tipLength=0.3)
    return img
