"""The body's parts, found on real photos, and a body edit measured on one person and
placed on another: an independent liquify-style push on the astronaut's shoulder (no op
of this project made it) must land on Obama's corresponding shoulder, pointing the same
way relative to his body, about as strong relative to his size."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrorppr.analyze.flow import measure_photo
from mirrorppr.analyze.normalize import face_region_mask
from mirrorppr.body.detect import L_SHOULDER, R_SHOULDER, find_body
from mirrorppr.body.motion import BodyMotion, BodyStroke, carry, measure_body
from mirrorppr.body.parts import Skeleton
from mirrorppr.eval.liquify import Stroke, render
from mirrorppr.imageio import read_image
from mirrorppr.landmarks import find_face

PORTRAITS = Path(__file__).parent / "data" / "portraits"


def _person(rgb):
    face = find_face(rgb)
    return face, find_body(rgb, face.box)


@pytest.fixture(scope="module")
def obama():
    rgb = read_image(PORTRAITS / "obama.jpg").rgb8()
    return (rgb, *_person(rgb))


def _shoulder_push(rgb, body, amount):
    """A push at the person's left shoulder, toward the neck, of ``amount`` body units."""
    sh = body.keypoints[L_SHOULDER]
    inward = (body.keypoints[R_SHOULDER] + sh) / 2 - sh
    inward /= np.linalg.norm(inward)
    centre = sh - inward * 0.15 * body.unit + np.array([0.0, -0.12 * body.unit])
    return render(rgb, [Stroke("push", tuple(centre), 0.35 * body.unit, tuple(inward * amount * body.unit))])


