"""The studio's parts without a server: limits, sessions, the guard on served files,
and exports that match ``mirrorppr apply`` bit for bit."""
from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mirrorppr import samples
from mirrorppr.app import Limits, Studio
from mirrorppr.app.core import PreviewPhoto, Settings, edit, export_photos, preview_pixels, settings_of
from mirrorppr.app.limits import check_count, check_photo_file
from mirrorppr.app.server import LocalFilesOnly
from mirrorppr.cli import main as cli
from mirrorppr.errors import InputError
from mirrorppr.imageio import Photo, read_image, write_image
from mirrorppr.ops.recipe import Recipe


def _png(path: Path, h: int, w: int, noise: bool = False) -> Path:
    px = (np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8) if noise
          else np.full((h, w, 3), 128, np.uint8))
    return write_image(Photo(px), path)


def test_limits_refuse_with_clear_messages(tmp_path):
    limits = Limits(max_file_mb=0.5, max_megapixels=1.0, max_photos=2)
    assert check_photo_file(_png(tmp_path / "ok.png", 500, 400), limits) == (400, 500)
    with pytest.raises(InputError, match=r"wide\.png: 1100x1000 is 1\.1 MP, over the studio's 1 MP limit"):
        check_photo_file(_png(tmp_path / "wide.png", 1000, 1100), limits)
    with pytest.raises(InputError, match=r"noise\.png: 0\.7 MB is over the studio's 0\.5 MB limit"):
        check_photo_file(_png(tmp_path / "noise.png", 500, 500, noise=True), limits)
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(InputError, match=r"^notes\.jpg: not a readable image$"):
        check_photo_file(tmp_path / "notes.jpg", limits)
    (tmp_path / "run.sh").write_text("#!/bin/sh")
    with pytest.raises(InputError, match="not a photo type"):
        check_photo_file(tmp_path / "run.sh", limits)
    check_count(1, "b.png", limits)
    with pytest.raises(InputError, match="at most 2 photos per session"):
        check_count(2, "c.png", limits)


def test_sessions_are_isolated_and_removed_when_they_end(tmp_path):
    studio = Studio(tmp_path / "root", Limits(max_photos=2), idle_seconds=3600)
    a, b = studio.workspace("tab-a"), studio.workspace("tab-b")
    assert a is studio.workspace("tab-a") and a.dir != b.dir
    upload = tmp_path / "upload" / "astronaut.png"
    upload.parent.mkdir()
    shutil.copyfile(samples.astronaut(), upload)
    added, refused = a.add_photos([str(upload)])
    assert [p.name for p in added] == ["astronaut.png"] and not refused
    assert not upload.exists(), "an upload is moved into its session's folder"
    assert added[0].path.is_relative_to(a.dir) and not b.photos
    with pytest.raises(InputError, match="no photo"):
        b.photo("astronaut.png")
    studio.end("tab-a")
    assert not a.dir.exists() and b.dir.exists() and studio.session_count == 1
    # an idle session is closed when another one is next used
    studio.idle_seconds = 0.0
    time.sleep(0.01)
    studio.workspace("tab-c")
    assert not b.dir.exists() and studio.session_count == 1
    studio.close()
    assert not any((tmp_path / "root" / "sessions").iterdir())


def test_refused_uploads_are_reported_and_deleted(tmp_path):
    studio = Studio(tmp_path / "root", Limits(max_megapixels=0.5, max_photos=1))
    ws = studio.workspace("tab")
    up = tmp_path / "up"
    up.mkdir()
    bad = up / "notes.jpg"
    bad.write_text("hello")
    big = _png(up / "big.png", 800, 800)
    shutil.copyfile(samples.astronaut(), up / "a.png")
    shutil.copyfile(samples.astronaut(), up / "b.png")
    added, refused = ws.add_photos([str(bad), str(big), str(up / "a.png"), str(up / "b.png")])
    assert [p.name for p in added] == ["a.png"]
    assert refused[0] == "notes.jpg: not a readable image"
    assert refused[1].startswith("big.png: 800x800 is 0.6 MP, over the studio's 0.5 MP limit")
    assert "at most 1 photos per session" in refused[2]
    assert not up.exists(), "refused uploads (and their emptied upload folder) do not stay on disk"
    studio.close()


