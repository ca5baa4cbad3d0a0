"""Issue 13, "Nothing lost, nothing wrong": every failure the probe found, reproduced as
it was reported and checked fixed. The number in each test's name is the failure's
number in the issue (the README's exit-code list is the contract)."""
from __future__ import annotations

import base64
import io
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from mirrorppr import samples
from mirrorppr.cli import main
from mirrorppr.imageio import Photo, atomic_write_text as write_text, read_image, write_image


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:             # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str, text: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("mirrorppr:")]
    assert len(lines) == 1 and text in lines[0], err
    assert "Traceback" not in err and "internal error" not in err, err


def no_temp_files(folder) -> None:
    assert not [p for p in os.listdir(folder) if p.endswith(".part") or p.startswith(".mirrorppr-probe")]


@pytest.fixture
def astro(tmp_path):
    return write_image(Photo(read_image(samples.astronaut()).pixels), tmp_path / "astro.png")


@pytest.fixture(scope="module")
def preset_dict(operation):
    return operation.to_dict()


def _preset(tmp_path, data, name="p.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


# ---------------------------------------------------------------- 1. inputs replaced by JSON
def test_1_analyze_output_onto_its_source_is_refused(tmp_path, capsys, astro):
    before = astro.read_bytes()
    target = write_image(Photo(read_image(astro).pixels), tmp_path / "after.png")
    code, _, err = cli(capsys, "analyze", "--source", astro, "--target", target, "-o", astro)
    assert code == 5
    one_error(err, "refusing to overwrite an input")
    assert astro.read_bytes() == before


def test_1_save_preset_onto_the_query_is_refused(tmp_path, capsys, astro):
    before = astro.read_bytes()
    code, _, err = cli(capsys, "retouch", "--source", astro, "--target", astro, "--query", astro,
                       "-o", tmp_path / "o.png", "--save-preset", astro)
    assert code == 5 and astro.read_bytes() == before
    assert not (tmp_path / "o.png").exists()           # refused before any work
    # Not an input, but an image name: a preset would pass for a photo.
    code, _, err = cli(capsys, "retouch", "--source", astro, "--target", astro, "--query", astro,
                       "-o", tmp_path / "o.png", "--save-preset", tmp_path / "look.png")
    assert code == 5
    one_error(err, "give it a .json name")


def test_1_batch_report_onto_an_input_photo_is_refused(tmp_path, capsys, astro, preset_dict):
    indir = tmp_path / "in"
    indir.mkdir()
    x = write_image(Photo(read_image(astro).pixels), indir / "x.png")
    before = x.read_bytes()
    code, _, err = cli(capsys, "batch", "--preset", _preset(tmp_path, preset_dict), indir, tmp_path / "out",
                       "--report", x)
    assert code == 5 and x.read_bytes() == before


def test_1_library_writes_inside_a_run_never_replace_what_it_read(tmp_path, astro, operation):
    from mirrorppr.outputs import run_scope

    before = astro.read_bytes()
    with run_scope():
        read_image(astro)                                # read: now an input of the run
        with pytest.raises(Exception, match="overwrite an input"):
            operation.save(astro)                        # Operation.save goes through the guard
        with pytest.raises(Exception, match="overwrite an input"):
            write_text(astro, "{}")
    assert astro.read_bytes() == before


# ---------------------------------------------------------------- 2. outputs lost to other outputs
def test_2_output_and_compare_on_one_path_are_refused_before_work(tmp_path, capsys, astro):
    c = tmp_path / "c.png"
    code, _, err = cli(capsys, "edit", astro, "-o", c, "--compare", c, "--op", "eye_resize=30")
    assert code == 5 and not c.exists()
    one_error(err, "given as both -o and --compare")


def test_2_apply_of_two_inputs_with_one_name_is_refused(tmp_path, capsys, astro, preset_dict):
    for d in ("d1", "d2"):
        (tmp_path / d).mkdir()
        write_image(Photo(read_image(astro).pixels), tmp_path / d / "p.png")
    code, _, err = cli(capsys, "apply", _preset(tmp_path, preset_dict), tmp_path / "d1" / "p.png",
                       tmp_path / "d2" / "p.png", "-o", tmp_path / "coll")
    assert code == 5 and not (tmp_path / "coll" / "p.png").exists()
    one_error(err, "each output needs its own path")


# ---------------------------------------------------------------- 3. file modes
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_3_new_files_honour_the_umask(tmp_path, astronaut, umask, mode):
    old = os.umask(umask)
    try:
        img = write_image(Photo(astronaut), tmp_path / "a.png")
        txt = write_text(tmp_path / "p.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(img.stat().st_mode) == mode
    assert stat.S_IMODE(txt.stat().st_mode) == mode


def test_3_a_replaced_file_keeps_its_mode_and_a_symlink_survives(tmp_path, astronaut):
    p = write_image(Photo(astronaut), tmp_path / "a.png")
    os.chmod(p, 0o604)
    write_image(Photo(astronaut[::-1].copy()), p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o604
    link = tmp_path / "link.png"
    link.symlink_to(p)
    write_image(Photo(astronaut), link)
    assert link.is_symlink() and np.array_equal(read_image(p).pixels, astronaut)


# ---------------------------------------------------------------- 4. user errors with exit 1
def _bad_preset(tmp_path, preset_dict, change) -> str:
    d = json.loads(json.dumps(preset_dict))
    change(d)
    return _preset(tmp_path, d, "bad.json")


def _cut_landmarks(d):
    d["landmarks"] = d["landmarks"][:10]


@pytest.mark.parametrize("case", ["preset-folder", "recipe-folder", "op-42", "grid-x", "deep-recipe",
                                  "deep-preset", "non-utf8-recipe", "landmarks-10-flow"])
def test_4_bad_presets_and_recipes_exit_6(tmp_path, capsys, astro, preset_dict, case):
    out = tmp_path / "o.png"
    if case == "preset-folder":
        args, text = ("apply", tmp_path, astro, "-o", tmp_path / "o"), "is a folder"
    elif case == "recipe-folder":
        args, text = ("edit", astro, "-o", out, "--recipe", tmp_path), "is a folder"
    elif case == "op-42":
        (tmp_path / "r.json").write_text('[{"op": 42, "strength": 10}]')
        args, text = ("edit", astro, "-o", out, "--recipe", tmp_path / "r.json"), "'op' must be"
    elif case == "grid-x":
        p = _bad_preset(tmp_path, preset_dict, lambda d: d.update(grid="x"))
        args, text = ("apply", p, astro, "-o", tmp_path / "o"), "'grid'"
    elif case in ("deep-recipe", "deep-preset"):
        (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
        args = (("edit", astro, "-o", out, "--recipe", tmp_path / "deep.json") if case == "deep-recipe"
                else ("apply", tmp_path / "deep.json", astro, "-o", tmp_path / "o"))
        text = "nested 100000 levels deep"
    elif case == "non-utf8-recipe":
        (tmp_path / "r.json").write_bytes('[{"op": "eye_resize", "strength": 10}] \u00e9'.encode("latin-1"))
        args, text = ("edit", astro, "-o", out, "--recipe", tmp_path / "r.json"), "not UTF-8"
    else:
        p = _bad_preset(tmp_path, preset_dict, _cut_landmarks)
        args, text = ("apply", p, astro, "-o", tmp_path / "o", "--engine", "flow"), "478 points"
    code, _, err = cli(capsys, *args)
    assert code == 6, err
    one_error(err, text)
    assert not out.exists()


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "0", "inf"])
def test_4_pixel_limit_variable_is_checked(capsys, astro, tmp_path, monkeypatch, value):
    monkeypatch.setenv("MIRRORPPR_MAX_MEGAPIXELS", value)
    code, _, err = cli(capsys, "edit", astro, "-o", tmp_path / "o.png", "--op", "eye_resize=10")
    assert code == 6
    one_error(err, "MIRRORPPR_MAX_MEGAPIXELS")


def test_4_unwritable_places_exit_5(tmp_path, capsys, astro):
    (tmp_path / "file").write_text("x")
    for target, text in ((("/proc/o.png"), "cannot write here"),
                         (tmp_path / "file" / "sub" / "o.png", "cannot create this folder")):
        code, _, err = cli(capsys, "edit", astro, "-o", target, "--op", "eye_resize=10")
        assert code == 5, err
        one_error(err, text)


# ---------------------------------------------------------------- 5. preset motion data unchecked
def _scaled_flow(k):
    def change(d):
        raw = np.frombuffer(base64.b64decode(d["flow"]["data"]), "<f2").astype(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            raw = (raw * np.float32(k)).astype("<f2")
        d["flow"]["data"] = base64.b64encode(raw.tobytes()).decode()
    return change


@pytest.mark.parametrize("case,text", [("x1000", "beyond the limit"), ("nan", "NaN or infinite"),
                                       ("inf", "NaN or infinite"), ("landmark-nan", "NaN"),
                                       ("strength-900", "outside [-100, 100]")])
def test_5_out_of_range_motion_is_refused(tmp_path, capsys, astro, preset_dict, case, text):
    change = {"x1000": _scaled_flow(1000), "nan": _scaled_flow(np.nan), "inf": _scaled_flow(np.inf),
              "landmark-nan": lambda d: d["landmarks"][0].__setitem__(0, float("nan")),
              "strength-900": lambda d: d["recipe"][0].__setitem__("strength", -900)}[case]
    d = json.loads(json.dumps(preset_dict))
    change(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))                         # NaN written as the token NaN
    code, _, err = cli(capsys, "apply", p, astro, "-o", tmp_path / "o")
    assert code == 6
    one_error(err, "NaN" if case == "landmark-nan" else text)
    assert not (tmp_path / "o" / "astro.png").exists()


def test_5_five_million_landmarks_are_refused_before_parsing(tmp_path, capsys, astro, preset_dict):
    big = json.dumps({**preset_dict, "landmarks": None})
    p = tmp_path / "huge.json"
    p.write_text(big.replace('"landmarks": null', '"landmarks": [' + ",".join(["[0.1,0.2]"] * 5_000_000) + "]"))
    code, _, err = cli(capsys, "apply", p, astro, "-o", tmp_path / "o")
    assert code == 6
    one_error(err, "too large for a preset")


def test_5_a_real_preset_still_loads_and_unknown_keys_are_tolerated(tmp_path, capsys, preset_dict):
    code, out, err = cli(capsys, "show", _preset(tmp_path, {**preset_dict, "future_field": {"x": 1}}))
    assert code == 0, err
    assert "preset:" in out


# ---------------------------------------------------------------- 7. data verify
def test_7_verify_of_a_missing_folder_is_an_input_error(tmp_path, capsys):
    code, _, err = cli(capsys, "data", "verify", tmp_path / "nope")
    assert code == 3
    one_error(err, "no such folder")
    code, _, err = cli(capsys, "data", "verify", tmp_path)
    assert code == 3
    one_error(err, "not a shard folder")


def test_7_verify_flags_out_of_range_values(tmp_path, capsys, astronaut, astronaut_face):
    from mirrorppr.data import SimConfig, make_tasks, run_tasks
    from mirrorppr.data.shards import read_shard, write_shard

    src = write_image(Photo(astronaut), tmp_path / "in" / "a.png")
    cfg = SimConfig(size=256, levels=(100.0,))
    run_tasks(make_tasks("simulate", [[str(src), "a.png"]], cfg, 1), tmp_path / "s", workers=1, progress=False)
    assert cli(capsys, "data", "verify", tmp_path / "s")[0] == 0
    shard = tmp_path / "s" / "shard-00000.tar"
    items = list(read_shard(shard))
    items[0].record["recipe"][0]["strength"] = -900
    items[1].record["augment"]["angle"] = 7.0
    write_shard(shard, items)
    code, out, _ = cli(capsys, "data", "verify", tmp_path / "s")
    assert code == 8
    assert "outside [-100, 100]" in out and "rotation 7 is not one of" in out


def test_7_readme_documents_every_exit_code():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("Exit codes"):][:3000]
    for code in (0, 1, 2, 3, 4, 5, 6, 7, 8, 130):
        assert f"\n| {code} " in section, code
    from mirrorppr import cli
    assert "8 ``data verify`` found problems" in cli.__doc__


# ---------------------------------------------------------------- 8. smaller ones
def test_8_multi_frame_files_say_only_the_first_frame_is_used(tmp_path, astronaut):
    frames = [Image.fromarray(astronaut), Image.fromarray(astronaut[::-1].copy())]
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    for name in ("pages.tif", "anim.gif"):
        ph = read_image(tmp_path / name)
        assert any("2 frames/pages: only the first" in n for n in ph.notes), ph.notes


def test_8_notes_are_printed_once(tmp_path, capsys, astronaut):
    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "c.jpg")
    code, out, err = cli(capsys, "edit", tmp_path / "c.jpg", "-o", tmp_path / "o.png", "--op", "eye_resize=20")
    assert code == 0, err
    assert out.count("CMYK converted") == 1, out


