import cv2
import numpy as np

from mirrorppr.eval.metrics import pixel_difference
from mirrorppr.warp.field import Field
from mirrorppr.warp.mls import mls_similarity


def test_mls_interpolates_controls_and_keeps_identity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (12, 2))
    dst = src + rng.normal(0, 3, src.shape)
    f = mls_similarity(dst, dst, src)
    assert np.allclose(f, src, atol=1e-3)
    v = rng.uniform(0, 100, (50, 2))
    assert np.allclose(mls_similarity(v, src, src), v, atol=1e-9)


def test_mls_reproduces_a_similarity():
    src = np.array([[10, 10], [90, 15], [50, 80], [20, 60]], float)
    a = np.deg2rad(10)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * 1.2
    dst = src @ R.T + [5, -3]
    v = np.array([[40.0, 40.0], [70, 30]])
    expected = (v - [5, -3]) @ np.linalg.inv(R).T
    assert np.allclose(mls_similarity(v, dst, src), expected, atol=1e-6)


def test_mls_matches_the_weighted_similarity_fit_at_every_point():
    # Reference written the textbook way, point by point in complex numbers: the
    # similarity a*z + b fitted to the controls with weights 1/|v - p|^2.
    rng = np.random.default_rng(3)
    dst = rng.uniform(200, 800, (30, 2))
    src = dst + rng.normal(0, 8, dst.shape)
    v = rng.uniform(0, 1024, (200, 2))
    p, q = dst[:, 0] + 1j * dst[:, 1], src[:, 0] + 1j * src[:, 1]
    ref = []
    for z in v[:, 0] + 1j * v[:, 1]:
        w = 1.0 / (np.abs(z - p) ** 2 + 1e-8)
        ps, qs = (w * p).sum() / w.sum(), (w * q).sum() / w.sum()
        a = (w * np.conj(p - ps) * (q - qs)).sum() / (w * np.abs(p - ps) ** 2).sum()
        ref.append(a * (z - ps) + qs)
    ref = np.array(ref)
    assert np.allclose(mls_similarity(v, dst, src), np.stack([ref.real, ref.imag], 1), atol=1e-6)


def test_composition_of_local_fields_matches_the_whole_grid_definition():
    rng = np.random.default_rng(4)
    a, b = np.zeros((120, 160, 2), np.float32), np.zeros((120, 160, 2), np.float32)
    a[10:70, 20:100] = rng.normal(0, 2, (60, 80, 2))
    b[50:110, 80:150] = rng.normal(0, 2, (60, 70, 2))
    A = Field(cv2.GaussianBlur(a, (0, 0), 4), (320, 240))
    B = Field(cv2.GaussianBlur(b, (0, 0), 4), (320, 240))
    for first, second in ((A, B), (B, A)):
        gx, gy = np.meshgrid(np.arange(160, dtype=np.float32), np.arange(120, dtype=np.float32))
        at = cv2.remap(first.d, gx + second.d[..., 0] / 2, gy + second.d[..., 1] / 2, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        assert np.allclose(first.then(second).d, second.d + at, atol=1e-5)
    assert np.array_equal(A.then(Field.zeros((320, 240), 160)).d, A.d)


def test_pixel_difference_is_the_largest_channel_difference():
    rng = np.random.default_rng(5)
    for dtype, top, shape in ((np.uint8, 256, (40, 50, 3)), (np.uint16, 65536, (40, 50, 4)),
                              (np.uint8, 256, (40, 50))):
        x = rng.integers(0, top, shape).astype(dtype)
        y = rng.integers(0, top, shape).astype(dtype)
        want = np.abs(x.astype(np.int64) - y.astype(np.int64))
        want = want.max(axis=2) if want.ndim == 3 else want
        got = pixel_difference(x, y)
        assert got.dtype == dtype and np.array_equal(got, want)


def _bump(size=(200, 160), amp=3.0):
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-(((xx - 100) ** 2 + (yy - 80) ** 2) / (2 * 20.0 ** 2)))
    d = np.stack([amp * g, -0.5 * amp * g], axis=2).astype(np.float32)
    d[g < 1e-3] = 0
    return Field(d, size)


def test_apply_keeps_untouched_pixels_depth_and_alpha():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 65535, (160, 200, 4), dtype=np.uint16)
    f = _bump()
    out = f.apply(img)
    assert out.dtype == np.uint16 and out.shape == img.shape
    still = (np.abs(f.dense()) <= 1e-3).all(axis=2)
    assert np.array_equal(out[still], img[still])
    assert not np.array_equal(out[~still], img[~still])


def test_compose_and_invert():
    f = _bump()
    inv = f.inverted()
    both = f.then(inv)
    assert np.abs(both.d).max() < 0.05 * np.abs(f.d).max() + 0.02
    pts = np.array([[100.0, 80.0], [90, 70]])
    fwd = f.forward_points(pts)
    assert np.allclose(fwd + f.sample(fwd), pts, atol=1e-2)


def test_resampled_and_scaled():
    f = _bump()
    half = f.resampled((100, 80))
    assert half.d.shape == (80, 100, 2)
    assert np.isclose(np.abs(half.d).max(), np.abs(f.d).max(), rtol=0.1)
    assert np.allclose(f.scaled(2).d, 2 * f.d)
    assert Field.zeros((50, 40)).is_zero()
