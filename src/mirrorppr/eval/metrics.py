"""Scores of a retouched output against ground truth (definitions match the project's
reference scoring script, so numbers are comparable with published tables).

- psnr / ssim:   whole image, RGB, 8-bit range;
- edit region:   pixels where ground truth and query differ by more than 12 levels
                 (max over channels), dilated by 1% of the short side;
- psnr_edit / psnr_keep: inside / outside that region; gain_edit: psnr_edit minus the
                 no-op's (the query's) psnr_edit;
- gain_face:     gain_edit counted only on and around the query's face (its landmark box
                 grown by 15% a side): what a face-only method can carry when the same
                 case also edits the body (this project's addition; None without a face
                 edit); gain_body: the rest of the edit region (body, hair, background;
                 None when the edit region lies on the face only);
- flow_epe:      mean end-point error between the query->output and query->ground-truth
                 displacements (OpenCV DIS, MEDIUM), over pixels where either moves > 1 px;
- facesim:       cosine of dlib face descriptors, output vs ground truth.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import structural_similarity

EDIT_LEVELS = 12


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR of 8-bit images (dB), over ``mask`` when given. Identical pixels, or an
    empty mask (nothing to compare), score the ceiling, 99 dB."""
    if mask is not None and not np.any(mask):
        return 99.0
    if mask is not None:                      # only the masked pixels are converted
        a, b = a[mask], b[mask]
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse <= 1e-10 else 10 * math.log10(255.0 ** 2 / mse)


def pixel_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How much each pixel differs: |a - b|, the largest over channels (two images of one
    shape and integer dtype; the result has that dtype). Computed by OpenCV, 20 times
    faster than a NumPy reduction over the channel axis, which several analysis steps
    felt on every exemplar."""
    d = cv2.absdiff(np.ascontiguousarray(a), np.ascontiguousarray(b))
    if d.ndim == 2:
        return d
    out = d[..., 0].copy()
    for c in range(1, d.shape[2]):
        np.maximum(out, d[..., c], out=out)
    return out


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=2,
                                       data_range=255))


def edit_region(gt: np.ndarray, query: np.ndarray) -> np.ndarray:
    diff = pixel_difference(gt, query)
    mask = (diff > EDIT_LEVELS).astype(np.uint8)
    k = max(3, int(0.01 * min(gt.shape[:2])) | 1)
    mask = cv2.dilate(mask, np.ones((k, k), np.uint8)) > 0
    if not mask.any():
        mask = np.ones(gt.shape[:2], bool)
    return mask


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    g = lambda x: cv2.cvtColor(np.ascontiguousarray(x.astype(np.uint8)), cv2.COLOR_RGB2GRAY)  # noqa: E731
    return dis.calc(g(a), g(b), None)


def flow_epe(gt: np.ndarray, query: np.ndarray, out: np.ndarray) -> float:
    f_gt = dis_flow(query, gt)
    f_out = dis_flow(query, out)
    moving = (np.hypot(f_gt[..., 0], f_gt[..., 1]) > 1) | (np.hypot(f_out[..., 0], f_out[..., 1]) > 1)
    if not moving.any():
        return 0.0
    return float(np.hypot(*(f_out - f_gt).transpose(2, 0, 1))[moving].mean())


FACE_MARGIN = 0.15


def face_mask(shape: tuple[int, ...], box, margin: float = FACE_MARGIN) -> np.ndarray:
    """The face box (x0, y0, x1, y1) grown by ``margin`` of its size on each side."""
    x0, y0, x1, y1 = box
    m = margin * max(x1 - x0, y1 - y0)
    out = np.zeros(shape[:2], bool)
    out[int(max(0, y0 - m)):int(max(0, y1 + m)), int(max(0, x0 - m)):int(max(0, x1 + m))] = True
    return out


def score(gt: np.ndarray, query: np.ndarray, out: np.ndarray, facesim: bool = True,
          face_box=None) -> dict:
    """All metrics for one output (8-bit RGB arrays of the ground truth's size);
    ``face_box``: the query's face (in those pixels), for ``gain_face``."""
    mask = edit_region(gt, query)
    keep = ~mask
    r = {"psnr": psnr(gt, out), "ssim": ssim(gt, out), "psnr_edit": psnr(gt, out, mask),
         "psnr_keep": psnr(gt, out, keep) if keep.any() else None, "edit_frac": float(mask.mean())}
    r["gain_edit"] = r["psnr_edit"] - psnr(gt, query, mask)
    r["gain_face"] = None
    r["gain_body"] = None
    if face_box is not None and mask.mean() < 1.0:
        fm = mask & face_mask(mask.shape, face_box)
        if fm.any():
            r["gain_face"] = psnr(gt, out, fm) - psnr(gt, query, fm)
        bm = mask & ~face_mask(mask.shape, face_box)
        if bm.any():
            r["gain_body"] = psnr(gt, out, bm) - psnr(gt, query, bm)
    r["flow_epe"] = flow_epe(gt, query, out)
    r["facesim"] = None
    if facesim:
        try:
            from ..landmarks.identity import similarity
            r["facesim"] = similarity(out, gt)
        except Exception:  # dlib unavailable: the metric is simply absent
            r["facesim"] = None
    return r
