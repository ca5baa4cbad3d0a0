"""The learned warp head (``warp-tiny``): the exact motion the data engine stores, the
quadruplets made from it, the head's training, and the ``learned-warp`` engine on real
photos. Training people: the vendored portraits; the wheels' two portraits are queries."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
torch.set_num_threads(1)          # test workers share the cores: more threads only contend
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}

from mirrorppr.data import SimConfig, make_tasks, run_tasks  # noqa: E402
from mirrorppr.data.shards import read_shard, shard_paths  # noqa: E402
from mirrorppr.data.simulate import decode_blend, decode_field, edit_with_field, encode_field  # noqa: E402
from mirrorppr.edit import edit_pixels  # noqa: E402
from mirrorppr.eval.metrics import edit_region, psnr  # noqa: E402
from mirrorppr.imageio import Photo, read_image, write_image  # noqa: E402
from mirrorppr.landmarks import find_face  # noqa: E402
from mirrorppr.model.frame import face_frame, to_image_field  # noqa: E402
from mirrorppr.model.sizes import WARP_SIZES  # noqa: E402
from mirrorppr.model.warp import LearnedWarp, save_weights  # noqa: E402
from mirrorppr.ops.recipe import Recipe  # noqa: E402
from mirrorppr.train import load_config  # noqa: E402
from mirrorppr.train.warp import WarpObjective, render  # noqa: E402
from mirrorppr.train.warp_data import WarpBatches, load_cache  # noqa: E402

PORTRAITS = Path(__file__).parent / "data" / "portraits"


def _blend(src: np.ndarray, motion, mask: np.ndarray) -> np.ndarray:
    warped = motion.apply(src).astype(np.float32)
    m = cv2.resize(mask, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(np.rint(warped * m + src * (1 - m)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two training people (vendored portraits), every LLW op both ways by the paper's
    procedure, and a few of this project's ops (plain warps)."""
    root = tmp_path_factory.mktemp("warp")
    people = root / "people"
    for name in ("obama", "luispedro"):
        (people / name).mkdir(parents=True)
        write_image(Photo(read_image(PORTRAITS / f"{name}.jpg").rgb8(), format="PNG"), people / name / "a.png")
    inputs = [[str(people / n / "a.png"), f"{n}/a.png"] for n in ("obama", "luispedro")]
    run_tasks(make_tasks("simulate", inputs, SimConfig(size=256, seed=0), 1), root / "llw", workers=1, progress=False)
    run_tasks(make_tasks("simulate", inputs, SimConfig(ops="pro", size=256, seed=0), 2), root / "pro", workers=1,
              progress=False)
    return root


@pytest.fixture(scope="module")
def cache(shards):
    return load_cache([shards / "llw", shards / "pro"], WARP_SIZES["warp-tiny"]["crop"])


def test_simulated_samples_store_the_exact_motion(astronaut, astronaut_face):
    det = lambda px: find_face(px).points  # noqa: E731
    # The paper's procedure: the same pixels as before, plus its motion and blend mask.
    rec = Recipe.of(("eye_resize", 100), ("mouth_resize", -60))
    tgt, field, blend = edit_with_field(astronaut, rec, astronaut_face.points, True, det)
    assert np.array_equal(tgt, edit_pixels(astronaut, rec, mode="exact", face=astronaut_face))
    stored = encode_field(field, blend)
    json.dumps(stored)                                       # a record value: plain JSON
    motion, mask = decode_blend(stored)
    m = edit_region(tgt, astronaut)
    noop, warp, blended = (psnr(tgt, x, m) for x in (astronaut, decode_field(stored).apply(astronaut),
                                                      _blend(astronaut, motion, mask)))
    # Its pixels are a blend through the mask: warp and blend reproduce them, a warp
    # alone only partly.
    assert blended - noop > 8 and blended > warp + 3, (noop, warp, blended)
    # A plain warp (this project's ops): the field alone is exactly what moved the pixels.
    rec = Recipe.of(("face_width", -60), ("eye_resize", 40))
    tgt, field, blend = edit_with_field(astronaut, rec, astronaut_face.points, False, det)
    assert blend is None and np.array_equal(tgt, edit_pixels(astronaut, rec, face=astronaut_face))
    assert psnr(tgt, decode_field(encode_field(field)).apply(astronaut), edit_region(tgt, astronaut)) > 45


