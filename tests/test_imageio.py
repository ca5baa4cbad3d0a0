import io
import os

import numpy as np
import pytest
from PIL import Image, ImageCms

from mirrorppr.errors import InputError, OutputError
from mirrorppr.imageio import Photo, read_image, write_image


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_roundtrip_8bit_formats(tmp_path, astronaut, suffix):
    p = write_image(Photo(astronaut), tmp_path / f"a{suffix}")
    back = read_image(p)
    assert back.pixels.shape == astronaut.shape and back.pixels.dtype == np.uint8
    tol = 12 if suffix in (".jpg", ".webp") else 0
    assert np.abs(back.pixels.astype(int) - astronaut).mean() <= tol


def test_16bit_png_keeps_depth_and_icc(tmp_path, astronaut):
    px16 = astronaut.astype(np.uint16) * 257 + 7
    icc = _srgb_icc()
    p = write_image(Photo(px16, icc_profile=icc), tmp_path / "deep.png")
    back = read_image(p)
    assert back.pixels.dtype == np.uint16
    assert np.array_equal(back.pixels, px16)
    assert back.icc_profile == icc


def test_rgba_alpha_is_kept(tmp_path, astronaut):
    alpha = np.linspace(0, 255, astronaut.shape[1], dtype=np.uint8)[None, :, None].repeat(astronaut.shape[0], 0)
    rgba = np.concatenate([astronaut, alpha], axis=2)
    back = read_image(write_image(Photo(rgba), tmp_path / "a.png"))
    assert back.has_alpha and np.array_equal(back.pixels, rgba)


def test_grayscale_stays_gray(tmp_path, astronaut):
    gray = astronaut.mean(axis=2).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    ph = read_image(tmp_path / "g.png")
    assert ph.pixels.shape[2] == 1 and ph.rgb8().shape[2] == 3
    back = read_image(write_image(ph.with_pixels(ph.pixels), tmp_path / "g2.png"))
    assert back.pixels.shape[2] == 1


def test_cmyk_is_converted_with_a_note(tmp_path, astronaut):
    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "c.jpg")
    ph = read_image(tmp_path / "c.jpg")
    assert ph.pixels.shape[2] == 3
    assert any("CMYK" in n for n in ph.notes)


def test_exif_orientation_is_applied_and_reset(tmp_path, astronaut):
    im = Image.fromarray(astronaut[:, :400])            # 512 tall, 400 wide
    exif = im.getexif()
    exif[0x0112] = 6                                     # rotate 90 CW on display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    ph = read_image(tmp_path / "r.jpg")
    assert ph.pixels.shape[:2] == (400, 512)
    out = write_image(ph, tmp_path / "r2.jpg")
    assert Image.open(out).getexif().get(0x0112, 1) == 1


def test_refuses_to_overwrite_input(tmp_path, astronaut):
    p = write_image(Photo(astronaut), tmp_path / "in.png")
    ph = read_image(p)
    with pytest.raises(OutputError, match="overwrite an input"):
        write_image(ph, p)


def test_atomic_write_leaves_no_temp_files(tmp_path, astronaut):
    write_image(Photo(astronaut), tmp_path / "x.png")
    assert sorted(os.listdir(tmp_path)) == ["x.png"]


def test_pixel_limit(tmp_path, astronaut, monkeypatch):
    p = write_image(Photo(astronaut), tmp_path / "big.png")
    monkeypatch.setenv("MIRRORPPR_MAX_MEGAPIXELS", "0.1")
    with pytest.raises(InputError, match="over the 0 MP limit|MP limit"):
        read_image(p)


def test_unreadable_and_truncated(tmp_path, astronaut):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "notes.jpg")
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
