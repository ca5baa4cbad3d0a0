import json
import math

import numpy as np

from mirrorppr.eval.metrics import edit_region, flow_epe, psnr, score
from mirrorppr.eval.runner import run_eval
from mirrorppr.eval.simface import build_simface, make_portraits
from mirrorppr.imageio import Photo, write_image


def test_metrics_on_hand_made_images():
    a = np.zeros((64, 64, 3), np.uint8)
    assert psnr(a, a) == 99.0
    b = a.copy()
    b[:] = 10                                      # MSE 100 -> 10 log10(255^2/100)
    assert math.isclose(psnr(a, b), 10 * math.log10(255 ** 2 / 100), rel_tol=1e-9)
    # Edit region: where truth and query differ by > 12 levels, dilated.
    q = np.full((100, 100, 3), 100, np.uint8)
    gt = q.copy()
    gt[40:50, 40:50] = 200
    m = edit_region(gt, q)
    assert m[45, 45] and not m[0, 0] and m.sum() > 100
    r = score(gt, q, gt, facesim=False)
    assert r["psnr_edit"] == 99.0 and r["gain_edit"] > 20 and r["psnr_keep"] == 99.0
    noop = score(gt, q, q, facesim=False)
    assert noop["gain_edit"] == 0.0
    # gain_face: the same gain, counted on and around the face only. A body edit far from
    # the face that the output misses dilutes gain_edit but not gain_face.
    gt[80:95, 5:95] = 30                            # "body" edit, not carried
    half = gt.copy()
    half[80:95, 5:95] = q[80:95, 5:95]
    r = score(gt, q, half, facesim=False, face_box=(38, 38, 52, 52))
    assert r["gain_face"] == 99.0 - psnr(gt, q, edit_region(gt, q) & (np.arange(100)[:, None] < 60))
    assert r["gain_face"] > r["gain_edit"] > 0
    assert score(gt, q, half, facesim=False)["gain_face"] is None


def test_flow_epe_measures_motion(astronaut):
    assert flow_epe(astronaut, astronaut, astronaut) == 0.0
    shifted = np.roll(astronaut, 3, axis=1)
    e = flow_epe(shifted, astronaut, astronaut)     # output did not move, truth moved 3 px
    assert 2.0 < e < 4.0


def test_simface_and_eval_end_to_end(tmp_path):
    portraits = tmp_path / "portraits"
    made = make_portraits(portraits)
    assert len(made) >= 16
    cases = build_simface(portraits, tmp_path / "cases", n=2, seed=3, progress=False)
    assert len(cases) == 2
    info = json.loads((cases[0] / "case.json").read_text())
    assert info["recipe"] and info["subset"] == "simulated"
    # Cross-identity: exemplar and query come from different people.
    assert info["exemplar"].split("/")[-2] != info["query"].split("/")[-2]
    # A third-party output is scored alongside.
    write_image(Photo(np.zeros((8, 8, 3), np.uint8) + 1), tmp_path / "tiny.png")
    res = run_eval(tmp_path / "cases", ["auto"], tmp_path / "ev", facesim=False, progress=False)
    assert set(res.summary) >= {"no-op", "auto"}
    assert res.summary["no-op"]["gain_edit"] == 0.0
    assert res.summary["auto"]["gain_edit"] > 3.0
    assert res.recovery_rate() is not None
    for f in ("results.json", "results.md", "index.html"):
        assert (tmp_path / "ev" / f).stat().st_size > 100
    assert "auto" in (tmp_path / "ev" / "results.md").read_text()
