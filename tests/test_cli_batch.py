import json
import subprocess
import sys

import numpy as np
import pytest

from mirrorppr import samples
from mirrorppr.cli import main
from mirrorppr.imageio import Photo, read_image, write_image
from mirrorppr.transfer.batch import run_batch


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mirrorppr", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_ops_json(capsys):
    assert main(["ops", "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)
    names = {o["name"] for o in ops}
    assert {"eye_resize", "face_width", "smile"} <= names
    assert all({"name", "labels", "group"} <= o.keys() for o in ops)


def test_edit_writes_output_compare_and_landmarks(tmp_path, capsys):
    out = tmp_path / "o.jpg"
    code = main(["edit", str(samples.astronaut()), "-o", str(out), "--op", "eye_resize=50",
                 "--op", "face_width=-40", "--compare", str(tmp_path / "c.jpg"),
                 "--show-landmarks", str(tmp_path / "l.png")])
    assert code == 0
    assert read_image(out).size == (512, 512)
    assert read_image(tmp_path / "c.jpg").width > 1000
    assert (tmp_path / "l.png").exists()
    assert "Enlarge eyes +50" in capsys.readouterr().out


@pytest.mark.parametrize("args,code,text", [
    (["edit", "missing.jpg", "-o", "x.jpg", "--op", "eye_resize=10"], 3, "no such file"),
    (["edit", "{astro}", "-o", "x.jpg", "--op", "eyes_bigger=10"], 6, "unknown operation"),
    (["edit", "{astro}", "-o", "x.jpg", "--op", "eye_resize=300"], 6, "outside"),
    (["edit", "{flat}", "-o", "x.jpg", "--op", "eye_resize=10"], 4, "no face"),
    (["edit", "{astro}", "-o", "{astro}", "--op", "eye_resize=10"], 5, "overwrite an input"),
])
def test_cli_errors_are_one_line_with_meaningful_codes(tmp_path, args, code, text):
    flat = write_image(Photo(np.full((200, 300, 3), 90, np.uint8)), tmp_path / "flat.png")
    astro = write_image(read_image(samples.astronaut()).with_pixels(read_image(samples.astronaut()).pixels),
                        tmp_path / "astro.png")
    args = [a.format(astro=astro, flat=flat) for a in args]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("mirrorppr:")]
    assert len(lines) == 1 and text in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def _shoot(tmp_path, astronaut):
    indir = tmp_path / "shoot"
    (indir / "day2").mkdir(parents=True)
    write_image(Photo(astronaut), indir / "a.png")
    write_image(Photo(np.ascontiguousarray(astronaut[:, ::-1])), indir / "day2" / "b.jpg")
    write_image(Photo(np.full((100, 120, 3), 50, np.uint8)), indir / "day2" / "empty.png")
    (indir / "broken.jpg").write_bytes(b"\xff\xd8 garbage")
    return indir


def test_batch_errors_skip_and_resume(tmp_path, operation, astronaut):
    indir = _shoot(tmp_path, astronaut)
    outdir = tmp_path / "out"
    rep = run_batch(operation, indir, outdir, workers=1, progress=False)
    assert len(rep.done) == 2 and len(rep.failed) == 2
    assert (outdir / "a.png").exists() and (outdir / "day2" / "b.jpg").exists()
    msgs = " ".join(rep.failed.values())
    assert "no face" in msgs and "readable" in msgs
    again = run_batch(operation, indir, outdir, workers=1, progress=False)
    assert len(again.done) == 0 and len(again.skipped) == 2
    # A half-written output (not decodable) is redone.
    (outdir / "a.png").write_bytes(b"\x89PNG broken")
    third = run_batch(operation, indir, outdir, workers=1, progress=False)
    assert [p.endswith("a.png") for p in third.done] == [True]
    assert sorted(p.name for p in indir.rglob("*")) == sorted(["a.png", "b.jpg", "broken.jpg", "day2", "empty.png"])


def test_batch_cli_two_workers_and_refuses_output_inside_input(tmp_path, operation, astronaut):
    indir = _shoot(tmp_path, astronaut)
    preset = operation.save(tmp_path / "look.json")
    r = run_cli("batch", "--preset", preset, indir, tmp_path / "out", "--workers", "2",
                "--report", tmp_path / "rep.json")
    assert r.returncode == 7, r.stderr           # two files failed
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert len(rep["done"]) == 2 and len(rep["failed"]) == 2
    r = run_cli("batch", "--preset", preset, indir, indir / "retouched")
    assert r.returncode == 5 and "must not be the input folder" in r.stderr


def test_retouch_and_analyze_cli(tmp_path, exemplar):
    _, before, after = exemplar
    s = write_image(Photo(before), tmp_path / "before.png")
    t = write_image(Photo(after), tmp_path / "after.png")
    r = run_cli("analyze", "--source", s, "--target", t, "-o", tmp_path / "p.json",
                "--visualize", tmp_path / "motion.jpg")
    assert r.returncode == 0, r.stderr
    assert "Slim face" in r.stdout and (tmp_path / "motion.jpg").exists()
    r = run_cli("retouch", "--source", s, "--target", t, "--query", samples.astronaut(),
                "-o", tmp_path / "q.jpg", "--compare", tmp_path / "cmp.jpg", "--strength", "0.8")
    assert r.returncode == 0, r.stderr
    assert read_image(tmp_path / "q.jpg").size == (512, 512)
    r = run_cli("apply", tmp_path / "p.json", samples.astronaut(), "-o", tmp_path / "applied")
    assert r.returncode == 0 and (tmp_path / "applied" / "astronaut.png").exists()
