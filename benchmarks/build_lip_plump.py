"""Lip plump cases: the upper lip pushed up and the lower lip pushed down, as a
retoucher plumps lips with a forward-warp brush, on one person (the exemplar) and the
same strokes on another (the query and its ground truth). Built with the independent
liquify warp of :mod:`mirrorppr.eval.liquify` (dlib landmarks, face units), so no op of
this project made them.

Run: `python benchmarks/build_lip_plump.py PORTRAITS OUT [N]`, then
`mirrorppr eval OUT --engine auto --no-facesim`.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from mirrorppr.eval import liquify as L


def main(portraits: Path, out: Path, n: int = 8, seed: int = 7) -> None:
    people = L.load_people(portraits)
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = people[i % len(people)]
        b = rng.choice([p for p in people if p[1] != a[1]])
        s, r = rng.uniform(0.025, 0.035), rng.uniform(0.3, 0.4)
        # Positive strengths: the upper lip's template pushes up, the lower lip's down.
        draws = [L.Draw("upper lip", r, s, 1.0), L.Draw("lower lip", r, s * rng.uniform(0.9, 1.1), 1.0)]
        target = L.render(a[2], [x for d in draws for x in d.strokes(a[3])])
        truth = L.render(b[2], [x for d in draws for x in d.strokes(b[3])])
        L.write_case(out / f"lips-{i:03d}", rng, (a[2], target, b[2], truth), {
            "subset": "lip-plump", "operation": f"upper lip up, lower lip down ({s:.3f} face units)",
            "exemplar": str(a[0]), "query": str(b[0])})
        print(f"lips-{i:03d}: {a[0].name} -> {b[0].name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 8)