def test_8_float_rgb_tiff_gets_a_clear_message(tmp_path, astronaut):
    import tifffile

    from mirrorppr.errors import InputError

    tifffile.imwrite(tmp_path / "hdr.tif", astronaut.astype(np.float32) / 255)
    with pytest.raises(InputError, match="floating-point"):
        read_image(tmp_path / "hdr.tif")


def test_8_apply_of_one_over_limit_file_exits_3(tmp_path, capsys, astro, preset_dict, monkeypatch):
    monkeypatch.setenv("MIRRORPPR_MAX_MEGAPIXELS", "0.1")
    code, _, err = cli(capsys, "apply", _preset(tmp_path, preset_dict), astro, "-o", tmp_path / "o")
    assert code == 3
    one_error(err, "MP limit")


def test_8_a_bad_compare_is_refused_before_the_main_output_is_written(tmp_path, capsys, astro):
    code, _, err = cli(capsys, "edit", astro, "-o", tmp_path / "o.png", "--compare", tmp_path / "c.txt",
                       "--op", "eye_resize=20")
    assert code == 5 and not (tmp_path / "o.png").exists()
    one_error(err, "unsupported output type")


@pytest.mark.parametrize("cmd", ["apply", "batch"])
def test_8_a_suffix_cannot_leave_the_output_folder(tmp_path, capsys, astro, preset_dict, cmd):
    indir = tmp_path / "in"
    indir.mkdir()
    write_image(Photo(read_image(astro).pixels), indir / "a.png")
    p = _preset(tmp_path, preset_dict)
    args = (("apply", p, indir / "a.png", "-o", tmp_path / "out") if cmd == "apply"
            else ("batch", "--preset", p, indir, tmp_path / "out"))
    code, _, err = cli(capsys, *args, "--suffix", "/../../x")
    assert code == 6
    one_error(err, "must be part of a file name")
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["a.png", "astro.png"]


