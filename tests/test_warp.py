import numpy as np

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
