import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from mirrorppr.data import Manifest, SimConfig, draw, make_tasks, read_shard, run_tasks
from mirrorppr.data.check import verify
from mirrorppr.data.loader import QuadrupletDataset, weights_at
from mirrorppr.edit import edit_pixels
from mirrorppr.eval.simface import make_portraits
from mirrorppr.imageio import Photo, write_image
from mirrorppr.ops.recipe import Recipe


@pytest.fixture(scope="module")
def portraits(tmp_path_factory):
    d = tmp_path_factory.mktemp("portraits")
    make_portraits(d)
    return d


def _small_set(root, names=("astronaut/original.png", "grace_hopper/original.png", "astronaut/mirrored.png")):
    return [[str(root / n), n] for n in names]


def _dis(a, b):
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    g = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)  # noqa: E731
    return dis.calc(g(a), g(b), None)


def test_self_augmentation_is_exactly_aligned(astronaut, astronaut_face):
    target = edit_pixels(astronaut, Recipe.of(("eye_resize", 100), ("mouth_resize", 80)), face=astronaut_face)
    for i in range(3):
        aug = draw(7, f"sample-{i}", (512, 512))
        assert aug == draw(7, f"sample-{i}", (512, 512))        # deterministic in (seed, id)
        q, g = aug.apply(astronaut), aug.apply(target)
        # The stored parameters reproduce the query and ground truth exactly.
        from mirrorppr.data.augment import Augment
        again = Augment.from_dict(json.loads(json.dumps(aug.to_dict())))
        assert np.array_equal(again.apply(astronaut), q) and np.array_equal(again.apply(target), g)
        # The motion between query and truth is the exemplar's motion carried through A.
        f_ex = _dis(astronaut, target)                            # source(x) ~ target(x + f)
        f_q = _dis(q, g)
        ys, xs = np.nonzero(np.hypot(f_ex[..., 0], f_ex[..., 1]) > 0.5)
        pts = np.stack([xs, ys], 1).astype(float)
        carried = aug.vectors(f_ex[ys, xs])
        at = aug.points(pts)
        inside = (at[:, 0] >= 0) & (at[:, 0] < aug.out_w - 1) & (at[:, 1] >= 0) & (at[:, 1] < aug.out_h - 1)
        measured = f_q[at[inside, 1].round().astype(int), at[inside, 0].round().astype(int)]
        epe = np.hypot(*(measured - carried[inside]).T).mean()
        assert inside.sum() > 200 and epe < 0.6, epe


def test_simulate_verify_inspect_and_determinism(tmp_path, portraits):
    cfg = SimConfig(size=320, seed=3, materialize=True, combos=1)
    inputs = _small_set(portraits) + [[str(tmp_path / "broken.jpg"), "broken.jpg"]]
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    a = run_tasks(make_tasks("simulate", inputs, cfg, 2), tmp_path / "a", workers=1, progress=False)
    t = a.totals()
    assert t["samples"] == 3 * (16 + 1) and t["failed"] == {"not a readable": 1}
    assert t["ops"]["eye_resize"] >= 6 and set(t["subsets"]) == {"simulated"}
    rep = verify(tmp_path / "a")
    assert rep.ok and rep.samples == t["samples"], rep.problems
    s = next(read_shard(tmp_path / "a" / "shard-00000.tar"))
    assert {"source", "target", "query", "ground_truth"} <= set(s.images)
    assert len(s.record["landmarks_source"]) == 478 and s.record["recipe"]
    # Same seed, same dataset (byte for byte).
    b = run_tasks(make_tasks("simulate", inputs, cfg, 2), tmp_path / "b", workers=1, progress=False)
    assert a.entries == b.entries
    assert (tmp_path / "a" / "shard-00001.tar").read_bytes() == (tmp_path / "b" / "shard-00001.tar").read_bytes()
    # verify notices a tampered quadruplet.
    from mirrorppr.data.shards import write_shard
    samples = list(read_shard(tmp_path / "b" / "shard-00000.tar"))
    samples[0].images["query"] = np.roll(samples[0].images["query"], 1, axis=1)
    write_shard(tmp_path / "b" / "shard-00000.tar", samples)
    bad = verify(tmp_path / "b")
    assert not bad.ok and any("query is not A(source)" in p for p in bad.problems)