def test_8_eval_of_an_empty_folder_is_an_error(tmp_path, capsys):
    (tmp_path / "cases").mkdir()
    code, _, err = cli(capsys, "eval", tmp_path / "cases", "--out", tmp_path / "e")
    assert code == 3
    one_error(err, "no case folders")


# ---------------------------------------------------------------- existing-output policy
def test_existing_outputs_are_refused_unless_overwrite(tmp_path, capsys, astro):
    o = tmp_path / "o.jpg"
    assert cli(capsys, "edit", astro, "-o", o, "--op", "eye_resize=20")[0] == 0
    first = o.read_bytes()
    code, _, err = cli(capsys, "edit", astro, "-o", o, "--op", "eye_resize=60")
    assert code == 5 and o.read_bytes() == first
    one_error(err, "pass --overwrite")
    assert cli(capsys, "edit", astro, "-o", o, "--op", "eye_resize=60", "--overwrite")[0] == 0
    assert o.read_bytes() != first


def test_quality_sets_jpeg_size_and_is_checked(tmp_path, capsys, astro):
    for q in (95, 40):
        assert cli(capsys, "edit", astro, "-o", tmp_path / f"q{q}.jpg", "--op", "eye_resize=20",
                   "--quality", q)[0] == 0
    assert (tmp_path / "q40.jpg").stat().st_size < 0.6 * (tmp_path / "q95.jpg").stat().st_size
    code, _, err = cli(capsys, "edit", astro, "-o", tmp_path / "x.jpg", "--op", "eye_resize=20", "--quality", "0")
    assert code == 2 and "outside 1..100" in err


def test_version(capsys):
    import mirrorppr

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip().startswith(f"mirrorppr {mirrorppr.__version__}")


def test_bad_option_values_exit_6(tmp_path, capsys, astro, preset_dict):
    p = _preset(tmp_path, preset_dict)
    for extra, text in ((("--strength", "nan"), "--strength"), (("--set", "eye_resize=nan"), "outside"),
                        (("--face-index", "-1"), "--face-index")):
        code, _, err = cli(capsys, "apply", p, astro, "-o", tmp_path / "o", *extra)
        assert code == 6, err
        one_error(err, text)


def test_a_jpeg_with_a_broken_tail_is_still_an_input_error(tmp_path, astronaut):
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:2000])
    from mirrorppr.errors import InputError
    with pytest.raises(InputError):
        read_image(tmp_path / "cut.png")
