"""How long reading an exemplar takes, by kind of exemplar and size: a clean edit made
with this project's ops, liquify-style strokes made by an independent warp, and one made
by the paper's simulator (its LLW procedure), at 1024 px and at 24 MP (6000 x 4000). Each
row is a fresh process (model loads excluded: one warm-up analysis first); the stage
times come from the analysis's own progress callback. Prints a Markdown table.

Run: `python benchmarks/bench_analysis.py` (about 3 minutes on 2 cores).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

KINDS = ("clean", "liquify", "paper")
SIZES = ((1024, 1024), (6000, 4000))


def make(kind: str, width: int, height: int):
    from _util import portrait

    from mirrorppr.edit import edit_pixels
    from mirrorppr.eval.liquify import Stroke, render
    from mirrorppr.landmarks import find_face
    from mirrorppr.ops.recipe import Recipe
    from mirrorppr.paper.render import apply_recipe_exact

    before = portrait(width, height)
    face = find_face(before)
    if kind == "clean":
        return before, edit_pixels(before, Recipe.of(("face_width", -60), ("eye_resize", 50),
                                                      ("nose_alar", -50)), face=face)
    if kind == "liquify":
        # Two pushes on the jaw and a bloat on one eye, in face-relative units.
        p = face.points
        d = float(abs(p[33, 0] - p[263, 0]))
        strokes = [Stroke("push", tuple(p[172]), 0.9 * d, (0.08 * d, -0.02 * d)),
                   Stroke("push", tuple(p[397]), 0.9 * d, (-0.08 * d, -0.02 * d)),
                   Stroke("bloat", tuple(p[468]), 0.35 * d, amount=0.25)]
        return before, render(before, strokes)
    return before, apply_recipe_exact(before, Recipe.of(("nose_length", 80), ("eye_resize", 60)),
                                      lambda px: find_face(px).points, points=face.points)


def one(kind: str, width: int, height: int) -> dict:
    from mirrorppr.analyze import analyze

    before, after = make(kind, width, height)
    analyze(before, before)          # warm-up: the face models loaded
    stages: dict[str, float] = {}
    last = [time.perf_counter(), "start"]

    def progress(stage: str, fraction: float) -> None:
        now = time.perf_counter()
        stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
        last[:] = [now, stage]

    t = time.perf_counter()
    op = analyze(before, after, progress=progress)
    total = time.perf_counter() - t
    slow = sorted(((s, v) for s, v in stages.items() if s != "start"), key=lambda kv: -kv[1])[:2]
    return {"kind": kind, "size": f"{width}x{height}", "seconds": total, "choice": op.choice,
            "provenance": op.provenance.kind, "slowest": slow}


def main() -> None:
    if len(sys.argv) == 4:
        print(json.dumps(one(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
        return
    here = Path(__file__).parent
    print("| exemplar | size | analysis | choice | provenance | slowest stages |")
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        for w, h in SIZES:
            r = subprocess.run([sys.executable, str(here / "bench_analysis.py"), kind, str(w), str(h)],
                               capture_output=True, text=True, cwd=here)
            if r.returncode != 0:
                print(f"| {kind} | {w}x{h} | failed: {r.stderr.strip().splitlines()[-1]} | | | |")
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            slow = ", ".join(f"{s} {v:.1f} s" for s, v in row["slowest"])
            print(f"| {kind} | {row['size']} | {row['seconds']:.2f} s | {row['choice']} | "
                  f"{row['provenance']} | {slow} |", flush=True)


if __name__ == "__main__":
    main()