@pytest.mark.parametrize("path, ok", [
    ("/", True), ("/gradio_api/queue/join", True), ("/gradio_api/file=ROOT/sessions/x/view/a.jpg", True),
    ("/gradio_api/file=/etc/passwd", False), ("/gradio_api/file=ROOT/../secret.txt", False),
    ("/gradio_api/file=ROOT/sessions/%2e%2e/%2e%2e/../secret.txt", False),
    ("/gradio_api/file=secret.txt", False), ("/gradio_api/file=https://example.com/a.png", False),
    ("/gradio_api/file=//example.com/a.png", False), ("/gradio_api/proxy=https://example.com/", False),
    ("/gradio_api/file/ROOT/../secret.txt", False), ("/gradio_api/file=ROOT/link/passwd", False),
])
def test_guard_serves_only_the_studio_folder(tmp_path, path, ok):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink("/etc", root / "link")            # a link inside that points out
    guard = LocalFilesOnly(None, root)
    assert guard.allowed(path.replace("ROOT", str(root))) is ok


def test_export_matches_the_command_line_bit_for_bit(tmp_path, operation):
    photos = tmp_path / "photos"
    photos.mkdir()
    a = photos / "astronaut.png"
    shutil.copyfile(samples.astronaut(), a)
    rot = np.ascontiguousarray(np.rot90(read_image(a).rgb8()))
    b = write_image(Photo(rot, format="JPEG"), photos / "turned.jpg")
    # the sliders: one op moved, one added; global strength 0.8
    s = settings_of(operation, strength=0.8)
    values = dict(s.strengths)
    first = next(iter(values))
    values[first] = values[first] / 2
    values["eye_resize"] = 30.0
    s = Settings(tuple(values.items()), 0.8, "auto")
    res = export_photos(operation, s, [(a, "astronaut.png"), (b, "turned.jpg")], tmp_path / "out",
                        zip_name="retouched.zip")
    assert res.done == ["astronaut.png", "turned.jpg"] and not res.failed
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(res.path) as z:
        assert sorted(z.namelist()) == ["astronaut.png", "astronaut.png.json", "preset.json",
                                        "turned.jpg", "turned.jpg.json"]
        z.extractall(unzipped)
    side = json.loads((unzipped / "turned.jpg.json").read_text())
    assert side["command"] == "mirrorppr apply preset.json turned.jpg -o OUT --engine auto --strength 0.8"
    preset = json.loads((unzipped / "preset.json").read_text())
    assert {"op": "eye_resize", "strength": 30.0} in preset["recipe"]
    cli_out = tmp_path / "cli"
    assert cli(["apply", str(unzipped / "preset.json"), str(a), str(b), "-o", str(cli_out),
                "--engine", "auto", "--strength", "0.8"]) == 0
    for name in ("astronaut.png", "turned.jpg"):
        mine, theirs = read_image(unzipped / name).pixels, read_image(cli_out / name).pixels
        assert mine.shape == theirs.shape and np.array_equal(mine, theirs), name
    assert not np.array_equal(read_image(unzipped / "astronaut.png").pixels, read_image(a).pixels)


def test_a_moved_slider_always_acts(operation):
    assert edit(operation, operation.recipe) is operation
    flow_op = replace(operation, choice="flow")
    moved = edit(flow_op, Recipe.of(("eye_resize", 40)))
    assert moved.choice == "recipe+residual" and moved.meta["studio"]["analysed_choice"] == "flow"


def test_preview_is_the_export_engine_at_screen_size(tmp_path, operation):
    big = tmp_path / "big.png"
    rgb = read_image(samples.astronaut()).rgb8()
    write_image(Photo(np.repeat(np.repeat(rgb, 3, axis=0), 3, axis=1)), big)     # 1536 px
    photo = PreviewPhoto.load(big, "big.png", side=512)
    assert photo.pixels.shape == (512, 512, 3) and photo.error is None
    s = settings_of(operation)
    out = preview_pixels(operation, photo, s)
    moved = np.abs(out.astype(int) - photo.pixels.astype(int)).max(axis=2) > 0
    assert out.shape == photo.pixels.shape and 0 < moved.mean() < 0.3
    x0, y0, x1, y1 = photo.face.box
    ys, xs = np.nonzero(moved)
    assert x0 - 40 < xs.mean() < x1 + 40 and y0 - 40 < ys.mean() < y1 + 40, "the edit is on the face"
    zero = preview_pixels(operation, photo, Settings(s.strengths, 0.0, "auto"))
    assert np.array_equal(zero, photo.pixels), "strength 0 leaves the photo untouched"