def _measure(before, after, face, body) -> BodyMotion:
    m = measure_photo(before, after)
    changed = cv2.dilate((m.changed > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    on_face = face_region_mask((face.points - m.origin) * m.scale, m.changed.shape)
    return measure_body(Skeleton.of(body), m.d, m.trust, changed & ~on_face & (m.outside == 0),
                        m.origin, m.scale)


@pytest.mark.parametrize("name", ["obama", "biden"])
def test_shoulders_are_found_on_real_portraits(name):
    rgb = read_image(PORTRAITS / f"{name}.jpg").rgb8()
    face, body = _person(rgb)
    assert body is not None and body.visible(L_SHOULDER, R_SHOULDER)
    # Shoulders below the face and wider than it.
    fx0, fy0, fx1, fy1 = face.box
    assert min(body.keypoints[[L_SHOULDER, R_SHOULDER], 1]) > fy1 - 0.2 * (fy1 - fy0)
    assert body.unit > 1.2 * (fx1 - fx0)
    assert "shoulders" in Skeleton.of(body).visible_parts()


def test_a_shoulder_push_lands_on_another_persons_shoulder(astronaut, obama):
    face_a, body_a = _person(astronaut)
    after = _shoulder_push(astronaut, body_a, 0.05)
    motion = _measure(astronaut, after, face_a, body_a)
    energy = motion.energy_by_part()
    assert max(energy, key=energy.get) == "shoulders", energy
    again = BodyMotion.from_dict(motion.to_dict())
    assert again.to_dict() == motion.to_dict() and 1 <= len(again.strokes) <= 6, again.strokes

    q, face_q, body_q = obama
    W, H = q.shape[1], q.shape[0]
    f = carry(again, Skeleton.of(body_q), (W, H), 1024)
    mag = f.magnitude()
    iy, ix = np.unravel_index(mag.argmax(), mag.shape)
    peak = (np.array([ix, iy]) + 0.5) * f.unit
    shoulder = body_q.keypoints[L_SHOULDER]
    assert np.linalg.norm(peak - shoulder) < 0.5 * body_q.unit, (peak, shoulder)
    # Backward field: content moves by minus it, toward his neck, ~0.05 of his size.
    inward = (body_q.keypoints[R_SHOULDER] + shoulder) / 2 - shoulder
    inward /= np.linalg.norm(inward)
    moved = -f.d[iy, ix] * f.unit
    assert moved @ inward > 0.9 * np.linalg.norm(moved)
    assert 0.025 < np.linalg.norm(moved) / body_q.unit < 0.1
    # The other shoulder, where nothing was edited, stays still.
    other = body_q.keypoints[R_SHOULDER] / f.unit
    r = int(0.15 * body_q.unit / f.unit[0])
    oy, ox = int(other[1]), int(other[0])
    assert mag[max(0, oy - r):oy + r, max(0, ox - r):ox + r].max() < 0.1 * mag.max()


@pytest.mark.parametrize("amount, said", [(0.05, "shoulders narrowed"), (-0.05, "shoulders broadened")])
def test_strokes_are_read_back_as_a_retoucher_names_them(obama, amount, said):
    """A push at the shoulder's end towards the neck reads "shoulders narrowed", the
    same push outward "shoulders broadened": the summary says what the strokes do."""
    from mirrorppr.body.motion import describe

    rgb, face, body = obama
    motion = _measure(rgb, _shoulder_push(rgb, body, amount), face, body)
    reads = describe(motion, Skeleton.of(body))
    assert reads and reads[0] == said, reads


@pytest.mark.parametrize("template, amount, said", [
    ("upper arm", 0.03, "upper arm thickened on both sides"), ("upper arm", -0.03, "upper arm slimmed on both sides"),
    ("waist", 0.03, "waist widened on both sides"), ("waist", -0.03, "waist slimmed on both sides")])
def test_arm_and_waist_strokes_are_read_back_by_name(template, amount, said):
    """The body liquify benchmark's own strokes (not this project's ops) on Biden, who
    shows arms and waist: read back as what they do, on both sides."""
    from mirrorppr.body.motion import describe

    rgb = read_image(PORTRAITS / "biden.jpg").rgb8()
    face, body = _person(rgb)
    after = render(rgb, strokes_for(BodyDraw(template, 0.2, amount, 0.6 if template == "upper arm" else 0.7, 1.0),
                                    body))
    assert describe(_measure(rgb, after, face, body), Skeleton.of(body)) == (said,)


def test_a_stroke_is_carried_only_onto_a_part_posed_alike(astronaut, obama):
    from dataclasses import replace

    from mirrorppr.body.motion import posed_otherwise

    face_a, body_a = _person(astronaut)
    motion = _measure(astronaut, _shoulder_push(astronaut, body_a, 0.05), face_a, body_a)
    q, face_q, body_q = obama
    sk = Skeleton.of(body_q)
    size = (q.shape[1], q.shape[0])
    assert carry(motion, sk, size, 512).magnitude().max() > 0.5
    # The same strokes read off a part turned 90 degrees away: not carried.
    turned = BodyMotion(tuple(BodyStroke(tuple(replace(a, pose=a.pose + 90.0) for a in st.anchors))
                              for st in motion.strokes), motion.seen)
    assert carry(turned, sk, size, 512).magnitude().max() == 0.0
    # ...and the transfer says which parts were left out, not only the field is empty.
    assert posed_otherwise(motion, sk) == ()
    assert set(posed_otherwise(turned, sk)) & {"shoulders", "left upper arm", "right upper arm"}


def test_a_stroke_at_a_joint_is_shared_by_the_parts_that_meet(obama):
    from mirrorppr.body.motion import _anchor, _place

    rgb, face, body = obama
    sk = Skeleton.of(body)
    k = body.keypoints
    away = (k[L_SHOULDER] - k[R_SHOULDER]) / np.linalg.norm(k[L_SHOULDER] - k[R_SHOULDER])
    push = np.array([0.0, 0.03 * body.unit])
    # Just past the shoulder's end: the shoulder line and what else meets there.
    joint = _anchor(sk, k[L_SHOULDER] + 0.06 * body.unit * away, 0.1 * body.unit, push)
    names = [a.part for a in joint.anchors]
    assert "shoulders" in names and len(names) >= 2, names
    assert abs(sum(a.weight for a in joint.anchors) - 1.0) < 1e-9
    # Halfway along the shoulder line: that line alone.
    mid = _anchor(sk, 0.25 * k[R_SHOULDER] + 0.75 * k[L_SHOULDER], 0.1 * body.unit, push)
    assert [a.part for a in mid.anchors] == ["shoulders"], mid.anchors
    # On the body it was read on, each goes back where it was, as large, pushing the same way.
    places = (k[L_SHOULDER] + 0.06 * body.unit * away, 0.25 * k[R_SHOULDER] + 0.75 * k[L_SHOULDER])
    for st, at in zip((joint, mid), places):
        centre, sigma, back = _place(st, sk)
        assert np.linalg.norm(centre - at) < 0.01 * body.unit, (centre, at)
        assert abs(sigma / (0.1 * body.unit) - 1) < 0.01 and np.linalg.norm(back - push) < 0.01 * np.linalg.norm(push)


def test_an_unchanged_pair_has_no_body_motion(astronaut):
    face, body = _person(astronaut)
    motion = _measure(astronaut, astronaut.copy(), face, body)
    assert motion.is_zero()


# ------------------------------------------------------------------ wired into analysis
from mirrorppr.analyze import analyze  # noqa: E402
from mirrorppr.analyze.operation import Operation  # noqa: E402
from mirrorppr.body.edit import edit_field, ops_field  # noqa: E402
from mirrorppr.body.protect import bends, protect, straight_edges  # noqa: E402
from mirrorppr.errors import ConfigError  # noqa: E402
from mirrorppr.eval.liquify_body import BodyDraw, strokes_for  # noqa: E402
from mirrorppr.eval.metrics import psnr  # noqa: E402
from mirrorppr.ops import get_op, ops_in  # noqa: E402
from mirrorppr.ops.recipe import Recipe  # noqa: E402
from mirrorppr.samples import grace_hopper  # noqa: E402
from mirrorppr.transfer import Retoucher  # noqa: E402


@pytest.mark.parametrize("which", ["astronaut", "grace_hopper"])
def test_the_bundled_samples_show_shoulders(which):
    from mirrorppr import samples

    rgb = read_image(getattr(samples, which)()).rgb8()
    face, body = _person(rgb)
    assert body is not None and body.visible(L_SHOULDER, R_SHOULDER)
    sk = Skeleton.of(body)
    assert "shoulders" in sk.visible_parts()
    # A head-and-shoulders photo shows no legs: those parts are not claimed.
    assert "left shin" not in sk.visible_parts() and "right shin" not in sk.visible_parts()


def test_body_ops_share_the_registry_and_refuse_face_landmarks():
    names = {op.name for op in ops_in("body")}
    assert {"shoulder_width", "shoulder_line", "waist", "hips", "arm_thickness", "neck_width",
            "neck_length", "leg_length", "leg_thickness", "head_size"} <= names
    assert get_op("waist").labels == ("Widen waist", "Slim waist")
    with pytest.raises(ConfigError):
        get_op("waist").geometry(np.zeros((478, 2)), 50)


def test_broaden_shoulders_pushes_the_outline_out_and_keeps_background_and_face(obama):
    rgb, face, body = obama
    sk = Skeleton.of(body)
    size = (rgb.shape[1], rgb.shape[0])
    f = ops_field(Recipe.of(("shoulder_width", 80)), sk, size)
    k = body.keypoints
    for j, other in ((L_SHOULDER, R_SHOULDER), (R_SHOULDER, L_SHOULDER)):
        away = (k[j] - k[other]) / np.linalg.norm(k[j] - k[other])
        d = f.sample(k[j][None] + 0.1 * sk.unit * away[None])[0]
        # Backward field: the output samples from nearer the neck, so the shoulder grows out.
        assert float(d @ away) < -0.5, d
    # Far past the silhouette, nothing moves (the band), and the face is left alone.
    ys, xs = np.mgrid[0:rgb.shape[0]:8, 0:rgb.shape[1]:8]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    far = sk.outside_distance(pts) > 0.4 * sk.unit
    assert np.abs(f.sample(pts[far])).max() < 0.05
    keep = edit_field(None, sk, size, face.points, overrides={"shoulder_width": 80})
    x0, y0, x1, y1 = face.box
    inner = np.array([[(x0 + x1) / 2, (y0 + y1) / 2], [x0 + 0.3 * (x1 - x0), y0 + 0.5 * (y1 - y0)]])
    assert np.abs(keep.sample(inner)).max() < 0.05


@pytest.fixture(scope="module")
def shoulder_case(astronaut, obama):
    """Narrowed shoulders made by independent liquify strokes (not the body ops) on the
    astronaut, and the same draw on Obama: the exemplar and the query's ground truth."""
    a_rgb = astronaut
    _, a_body = _person(a_rgb)
    b_rgb, b_face, b_body = obama
    draw = BodyDraw("shoulder width", 0.4, -0.05, 0.5, 1.0)
    before, after = a_rgb, render(a_rgb, strokes_for(draw, a_body))
    truth = render(b_rgb, strokes_for(draw, b_body))
    return before, after, b_rgb, truth, b_face


@pytest.fixture(scope="module")
def shoulder_op(shoulder_case):
    before, after, *_ = shoulder_case
    return analyze(before, after)


def test_a_liquify_shoulder_edit_is_read_named_and_carried_to_another_person(shoulder_case, shoulder_op,
                                                                             tmp_path):
    before, after, query, truth, qface = shoulder_case
    op = shoulder_op
    assert op.body is not None and op.body.choice != "none", op.notes
    lead = max(op.body.recipe.active(), key=lambda s: abs(s.strength))
    assert lead.op == "shoulder_width" and lead.strength < 0, op.body.recipe.summary()
    assert any("on the body" in n for n in op.notes)
    # The one-line description leads with what is carried: a body-only edit is not
    # announced as "no structural retouching found".
    said = op.describe()
    assert "body: " in said and "shoulders" in said.lower(), said
    assert op.choice != "none" or said.startswith("no face retouching found"), said
    # The preset keeps it; the reloaded preset transfers the same way.
    again = Operation.load(op.save(tmp_path / "look.json"))
    assert again.body.recipe.to_list() == op.body.recipe.to_list() and again.body.choice == op.body.choice
    res = Retoucher(again).run(query)
    out = res.photo.rgb8()
    edit = np.abs(truth.astype(int) - query.astype(int)).max(axis=2) > 2
    assert psnr(truth, out, edit) > psnr(truth, query, edit) + 1.0
    # Outside what the truth changed, the photo stays close to what it was.
    assert psnr(truth, out, ~edit) > 40.0


def test_a_body_edit_on_a_face_only_query_is_skipped_with_a_note(shoulder_op):
    op = shoulder_op
    face_only = read_image(PORTRAITS / "luispedro.jpg").rgb8()
    h = face_only.shape[0]
    crop = face_only[: int(0.55 * h)]
    r = Retoucher(op).run(crop)
    # Shoulders cut off: said, and nothing below the face is moved.
    assert r.notes and all("no body" in n or "skipped" in n or "not carried" in n for n in r.notes), r.notes
    x0, y0, x1, y1 = (int(v) for v in r.face.box)
    below = np.zeros(crop.shape[:2], bool)
    below[min(crop.shape[0], y1 + (y1 - y0) // 2):] = True
    assert np.array_equal(r.photo.rgb8()[below], crop[below])


def test_preset_schema_refuses_a_malformed_body(shoulder_op):
    d = shoulder_op.to_dict()
    bad = dict(d, body=dict(d["body"], recipe=[{"op": "eye_resize", "strength": 10}]))
    with pytest.raises(ConfigError, match="body"):
        Operation.from_dict(bad)
    stroke = {"part": "left side", "side": 0, "s": 0.5, "q": 0.0, "size": 0.2, "along": 0.0, "across": 0.05}
    good = dict(d, body=dict(d["body"], motion={"seen": ["left side"], "strokes": [stroke]}))
    assert Operation.from_dict(good).body.motion.strokes[0].anchors[0].part == "left side"
    # A stroke anchored on two parts round-trips; one with no anchors is refused.
    two = {"anchors": [dict(stroke, weight=0.7), dict(stroke, part="left upper arm", weight=0.3)]}
    ok = Operation.from_dict(dict(d, body=dict(d["body"], motion={"seen": ["left side"], "strokes": [two]})))
    assert [a.weight for a in ok.body.motion.strokes[0].anchors] == [0.7, 0.3]
    assert ok.body.motion.to_dict()["strokes"][0]["anchors"][1]["part"] == "left upper arm"
    # The torso as a whole holds strokes too (u across as q, v down as s).
    torso = {"anchors": [dict(stroke, part="torso", s=0.6, q=0.3, weight=1.0)]}
    held = Operation.from_dict(dict(d, body=dict(d["body"], motion={"seen": ["left side"], "strokes": [torso]})))
    assert held.body.motion.strokes[0].anchors[0].part == "torso"
    for bad_stroke in ({"anchors": []}, {"anchors": [dict(stroke, weight=1.5)]}, {"anchors": [dict(stroke, side=3)]}):
        with pytest.raises(ConfigError, match="body.motion"):
            Operation.from_dict(dict(d, body=dict(d["body"], motion={"strokes": [bad_stroke]})))
    for bad_stroke in (dict(stroke, part="tail"), dict(stroke, side=2), dict(stroke, across=float("nan")),
                       dict(stroke, size=-1.0), {"part": "left side"}):
        bad = dict(d, body=dict(d["body"], motion={"strokes": [bad_stroke]}))
        with pytest.raises(ConfigError, match="body.motion"):
            Operation.from_dict(bad)
    with pytest.raises(ConfigError, match="body.choice"):
        Operation.from_dict(dict(d, body=dict(d["body"], choice="everything")))
    # The strokes' reading is kept as short texts.
    said = Operation.from_dict(dict(d, body=dict(d["body"], reads=["waist slimmed on both sides"])))
    assert said.body.reads == ("waist slimmed on both sides",)
    for bad_reads in ([3], ["x" * 200], "waist"):
        with pytest.raises(ConfigError, match="body.reads"):
            Operation.from_dict(dict(d, body=dict(d["body"], reads=bad_reads)))


def test_straight_background_edges_stay_straight():
    """A photo with a door-frame-like straight edge just beside the shoulder: a strong
    shoulder edit reaches it, and the protection brings its bend under the stated limit."""
    from mirrorppr.body.protect import BEND_LIMIT

    rgb = read_image(grace_hopper()).rgb8().copy()
    face, body = _person(rgb)
    sk = Skeleton.of(body)
    k = body.keypoints
    x = int(max(k[L_SHOULDER, 0], k[R_SHOULDER, 0]) + 0.08 * sk.unit)
    if x >= rgb.shape[1] - 2:
        pytest.skip("no room beside the shoulder")
    # A white vertical line beside the shoulder, where the photo shows background.
    col = np.stack([np.full(rgb.shape[0], x + 1.0), np.arange(rgb.shape[0], dtype=float)], 1)
    off = np.nonzero(sk.outside_distance(col) > 0.05 * sk.unit)[0]
    assert len(off) > 0.25 * sk.unit
    rgb[off.min():off.max() + 1, x:x + 6] = 255
    body = find_body(rgb, face.box)
    sk = Skeleton.of(body)
    segs = straight_edges(rgb, sk)
    assert len(segs)
    size = (rgb.shape[1], rgb.shape[0])
    limit = BEND_LIMIT * max(rgb.shape[:2])
    f = ops_field(Recipe.of(("shoulder_width", 100)), sk, size)
    g, guard = protect(f, rgb, sk)
    assert guard.bend_before > limit
    assert float(bends(g, segs).max()) <= limit and guard.bend_after <= limit
    # Only near the line is the edit given up: the shoulder itself still moves.
    k = body.keypoints
    assert np.abs(g.sample(k[[L_SHOULDER, R_SHOULDER]])).max() > 0.5


def test_edit_applies_body_ops_and_refuses_parts_not_shown(obama):
    from mirrorppr.edit import edit_pixels
    from mirrorppr.errors import FaceError

    rgb, face, body = obama
    out = edit_pixels(rgb, Recipe.of(("shoulder_width", 80)), face=face)
    moved = np.abs(out.astype(int) - rgb.astype(int)).max(axis=2) > 12
    ys, xs = np.nonzero(moved)
    assert len(ys) > 500
    # What moved lies around the shoulders, not on the face.
    sh_y = body.keypoints[[L_SHOULDER, R_SHOULDER], 1].mean()
    assert abs(np.median(ys) - sh_y) < 0.5 * body.unit
    x0, y0, x1, y1 = (int(v) for v in face.box)
    assert not moved[y0:y1, x0:x1].any()
    with pytest.raises(FaceError, match="leg_length"):
        edit_pixels(rgb, Recipe.of(("leg_length", 50)), face=face)


@pytest.mark.parametrize("name", ["shoulder_width", "shoulder_line", "neck_length"])
def test_a_clean_exemplar_of_a_body_op_is_read_back(obama, name):
    """The project's own body ops, made on one photo, are read back as themselves."""
    from mirrorppr.edit import edit_pixels

    rgb, face, body = obama
    after = edit_pixels(rgb, Recipe.of((name, 70.0)), face=face)
    op = analyze(rgb, after, face=face)
    assert op.body is not None and op.body.choice != "none", op.notes
    fitted = {s.op: s.strength for s in op.body.recipe}
    assert max(fitted, key=lambda k: abs(fitted[k])) == name, op.body.summary
    assert 40 <= fitted[name] <= 100, op.body.summary
    assert op.body.confidence > 0.5
    # The body's reading accounts for the motion that reaches the rings around the face,
    # so the face does not carry it a second time (about 10x more without that).
    assert float((op.flow ** 2).sum()) < 0.004


@pytest.mark.parametrize("who", ["astronaut", "luispedro"])
def test_a_liquify_shoulder_edit_is_read_as_shoulders_alone(who, astronaut):
    """Independent strokes that broaden the shoulders are read as that one op: the neck's
    and head's ops, whose motion overlaps the shoulder tops, do not join to cancel each
    other's share of it (solving for every op at once read "Slim neck" beside it)."""
    rgb = astronaut if who == "astronaut" else read_image(PORTRAITS / f"{who}.jpg").rgb8()
    face, body = _person(rgb)
    after = render(rgb, strokes_for(BodyDraw("shoulder width", 0.36, 0.056, 0.5, 1.06), body))
    op = analyze(rgb, after, face=face)
    assert op.body is not None and op.body.choice != "none", op.notes
    names = [s.op for s in op.body.recipe.active()]
    assert names == ["shoulder_width"] and list(op.body.recipe.active())[0].strength > 50, op.body.summary


def test_studio_sliders_show_and_move_the_body_ops(shoulder_case, shoulder_op):
    from mirrorppr.app.core import edit, sliders_of
    from mirrorppr.ops.recipe import Step

    _, _, query, _, _ = shoulder_case
    op = shoulder_op
    names = [s.op for s in sliders_of(op)]
    assert "shoulder_width" in names
    off = Recipe([Step(s.op, 0.0 if s.op == "shoulder_width" else s.strength) for s in sliders_of(op)])
    moved = edit(op, off)
    assert {s.op: s.strength for s in moved.body.recipe}["shoulder_width"] == 0.0
    assert moved.recipe.to_list() == op.recipe.to_list()      # the face part is untouched
    # The slider acts: at 0 the shoulders move less than as analysed.
    full = Retoucher(op).run(query).photo.rgb8().astype(int)
    none = Retoucher(moved).run(query).photo.rgb8().astype(int)
    q = query.astype(int)
    assert np.abs(none - q).sum() < 0.5 * np.abs(full - q).sum()


def test_bench_liquify_body_builds_cross_identity_cases(tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(PORTRAITS / name, photos / name)
    shutil.copy(grace_hopper(), photos / "hopper.jpg")
    out = tmp_path / "cases"
    r = subprocess.run([sys.executable, "-m", "mirrorppr", "bench", "liquify-body", str(photos), "--out", str(out),
                        "--n", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cases = sorted(out.iterdir())
    assert len(cases) == 2
    for d in cases:
        info = json.loads((d / "case.json").read_text())
        assert info["exemplar"] != info["query"] and info["strokes"]
        query = read_image(d / "query.png").rgb8()
        truth = read_image(d / "ground-truth.png").rgb8()
        changed = np.abs(truth.astype(int) - query.astype(int)).max(axis=2) > 2
        assert changed.sum() > 100
        # The strokes are on the body: the query's face is left as it was.
        x0, y0, x1, y1 = (int(v) for v in find_face(query).box)
        inner = changed[y0 + (y1 - y0) // 4:y1 - (y1 - y0) // 4, x0 + (x1 - x0) // 4:x1 - (x1 - x0) // 4]
        assert not inner.any()


def test_a_pinch_inside_the_waist_is_held_by_the_torso_and_lands_inside_another():
    """Two pushes towards the middle inside Biden's waist (a retoucher's pinch, far from
    any outline) are anchored on the torso as a whole (not on whichever bone passes
    nearest), read as the waist slimmed, and land at the same place of the torso when the
    body is framed otherwise."""
    from mirrorppr.body.motion import _place, describe
    from mirrorppr.body.parts import TORSO

    rgb = read_image(PORTRAITS / "biden.jpg").rgb8()
    face, body = _person(rgb)
    sk = Skeleton.of(body)
    pinch = []
    for u in (0.4, 0.6):            # beside the shirt and tie: his dark suit shows no motion
        at, jac = sk.torso_point(u, 0.65)
        inward = jac[:, 0] * (1 if u < 0.5 else -1)
        pinch.append(Stroke("push", tuple(at), 0.2 * body.unit, tuple(0.04 * body.unit * inward / np.linalg.norm(inward))))
    motion = _measure(rgb, render(rgb, pinch), face, body)
    held = [st for st in motion.strokes if any(a.part == TORSO for a in st.anchors)]
    assert held and sum(a.weight for st in held for a in st.anchors if a.part == TORSO) >= 0.5 * len(held)
    assert describe(motion, sk) == ("waist slimmed on both sides",)
    assert BodyMotion.from_dict(motion.to_dict()).to_dict() == motion.to_dict()

    # The same body framed otherwise: smaller, off-centre on a wider canvas (the pose
    # model then puts the hips a few percent of the torso elsewhere).
    k, off = 0.6, np.array([400.0, 150.0])
    small = cv2.resize(rgb, (int(rgb.shape[1] * k), int(rgb.shape[0] * k)), interpolation=cv2.INTER_AREA)
    canvas = np.full((int(rgb.shape[0] * 0.8), int(rgb.shape[1] * 1.4), 3), 200, np.uint8)
    canvas[int(off[1]):int(off[1]) + small.shape[0], int(off[0]):int(off[0]) + small.shape[1]] = small
    _, body_c = _person(canvas)
    sk_c = Skeleton.of(body_c)
    for st in held:
        here, sigma, push = _place(st, sk)
        there, sigma_c, push_c = _place(st, sk_c)
        assert np.linalg.norm(there - (here * k + off)) < 0.1 * body_c.unit, (there, here * k + off)
        assert abs(sigma_c / (sigma * k) - 1) < 0.2 and np.linalg.norm(push_c - push * k) < 0.2 * np.linalg.norm(push * k)
    # End to end, on the photo resized (there the pose model finds the same hips; on the
    # padded canvas above they move by ~0.13 body units, about the pinch's reach): the
    # exemplar's reading beats doing nothing where the same pinch, resized, changes it,
    # and no part is said to be missing.
    small_truth = render(small, [Stroke("push", tuple(np.array(p.centre) * k), p.radius * k,
                                        tuple(np.array(p.vector) * k)) for p in pinch])
    res = Retoucher(analyze(rgb, render(rgb, pinch))).run(small)
    assert not any("does not show" in n for n in res.notes), res.notes
    edit = np.abs(small_truth.astype(int) - small.astype(int)).max(axis=2) > 2
    assert psnr(small_truth, res.photo.rgb8(), edit) > psnr(small_truth, small, edit) + 1.0


def _drawn_figure():
    """A standing figure drawn as a mask with its 33 keypoints (no licensed full-body
    photo is vendored; the ops act on keypoints and mask alone)."""
    from mirrorppr.body import detect as K
    from mirrorppr.body.detect import Body

    W, H = 600, 1000
    kp = np.zeros((33, 2))
    at = {K.NOSE: (300, 140), K.L_EAR: (270, 140), K.R_EAR: (330, 140),
          K.L_SHOULDER: (380, 250), K.R_SHOULDER: (220, 250), K.L_ELBOW: (410, 400),
          K.R_ELBOW: (190, 400), K.L_WRIST: (420, 530), K.R_WRIST: (180, 530),
          K.L_HIP: (360, 520), K.R_HIP: (240, 520), K.L_KNEE: (380, 720), K.R_KNEE: (220, 720),
          K.L_ANKLE: (390, 920), K.R_ANKLE: (210, 920)}
    for i, p in at.items():
        kp[i] = p
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (300, 140), (45, 60), 0, 0, 360, 1, -1)
    cv2.fillPoly(mask, [np.array([(215, 245), (385, 245), (370, 525), (230, 525)], np.int32)], 1)
    for a, b, r in ((K.L_SHOULDER, K.L_ELBOW, 28), (K.L_ELBOW, K.L_WRIST, 24), (K.R_SHOULDER, K.R_ELBOW, 28),
                    (K.R_ELBOW, K.R_WRIST, 24), (K.L_HIP, K.L_KNEE, 45), (K.L_KNEE, K.L_ANKLE, 32),
                    (K.R_HIP, K.R_KNEE, 45), (K.R_KNEE, K.R_ANKLE, 32), (K.NOSE, K.L_SHOULDER, 30)):
        cv2.line(mask, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), 1, 2 * r)
    vis = np.zeros(33)
    vis[list(at)] = 1.0
    return Body(kp, vis, mask.astype(np.float32), 1.0, (W, H))


def test_slim_legs_moves_each_legs_whole_edge_and_slim_arms_the_middle_of_the_arm():
    """A retoucher's "Slim legs" pulls each leg's outline in along its length, alike near
    the hip and near the knee; "Slim arms" stays a push at the upper arm's middle."""
    from mirrorppr.body.parts import PART_INDEX
    from mirrorppr.ops.base import get_op
    from mirrorppr.ops.body import _edge, band, displacement, strokes

    sk = Skeleton.of(_drawn_figure())
    i = PART_INDEX["left thigh"]
    _, n, _ = sk.axes()

    def inward_push(op, part, s):
        i = PART_INDEX[part]
        p = np.array([_edge(sk, part, side, s) for side in (0, 1)])
        v = displacement(strokes(op, sk, get_op(op).fraction(-100)), p) * band(sk, p)[:, None]
        # Across the bone, positive towards the bone (slimming), for both edges.
        return np.array([-(v[0] @ n[i]), v[1] @ n[i]])

    legs = {s: inward_push("leg_thickness", "left thigh", s) for s in (0.2, 0.5, 0.8)}
    assert all((v > 0.5).all() for v in legs.values()), legs
    assert np.ptp(np.concatenate(list(legs.values()))) < 0.25 * legs[0.5].mean(), legs
    arm = {s: inward_push("arm_thickness", "left upper arm", s) for s in (0.1, 0.5, 0.9)}
    assert (arm[0.5] > 0.5).all() and (arm[0.1] < 0.7 * arm[0.5]).all() and (arm[0.9] < 0.7 * arm[0.5]).all(), arm
    # The background beside the leg barely moves (the band), far from it not at all.
    far = np.array([[560.0, 620.0]])
    assert np.abs(displacement(strokes("leg_thickness", sk, 1.0), far) * band(sk, far)[:, None]).max() < 1e-3
