"""Bringing an exemplar's after photo onto its before photo.

Retouched exports are often resized, re-framed by a few pixels, slightly rotated or
re-graded. None of that is structural retouching, and all of it would swamp the local
motion the analysis measures. Registration finds the global similarity (scale, rotation,
shift) and a per-channel tone change that map the after photo onto the before photo,
robustly, so that local edits (a minority of pixels) do not pull the fit:

1. ORB features matched between the two (RANSAC similarity): any size, crop or rotation;
2. refined on dense flow (DIS) at a working size, local edits down-weighted as outliers;
3. a per-channel gain and offset fitted where the two then agree.

It also tells whether the two are one photo at all: after registration nearly all of a
retouched pair's pixels agree; two different photos (another person, another shot) do not.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FaceError
from ..eval.metrics import pixel_difference

#: Registration runs at this long side (pixels).
WORK_SIDE = 768
#: Global motion below this (pixels of the before photo, at its corners) between photos
#: of one size is none at all: sub-pixel shifts are resampling noise of the retoucher's
#: tools (or the paper's pasted crops), and correcting them would resample every pixel.
IDENTITY_PX = 0.5
#: A pixel "agrees" when it differs by at most this many 8-bit levels after registration.
AGREE_LEVELS = 12.0
#: One photo before and after: at least this share of its textured pixels agree.
SAME_PHOTO_SHARE = 0.5
#: Tone changes smaller than this (gain - 1, offset / 255) are none.
TONE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Registration:
    """How the after photo maps onto the before photo.

    ``matrix`` (2x3) takes before-photo pixel coordinates to after-photo coordinates;
    ``gain``/``offset`` per channel take the after photo's tone to the before photo's.
    """

    matrix: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    target_size: tuple[int, int]
    agreement: float                 # share of textured pixels that agree after registration

    @property
    def geometric(self) -> bool:
        """Whether the after photo had to be moved (resized, shifted, rotated...)."""
        return not np.array_equal(self.matrix, _IDENTITY)

    @property
    def tonal(self) -> bool:
        return not (np.array_equal(self.gain, np.ones(3)) and np.array_equal(self.offset, np.zeros(3)))

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def describe(self) -> str:
        parts = []
        if self.geometric:
            a = self.matrix
            rot = np.degrees(np.arctan2(a[1, 0], a[0, 0]))
            parts.append(f"after photo re-framed (scale {self.scale:.3f}, rotation {rot:+.2f} deg, "
                         f"shift {a[0, 2]:+.1f}, {a[1, 2]:+.1f} px)")
        if self.tonal:
            parts.append("tone changed (gain " + "/".join(f"{g:.2f}" for g in self.gain) + ")")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"matrix": np.round(self.matrix, 6).tolist(), "gain": np.round(self.gain, 5).tolist(),
                "offset": np.round(self.offset, 4).tolist(), "target_size": list(self.target_size),
                "agreement": round(self.agreement, 4)}

    def apply(self, target: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The after photo (8-bit RGB) in the before photo's frame and tone, and the mask
        of before-photo pixels it covers."""
        W, H = size
        if self.geometric:
            out = cv2.warpAffine(target, self.matrix, (W, H), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
            valid = _covered(self.matrix, self.target_size, (W, H))
        else:
            out, valid = target, np.ones((H, W), bool)
        if self.tonal:
            out = np.clip(out.astype(np.float32) * self.gain + self.offset, 0, 255).round().astype(np.uint8)
        return out, valid


_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _covered(m: np.ndarray, tsize: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    W, H = size
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    x = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
    y = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
    return (x >= -0.5) & (x <= tsize[0] - 0.5) & (y >= -0.5) & (y <= tsize[1] - 0.5)


def _gray(rgb: np.ndarray, k: float) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if k != 1.0:
        g = cv2.resize(g, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    return g


def _orb_similarity(src: np.ndarray, tgt: np.ndarray) -> np.ndarray | None:
    """Similarity taking src pixels to tgt pixels from matched ORB features, or None."""
    orb = cv2.ORB_create(3000)
    ka, da = orb.detectAndCompute(src, None)
    kb, db = orb.detectAndCompute(tgt, None)
    if da is None or db is None or len(ka) < 12 or len(kb) < 12:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < 12:
        return None
    pa = np.float32([ka[m.queryIdx].pt for m in matches])
    pb = np.float32([kb[m.trainIdx].pt for m in matches])
    m, inl = cv2.estimateAffinePartial2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=2.0,
                                         maxIters=4000, confidence=0.999)
    if m is None or inl is None or int(inl.sum()) < max(12, 0.15 * len(matches)):
        return None
    return m.astype(np.float64)


def _initial(src_g: np.ndarray, tgt_g: np.ndarray, ks: float, kt: float) -> np.ndarray:
    """First guess (full-resolution src -> tgt pixels): the identity for same-sized
    photos, a plain resize for the same framing at another size, else features."""
    hs, ws = src_g.shape
    ht, wt = tgt_g.shape
    W, H = ws / ks, hs / ks
    Wt, Ht = wt / kt, ht / kt
    if abs(Wt - W) < 0.5 and abs(Ht - H) < 0.5:
        return _IDENTITY.copy()
    m = _orb_similarity(src_g, tgt_g)
    if m is not None:
        # Features were found on the working copies: bring the map to full resolution.
        full = m.copy()
        full[:, :2] *= ks / kt
        full[:, 2] = m[:, 2] / kt
        return full
    if abs(Wt / Ht - W / H) < 0.01:
        return np.array([[Wt / W, 0.0, 0.5 * Wt / W - 0.5], [0.0, Ht / H, 0.5 * Ht / H - 0.5]])
    raise FaceError("the after photo does not show the same photo as the before photo "
                    "(no common features found); an exemplar is one photo before and after retouching")


def _fit_similarity(p: np.ndarray, q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares similarity taking points p to q."""
    sw = w.sum()
    pc, qc = (w[:, None] * p).sum(0) / sw, (w[:, None] * q).sum(0) / sw
    a, b = p - pc, q - qc
    den = (w * (a ** 2).sum(1)).sum()
    s1 = (w * (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])).sum() / den
    s2 = (w * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])).sum() / den
    R = np.array([[s1, -s2], [s2, s1]])
    return np.hstack([R, (qc - R @ pc)[:, None]])


def _refine(src: np.ndarray, tgt: np.ndarray, m: np.ndarray, k: float, rounds: int = 2) -> np.ndarray:
    """Refine the map on dense flow between the working copies; motion that the
    similarity does not explain (local edits) is down-weighted (Tukey)."""
    hs, ws = src.shape[:2]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gx, gy = np.meshgrid(np.arange(ws, dtype=np.float32), np.arange(hs, dtype=np.float32))
    step = max(1, int(min(hs, ws) / 160))
    sel = (slice(step // 2, None, step), slice(step // 2, None, step))
    grad = cv2.Laplacian(src, cv2.CV_32F, ksize=3)
    texture = np.abs(grad)[sel].ravel() > 4.0
    for _ in range(rounds):
        mk = _scaled(m, k)
        warped = cv2.warpAffine(tgt, mk, (ws, hs), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        d = dis.calc(src, warped, None)       # src(x) ~ warped(x + d)
        px = np.stack([gx[sel].ravel(), gy[sel].ravel()], 1).astype(np.float64)
        dd = d[sel].reshape(-1, 2).astype(np.float64)
        ok = texture & (px[:, 0] > 2) & (px[:, 1] > 2) & (px[:, 0] < ws - 3) & (px[:, 1] < hs - 3)
        if ok.sum() < 50:
            break
        p, dd = px[ok], dd[ok]
        w = np.ones(len(p))
        for _ in range(6):       # IRLS: the global map explains the bulk, not the edits
            corr = _fit_similarity(p, p + dd, w)
            r = np.hypot(*((p @ corr[:, :2].T + corr[:, 2]) - (p + dd)).T)
            c = max(4.685 * 1.4826 * float(np.median(r)), 0.3)
            w = np.clip(1 - (r / c) ** 2, 0, None) ** 2
        # Compose: src -> warped-frame correction -> tgt.
        corr_full = corr.copy()
        corr_full[:, 2] /= k
        m = _compose(m, corr_full)
        if np.hypot(*(corr[:, 2])) < 0.01 and abs(corr[0, 0] - 1) < 1e-5 and abs(corr[1, 0]) < 1e-5:
            break
    return m


def _scaled(m: np.ndarray, k: float) -> np.ndarray:
    """The map for working copies scaled by ``k`` on both sides."""
    out = m.copy()
    out[:, 2] *= k
    return out


def _compose(m: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """x -> m(corr(x))."""
    A = m[:, :2] @ corr[:, :2]
    t = m[:, :2] @ corr[:, 2] + m[:, 2]
    return np.hstack([A, t[:, None]])


def _corner_motion(m: np.ndarray, size: tuple[int, int]) -> float:
    W, H = size
    c = np.array([[0, 0], [W, 0], [0, H], [W, H]], np.float64)
    return float(np.abs(c @ m[:, :2].T + m[:, 2] - c).max())


def register(source: np.ndarray, target: np.ndarray) -> Registration:
    """Register ``target`` (8-bit RGB, any size) onto ``source`` (8-bit RGB).

    Raises :class:`FaceError` when the two are not one photo (nothing in common, or
    too few pixels agree after registration)."""
    H, W = source.shape[:2]
    ht, wt = target.shape[:2]
    ks = min(1.0, WORK_SIDE / max(H, W))
    kt = ks * (max(H, W) / max(ht, wt)) if max(ht, wt) else ks
    kt = min(1.0, kt) if kt > 0 else ks
    src_g, tgt_g = _gray(source, ks), _gray(target, kt)
    m = _initial(src_g, tgt_g, ks, kt)
    # Refine on the working copies in the before photo's working frame.
    tgt_in = cv2.resize(target, (int(round(wt * ks)), int(round(ht * ks))), interpolation=cv2.INTER_AREA) \
        if ks < 1 else target
    tgt_in_g = cv2.cvtColor(tgt_in, cv2.COLOR_RGB2GRAY)
    m = _refine(src_g, tgt_in_g, m, ks)
    if _corner_motion(m, (W, H)) < IDENTITY_PX and (wt, ht) == (W, H):
        m = _IDENTITY.copy()
    reg = Registration(m, np.ones(3), np.zeros(3), (wt, ht), 1.0)
    moved, valid = reg.apply(target, (W, H))
    gain, offset = _tone(source, moved, valid)
    reg = Registration(m, gain, offset, (wt, ht), 1.0)
    moved, valid = reg.apply(target, (W, H))
    agree = _agreement(source, moved, valid)
    if agree < SAME_PHOTO_SHARE:
        raise FaceError(f"the after photo is not the before photo retouched (only {agree:.0%} of its "
                        "pixels match after alignment): an exemplar is one photo of one person, "
                        "before and after retouching")
    return Registration(m, gain, offset, (wt, ht), agree)


def _tone(src: np.ndarray, tgt: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset taking ``tgt``'s tone to ``src``'s, fitted where the
    two already nearly agree (robust to the edited pixels)."""
    k = max(1, int(np.sqrt(src.shape[0] * src.shape[1] / 60_000)))
    s = src[::k, ::k].reshape(-1, 3).astype(np.float64)
    t = tgt[::k, ::k].reshape(-1, 3).astype(np.float64)
    v = valid[::k, ::k].ravel()
    s, t = s[v], t[v]
    gain, offset = np.ones(3), np.zeros(3)
    for c in range(3):
        a, b = t[:, c], s[:, c]
        use = (a > 3) & (a < 252) & (b > 3) & (b < 252)
        if use.sum() < 100:
            continue
        a, b = a[use], b[use]
        w = np.ones(len(a))
        g, o = 1.0, 0.0
        for _ in range(5):
            A = np.stack([a * w, w], 1)
            g, o = np.linalg.lstsq(A, b * w, rcond=None)[0]
            r = np.abs(a * g + o - b)
            w = (r < max(3.0, 2.5 * float(np.median(r)))).astype(np.float64)
        if abs(g - 1) > TONE_TOLERANCE or abs(o) > TONE_TOLERANCE * 255:
            gain[c], offset[c] = g, o
    return gain, offset


def _agreement(src: np.ndarray, tgt: np.ndarray, valid: np.ndarray) -> float:
    """Share of textured, covered pixels where the two agree."""
    g = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3)) > 6.0
    use = texture & valid
    if use.sum() < 100:
        use = valid
    diff = pixel_difference(cv2.GaussianBlur(src, (3, 3), 0), cv2.GaussianBlur(tgt, (3, 3), 0))
    return float((diff[use] <= AGREE_LEVELS).mean())
