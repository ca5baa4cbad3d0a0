"""Paper fidelity of the LLW operations: for each simulated case whose case.json names
its operations, search the strengths that best reproduce the ground truth from the query
with the paper's exact procedure, and write those outputs for scoring. Where the ground
truth shows a crop pasted back (a rectangle of resampled pixels), the crop's side is
searched too and the ops run on that crop, as the paper's pipeline did.

    python benchmarks/paper_fidelity.py CASES_DIR --out OUT_DIR
    python ../shared/tools/score_cases.py CASES_DIR --outputs llw=OUT_DIR --reference
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from mirrorppr.paper.search import crop_canvas, paste_box
from mirrorppr.edit import edit_pixels
from mirrorppr.eval.cases import load_cases
from mirrorppr.eval.metrics import edit_region, psnr
from mirrorppr.imageio import Photo, read_image, write_image
from mirrorppr.landmarks import find_face
from mirrorppr.ops import ops_in
from mirrorppr.ops.recipe import Recipe
from mirrorppr.paper.render import apply_recipe_exact

LEVELS = [100, 90, 80, 70, 60, 50, 40]


def labels_to_ops(text: str) -> list[tuple[str, int]]:
    """'Enlarge eyes, Thin lips' -> [('eye_resize', +1), ('lip_thickness', -1)]."""
    table = {}
    for op in ops_in("llw"):
        table[op.labels[0].lower()] = (op.name, 1)
        table[op.labels[1].lower()] = (op.name, -1)
    return [table[t.strip().lower()] for t in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    report = {}
    for case in load_cases(a.cases):
        label = case.info.get("operation")
        if case.info.get("subset") != "simulated" or not label:
            continue
        ops = labels_to_ops(label)
        q = read_image(case.query).rgb8()
        gt = read_image(case.ground_truth).rgb8()
        mask = edit_region(gt, q)
        face = find_face(q)
        detect = lambda px: find_face(px).points  # noqa: E731

        def run(recipe, canvas):
            if canvas is None:
                return edit_pixels(q, recipe, mode="exact", face=face)
            return apply_recipe_exact(q, recipe, detect, points=face.points, canvas=canvas)

        def levels_search(canvas):
            best = None
            for levels in itertools.product(LEVELS, repeat=len(ops)):
                recipe = Recipe.of(*[(name, sign * lv) for (name, sign), lv in zip(ops, levels)])
                out = run(recipe, canvas)
                score = psnr(gt, out, mask)
                if best is None or score > best[0]:
                    best = (score, recipe, out, canvas)
            return best

        best = levels_search(None)
        box = paste_box(q, gt, face.points)
        if box is not None:
            size = (q.shape[1], q.shape[0])
            lo = max(box[2] - box[0], box[3] - box[1])
            sides = [(psnr(gt, run(best[1], crop_canvas(box, size, side)), mask), side)
                     for side in range(lo, int(lo * 1.5), 4)]
            crop = levels_search(crop_canvas(box, size, max(sides)[1]))
            best = max(best, crop, key=lambda b: b[0])
        score, recipe, out, canvas = best
        write_image(Photo(out, format="PNG"), a.out / f"{case.id}.png")
        report[case.id] = {"recipe": recipe.summary(), "psnr_edit": score,
                           "gain_edit": score - psnr(gt, q, mask),
                           "crop": None if canvas is None else list(canvas)}
        print(f"{case.id}: {recipe.summary()}  gain {report[case.id]['gain_edit']:+.2f} dB"
              + ("" if canvas is None else f"  (on the crop {list(canvas)})"))
    (a.out / "fidelity.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
