"""Fuzzing presets and recipes (issue 13): a real preset and a real recipe, mutated a few
hundred ways (types, ranges, nesting, sizes, encodings), only ever give documented exit
codes with a one-line message: no traceback, no "internal error". Variants that still
validate are applied to a real photo, so "valid" also means "safe to render"."""
from __future__ import annotations

import copy
import json
import random

import pytest

from mirrorppr import samples
from mirrorppr.cli import main
from mirrorppr.imageio import Photo, read_image, write_image

DOCUMENTED = {0, 2, 3, 4, 5, 6, 7}
ODD_VALUES = [None, True, 0, -1, 42, 1e308, -1e-300, 3.5, "", "x", "NaN", [], {}, [1, 2], {"a": 1},
              [[0.1, 0.2]] * 3, "é" * 50, [None] * 10]


def _paths(value, prefix=(), depth=0):
    """Every (path) into a JSON value, a few list items deep."""
    yield prefix
    if depth >= 4:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,), depth + 1)
    elif isinstance(value, list):
        for i in sorted({0, len(value) - 1}) if value else ():
            yield from _paths(value[i], prefix + (i,), depth + 1)


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _get(doc, path):
    for key in path:
        doc = doc[key]
    return doc


def _mutate(doc, rng: random.Random) -> bytes:
    """One mutant, as the bytes of a file."""
    kind = rng.choice(["type", "type", "range", "delete", "nest", "size", "encoding", "token", "truncate"])
    d = copy.deepcopy(doc)
    path = rng.choice(list(_paths(d)))
    if kind == "type":
        d = _set(d, path, copy.deepcopy(rng.choice(ODD_VALUES)))
    elif kind == "range":
        v = _get(d, path)
        k = rng.choice([-1, 1e3, -1e6, 1e12, 0.5, 101])
        scaled = (v * k if isinstance(v, (int, float)) and not isinstance(v, bool)
                  else [x * k if isinstance(x, (int, float)) else x for x in v] if isinstance(v, list)
                  else 1e9)
        d = _set(d, path, scaled)
    elif kind == "delete" and path:
        parent = _get(d, path[:-1])
        del parent[path[-1]]
    elif kind == "nest":        # spliced in as text: the encoder itself cannot nest 100,000 deep
        n = rng.choice([2, 31, 40, 5000, 100_000])
        inner = json.dumps(_get(d, path))
        d = _set(d, path, "@NEST@")
    elif kind == "size":
        d = _set(d, path, rng.choice(["y" * 2_000_000, [[0.5, 0.5]] * 50_000, list(range(100_000))]))
    text = json.dumps(d)
    if kind == "nest":
        text = text.replace('"@NEST@"', "[" * n + inner + "]" * n)
    if kind == "token":
        text = text.replace("0.", "NaN", 1) if rng.random() < 0.5 else text.replace("1", "Infinity", 1)
    data = text.encode("utf-8")
    if kind == "encoding":
        data = rng.choice([text.encode("utf-16"), text.encode("utf-32"), b"\xff\xfe" + data,
                           data.replace(b'"', b"\xe9", 1), b"\x00" * 100, b"", b"\xef\xbb\xbf" + data])
    if kind == "truncate":
        data = data[: rng.randrange(0, max(1, len(data)))]
    return data


def _run(capsys, *args) -> tuple[int, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _check(code: int, err: str, what: str) -> None:
    assert code in DOCUMENTED, (what, code, err)
    assert "Traceback" not in err and "internal error" not in err, (what, err)
    assert len([ln for ln in err.splitlines() if ln.startswith("mirrorppr:")]) <= 1, (what, err)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return write_image(Photo(read_image(samples.astronaut()).pixels),
                       tmp_path_factory.mktemp("fuzz") / "astro.png")


def test_fuzzed_presets(tmp_path, capsys, operation, photo):
    rng = random.Random(13)
    doc = operation.to_dict()
    valid = []
    for i in range(300):
        p = tmp_path / f"p{i}.json"
        p.write_bytes(_mutate(doc, rng))
        code, err = _run(capsys, "show", p)
        _check(code, err, f"show variant {i}")
        if code == 0:
            valid.append(p)
    assert 20 < len(valid) < 280          # the mutations both pass and fail validation
    for p in valid[::max(1, len(valid) // 10)]:
        code, err = _run(capsys, "apply", p, photo, "-o", tmp_path / "out", "--overwrite")
        _check(code, err, f"apply {p.name}")


def test_fuzzed_recipes(tmp_path, capsys, photo):
    rng = random.Random(7)
    doc = {"recipe": [{"op": "eye_resize", "strength": 40}, {"op": "face_width", "strength": -30},
                      {"op": "smile", "strength": 20}]}
    ran = 0
    for i in range(150):
        p = tmp_path / f"r{i}.json"
        p.write_bytes(_mutate(doc, rng))
        code, err = _run(capsys, "show", p)
        _check(code, err, f"show recipe variant {i}")
        if code == 0 and ran < 10:
            ran += 1
            code, err = _run(capsys, "edit", photo, "-o", tmp_path / "o.png", "--recipe", p, "--overwrite")
            _check(code, err, f"edit with recipe variant {i}")
    assert ran >= 3