def test_professional_pairs_are_validated(tmp_path, astronaut, astronaut_face, hopper):
    d = tmp_path / "pairs"
    d.mkdir()
    good = edit_pixels(astronaut, Recipe.of(("face_width", -60), ("eye_width", 40)), face=astronaut_face)
    write_image(Photo(astronaut), d / "good.png")
    write_image(Photo(good), d / "good_retouched.png")
    write_image(Photo(astronaut), d / "swap.png")
    write_image(Photo(cv2.resize(hopper, (512, 512))), d / "swap_retouched.png")
    write_image(Photo(astronaut), d / "dark.png")
    write_image(Photo((astronaut * 0.5).astype(np.uint8)), d / "dark_retouched.png")
    write_image(Photo(astronaut), d / "crop.png")
    write_image(Photo(astronaut[:, :300]), d / "crop_retouched.png")
    (d / "labels.json").write_text(json.dumps({"good": [{"op": "face_width", "strength": -60}]}))
    r = subprocess.run([sys.executable, "-m", "mirrorppr", "data", "professional", str(d), "--out",
                        str(tmp_path / "pro"), "--size", "512", "--workers", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    t = Manifest.load(tmp_path / "pro").totals()
    assert t["samples"] == 1 and t["subsets"] == {"professional": 1}
    assert t["failed"] == {"different person": 1, "global change": 1, "size mismatch": 1}
    s = next(read_shard(tmp_path / "pro" / "shard-00000.tar"))
    assert s.record["recipe"] == [{"op": "face_width", "strength": -60.0}]


def test_interrupted_run_resumes_to_the_same_manifest(tmp_path, portraits):
    inputs = portraits / "astronaut"
    base = [sys.executable, "-m", "mirrorppr", "data", "simulate", str(inputs), "--size", "256",
            "--per-shard", "1", "--workers", "1", "--seed", "5"]
    ref = subprocess.run(base + ["--out", str(tmp_path / "ref")], capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    total = len(Manifest.load(tmp_path / "ref").entries)
    assert total == 9
    out = tmp_path / "cut"
    proc = subprocess.Popen(base + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(Manifest.load(out).entries) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)                 # a real kill, mid-run
    proc.wait()
    partial = len(Manifest.load(out).entries)
    assert 2 <= partial < total
    assert not [p for p in out.iterdir() if p.suffix == ".tar" and p.name not in Manifest.load(out).done()]
    again = subprocess.run(base + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert Manifest.load(out).entries == Manifest.load(tmp_path / "ref").entries
    assert not list(out.glob(".*.part"))


def test_loader_curriculum_workers_and_ranks(tmp_path, portraits):
    torch = pytest.importorskip("torch")
    sim = tmp_path / "sim"
    run_tasks(make_tasks("simulate", _small_set(portraits), SimConfig(size=256, seed=1), 1), sim,
              workers=1, progress=False)
    pro = tmp_path / "pro"
    # A "professional" subset made from the same photos, marked as such.
    from mirrorppr.data.shards import write_shard
    samples = list(read_shard(sim / "shard-00000.tar"))[:6]
    for s in samples:
        s.record["subset"] = "professional"
        s.key = s.key + "-pro"
    write_shard(pro / "shard-00000.tar", samples)
    m = Manifest()
    m.add({"shard": "shard-00000.tar", "samples": 6, "ops": {}, "subsets": {"professional": 6}})
    m.save(pro)
    schedule = [[0, {"simulated": 1.0, "professional": 0.0}], [10, {"simulated": 1.0, "professional": 0.0}],
                [30, {"simulated": 0.0, "professional": 1.0}]]
    assert weights_at(schedule, 20) == {"simulated": 0.5, "professional": 0.5}
    ds = QuadrupletDataset({"sim": sim, "pro": pro}, schedule=schedule, seed=0)
    items = list(ds)
    keys = [it["key"] for it in items]
    assert len(keys) == len(set(keys)) == 3 * 16 + 6          # every sample once
    subsets = [it["subset"] for it in items]
    assert subsets[:10] == ["simulated"] * 10                 # curriculum starts simulated
    assert "professional" in subsets[:40]                     # and moves on
    x = items[0]
    assert x["query"].dtype == torch.float32 and x["query"].min() >= -1 and x["query"].max() <= 1
    # Data-loader workers and distributed ranks split the shards without overlap.
    loader = torch.utils.data.DataLoader(QuadrupletDataset(sim, seed=0), batch_size=None, num_workers=2)
    wkeys = [b["key"] for b in loader]
    assert len(wkeys) == len(set(wkeys)) == 48
    r0 = {it["key"] for it in QuadrupletDataset(sim, rank=0, world_size=2)}
    r1 = {it["key"] for it in QuadrupletDataset(sim, rank=1, world_size=2)}
    assert r0 and r1 and not (r0 & r1) and len(r0 | r1) == 48


def test_ray_local_cluster_makes_the_same_shards(tmp_path, portraits):
    pytest.importorskip("ray")
    cfg = SimConfig(size=256, seed=2)
    tasks = make_tasks("simulate", _small_set(portraits, ("astronaut/original.png", "grace_hopper/original.png")), cfg, 1)
    local = run_tasks(tasks, tmp_path / "local", workers=1, progress=False)
    ray_run = run_tasks(tasks, tmp_path / "ray", workers=2, use_ray=True, progress=False)
    assert local.entries == ray_run.entries and len(local.entries) == 2


def test_fsspec_input_and_samples_per_shard(tmp_path, portraits, capsys):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for name in ("astronaut/original.png", "grace_hopper/original.png"):
        fs.pipe(f"/faces/{name}", (portraits / name).read_bytes())
    from mirrorppr.cli import main
    code = main(["data", "simulate", "memory://faces", "--out", str(tmp_path / "s"), "--size", "256",
                 "--samples-per-shard", "16", "--workers", "1"])
    assert code == 0
    man = Manifest.load(tmp_path / "s")
    assert [e["samples"] for e in man.entries] == [16, 16]
    keys = {s.record["image_id"] for p in sorted((tmp_path / "s").glob("*.tar")) for s in read_shard(p)}
    assert keys == {"astronaut-original", "grace_hopper-original"}