def test_shards_carry_the_field_and_older_samples_stay_readable(shards, tmp_path):
    from mirrorppr.data.loader import QuadrupletDataset
    from mirrorppr.data.shards import Sample, write_shard

    s = next(read_shard(shard_paths(shards / "llw")[0]))
    assert s.record["procedure"] == "exact" and decode_blend(s.record["field"]) is not None
    assert decode_field(s.record["field"]).size == (s.images["source"].shape[1], s.images["source"].shape[0])
    # A sample written before the field existed: the loader reads it, the warp head skips it.
    old = tmp_path / "old"
    old.mkdir()
    rec = {k: v for k, v in s.record.items() if k not in ("field", "procedure")}
    entry = write_shard(old / "shard-00000.tar", [Sample(s.key, s.images, rec)])
    from mirrorppr.data.shards import Manifest
    man = Manifest([])
    man.add(entry)
    man.save(old)
    assert next(iter(QuadrupletDataset(old, size=64)))["query"].shape[0] == 3
    assert load_cache([old], 64) == []


def test_quadruplets_are_aligned_with_their_motion(cache):
    """Query and truth cut through A, the face frame and jitter, with the stored motion
    carried the same way: rendering the query by the truth's motion gives the truth."""
    wb = WarpBatches(cache, {"crop": 64, "out_stride": 2, "batch_size": 1, "cross": 0.0}, seed=0)
    gains = {True: [], False: []}
    for i in range(0, len(cache), max(1, len(cache) // 24)):
        for j in (i, (wb.partners[i] or [i])[0]):          # the sample's own query, another photo's
            q = wb.quadruplet(i, j)
            edit = (q["truth_rgb"] - q["query_rgb"]).abs().amax(0) > 12 / 127.5
            if edit.sum() < 4:
                continue
            p = render(q["query_rgb"][None], q["d"][None], q["mask"][None])[0]
            err = lambda x: float(((x - q["truth_rgb"]) ** 2).sum(0)[edit].mean())  # noqa: E731
            gains[cache[j].exact].append(10 * np.log10(err(q["query_rgb"]) / max(err(p), 1e-12)))
    assert len(gains[True]) >= 5 and len(gains[False]) >= 5
    assert np.median(gains[False]) > 10 and np.median(gains[True]) > 4, gains


def test_frame_carries_crop_motion_back_to_the_photo(astronaut_face):
    # Upright in its frame, even mirrored (a flip carries the landmark labels across).
    for pts in (astronaut_face.points, astronaut_face.points * [-1, 1] + [511, 0]):
        p = face_frame(pts, 64).points(pts)
        assert p[[468, 473], 1].max() < p[[13, 14], 1].min() < p[152, 1]        # eyes, mouth, chin
    fr = face_frame(astronaut_face.points, 64)
    d = np.zeros((32, 32, 2), np.float32)
    d[..., 0] = 1.0                                         # one crop pixel to the right (backward)
    di, mi = to_image_field(d, np.ones((32, 32), np.float32), fr, (512, 512), 512)
    face = tuple(int(v) for v in astronaut_face.points[1])  # nose tip: inside the crop
    expect = np.linalg.inv(fr.matrix[:, :2]) @ np.array([1.0, 0.0])
    assert np.allclose(di[face[1], face[0]], expect, atol=1e-4) and mi[face[1], face[0]] == 1
    assert not di[0, 0].any() and mi[0, 0] == 0              # the photo's corner is outside


def test_the_warp_head_learns_a_fixed_batch(cache):
    cfg = load_config("warp-tiny")
    torch.manual_seed(0)
    model = LearnedWarp(**cfg["model"])
    batch = next(iter(WarpBatches(cache, {**cfg["data"], "crop": 64, "out_stride": 2, "batch_size": 4}, seed=1)))
    obj = WarpObjective(model, cfg["loss"])
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        loss = obj(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses[::8]
    assert obj.last["field"] < obj.terms(batch)["field"].item() * 1.5   # terms are reported


@pytest.fixture(scope="module")
def moving_weights(tmp_path_factory):
    """A warp-tiny head whose output moves pixels (a random, non-zero last layer)."""
    torch.manual_seed(0)
    m = LearnedWarp(**WARP_SIZES["warp-tiny"])
    with torch.no_grad():
        m.head.weight.normal_(0, 0.05)
        m.head.bias.copy_(torch.tensor([1.5, -1.0, 2.0]))
    return save_weights(m, tmp_path_factory.mktemp("ww") / "weights")


def test_engine_moves_only_the_face_and_keeps_depth_and_alpha(moving_weights, astronaut, astronaut_face, hopper):
    from mirrorppr.analyze.operation import Operation
    from mirrorppr.model.warp_engine import load_warp, make_engine
    from mirrorppr.transfer.engines import TransferOptions

    eng = make_engine(load_warp(moving_weights))
    op = Operation.from_pair(hopper, hopper)
    px16 = np.dstack([astronaut.astype(np.uint16) * 257, np.full(astronaut.shape[:2], 60000, np.uint16)])
    out = eng(op, px16, astronaut_face, TransferOptions(), None)
    assert out.dtype == np.uint16 and out.shape == px16.shape
    changed = (out != px16).any(axis=2)
    assert changed.sum() > 500
    x0, y0, x1, y1 = astronaut_face.box
    s = x1 - x0                                     # nothing moves far from the face
    far = np.ones_like(changed)
    far[max(0, int(y0 - s)):int(y1 + s), max(0, int(x0 - s)):int(x1 + s)] = False
    assert not changed[far].any()
    assert np.array_equal(eng(op, px16, astronaut_face, TransferOptions(strength=0.0), None), px16)
    assert eng.last_seconds > 0
    with pytest.raises(Exception, match="exemplar pair"):
        eng(dataclasses.replace(op, exemplar=None), px16, astronaut_face, TransferOptions(), None)


def test_train_cli_then_retouch_and_eval_with_the_learned_warp(shards, tmp_path, astronaut, hopper):
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "mirrorppr", "train", "--config", "warp-tiny", "--data",
                        str(shards / "llw"), str(shards / "pro"), "--out", str(run), "--steps", "6"],
                       capture_output=True, text=True, env=ONE_THREAD, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r_["stage"] for r_ in rows} >= {"warp", "warp/val"}
    assert all(0 <= x["data_wait_share"] <= 1 for x in rows if "data_wait_share" in x)
    meta = json.loads((run / "weights" / "mirrorppr.json").read_text())
    assert meta["format"] == "mirrorppr.learned-warp/1" and meta["trained_steps"] == 6
    src, tgt, q, out = (tmp_path / f"{n}.png" for n in ("s", "t", "q", "o"))
    write_image(Photo(hopper), src)
    write_image(Photo(edit_pixels(hopper, Recipe.of(("eye_resize", 100)), mode="exact")), tgt)
    write_image(Photo(astronaut[:500, :400]), q)
    r = subprocess.run([sys.executable, "-m", "mirrorppr", "retouch", "--engine", "learned-warp", "--weights",
                        str(run / "weights"), "--source", str(src), "--target", str(tgt), "--query", str(q),
                        "-o", str(out)], capture_output=True, text=True, env=ONE_THREAD, timeout=300)
    assert r.returncode == 0, r.stderr
    assert read_image(out).pixels.shape == (500, 400, 3)
    case = tmp_path / "cases" / "c1"
    case.mkdir(parents=True)
    for name, img in (("source", hopper), ("target", read_image(tgt).rgb8()), ("query", astronaut),
                      ("ground-truth", edit_pixels(astronaut, Recipe.of(("eye_resize", 100)), mode="exact"))):
        write_image(Photo(img), case / f"{name}.png")
    ev = subprocess.run([sys.executable, "-m", "mirrorppr", "eval", str(tmp_path / "cases"), "--engine",
                         "learned-warp", "--engine", "recipe", "--weights", str(run / "weights"), "--no-facesim",
                         "--out", str(tmp_path / "ev")], capture_output=True, text=True, env=ONE_THREAD, timeout=300)
    assert ev.returncode == 0, ev.stderr
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    lw = res["cases"]["learned-warp"]["c1"]
    assert lw["psnr"] > 20 and lw["seconds"] < 5 and res["cases"]["recipe"]["c1"]["gain_edit"] > 3
    bad = subprocess.run([sys.executable, "-m", "mirrorppr", "retouch", "--engine", "learned-warp", "--weights",
                          str(tmp_path), "--source", str(src), "--target", str(tgt), "--query", str(q),
                          "-o", str(tmp_path / "x.png")], capture_output=True, text=True, env=ONE_THREAD, timeout=120)
    assert bad.returncode == 6 and "learned-warp" in bad.stderr and "Traceback" not in bad.stderr
