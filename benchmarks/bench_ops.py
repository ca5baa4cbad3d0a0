"""Landmarks, one op and a 5-op recipe at 1024 x 1024 and 6000 x 4000, with peak memory.

Each size runs in its own process so peak memory (max RSS) belongs to that size alone.
Prints a Markdown table; numbers go in the README. Run: `make bench` or
`python benchmarks/bench_ops.py`.
"""
from __future__ import annotations

import json
import subprocess
import sys

SIZES = [(1024, 1024), (6000, 4000)]
RECIPE5 = [("face_width", -50), ("eye_resize", 40), ("nose_alar", -40), ("smile", 40), ("chin_length", 30)]


def one(width: int, height: int) -> dict:
    from _util import current_rss_mb, peak_rss_mb, portrait, timed

    from mirrorppr.edit import edit_pixels
    from mirrorppr.landmarks import find_face
    from mirrorppr.ops.recipe import Recipe

    img = portrait(width, height)
    face = find_face(img)                      # loads the model
    base = current_rss_mb()
    det = timed(lambda: find_face(img), 3)
    op1 = timed(lambda: edit_pixels(img, Recipe.of(("eye_resize", 60)), face=face), 5)
    op5 = timed(lambda: edit_pixels(img, Recipe.of(*RECIPE5), face=face), 3)
    full = timed(lambda: edit_pixels(img, Recipe.of(*RECIPE5)), 3)
    exact = timed(lambda: edit_pixels(img, Recipe.of(("eye_resize", 60)), face=face, mode="exact"), 3)
    return {"size": f"{width}x{height}", "face_px": round(face.size), "landmarks_s": det[0],
            "one_op_s": op1[0], "recipe5_s": op5[0], "recipe5_with_landmarks_s": full[0],
            "one_op_exact_s": exact[0], "rss_after_load_mb": base, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(one(int(sys.argv[1]), int(sys.argv[2]))))
        return
    rows = []
    for w, h in SIZES:
        out = subprocess.run([sys.executable, __file__, str(w), str(h)], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| photo | face (px) | landmarks | one op (fast) | one op (exact) | 5-op recipe | 5-op recipe incl. landmarks | RSS after load | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['face_px']} | {r['landmarks_s'] * 1e3:.0f} ms | {r['one_op_s'] * 1e3:.0f} ms "
              f"| {r['one_op_exact_s'] * 1e3:.0f} ms | {r['recipe5_s'] * 1e3:.0f} ms "
              f"| {r['recipe5_with_landmarks_s'] * 1e3:.0f} ms | {r['rss_after_load_mb']:.0f} MB "
              f"| {r['peak_rss_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
