"""``mirrorppr ops`` and ``mirrorppr edit``: the operation library by hand."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..edit import MODES, edit_photo
from ..errors import ConfigError
from ..imageio import read_image, write_image
from ..landmarks import find_face
from ..ops import ops_in
from ..ops.recipe import Recipe
from ..visualize import compare, landmarks_overlay
from .common import (FORMATTER, add_landmarker, add_output_options, claim_image, guard, preset_from_data,
                     write_rgb)


def register(sub) -> None:
    p = sub.add_parser("ops", help="list the retouching operations",
                       description="List every operation: name, what +/- strength does, group.",
                       formatter_class=FORMATTER)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--family", choices=["llw", "pro", "body"],
                   help="only the paper's face ops (llw), this project's face ops (pro) or the body ops")
    p.set_defaults(func=run_ops)

    p = sub.add_parser(
        "edit", help="apply named operations to one photo",
        description="Apply a recipe of operations (strength -100..100) to a portrait.",
        epilog="examples:\n"
               "  mirrorppr edit in.jpg -o out.jpg --op eye_resize=40 --op nose_alar=-30\n"
               "  mirrorppr edit in.jpg -o out.jpg --recipe slim.json --compare before-after.jpg\n"
               "  mirrorppr edit in.png -o out.png --op lip_thickness=-100 --mode exact",
        formatter_class=FORMATTER)
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--op", action="append", default=[], metavar="NAME=STRENGTH",
                   help="an operation and its strength; repeat for several (applied in order)")
    p.add_argument("--recipe", type=Path, help="a recipe JSON file instead of --op")
    p.add_argument("--mode", choices=MODES, default="fast",
                   help="fast: one composed warp (default); exact: the paper's procedure, "
                        "landmarks re-detected between ops, 8-bit truncation")
    p.add_argument("--compare", type=Path, metavar="FILE", help="also write a before/after image")
    p.add_argument("--show-landmarks", type=Path, metavar="FILE", help="also write a landmark overlay")
    add_landmarker(p)
    add_output_options(p)
    p.set_defaults(func=run_edit)

    p = sub.add_parser(
        "show", help="check a preset or recipe file and say what it does",
        description="Read a preset (from 'mirrorppr analyze') or a recipe JSON file, check every "
                    "field (types, sizes, ranges) and print what it does. Exit 6 if it is malformed.",
        epilog="examples:\n  mirrorppr show look.json\n  mirrorppr show slim-recipe.json",
        formatter_class=FORMATTER)
    p.add_argument("file", type=Path, help="a preset or recipe JSON file")
    p.set_defaults(func=run_show)


def run_ops(args) -> int:
    ops = ops_in(args.family)
    if args.json:
        print(json.dumps([op.to_dict() for op in ops], indent=1))
        return 0
    w = max(len(op.name) for op in ops) if ops else 4
    print(f"{'name':{w}s} {'group':11s} {'family':6s} {'strength > 0':28s} strength < 0")
    for op in ops:
        print(f"{op.name:{w}s} {op.group:11s} {op.family:6s} {op.labels[0]:28s} {op.labels[1]}")
    return 0


def run_edit(args) -> int:
    if args.recipe and args.op:
        raise ConfigError("give either --op or --recipe, not both")
    g = guard(args)
    g.protect(args.input, role="the input photo")
    g.protect(args.recipe, role="--recipe")
    recipe = Recipe.load(args.recipe) if args.recipe else Recipe.parse(args.op)
    if not len(recipe):
        raise ConfigError("nothing to do: give --op NAME=STRENGTH or --recipe FILE (see 'mirrorppr ops')")
    # Every output is checked before any work: none is an input or another output.
    claim_image(g, args.output, "-o")
    claim_image(g, args.compare, "--compare")
    claim_image(g, args.show_landmarks, "--show-landmarks")
    photo = read_image(args.input)
    t = time.perf_counter()
    face = find_face(photo.rgb8(), source=str(args.input), backend=args.landmarker, index=args.face_index)
    out = edit_photo(photo, recipe, mode=args.mode, face=face, backend=args.landmarker,
                     face_index=args.face_index)
    dt = time.perf_counter() - t
    write_image(out, args.output, protect=(args.input,), quality=args.quality)
    if args.compare:
        write_rgb(compare(photo.rgb8(), out.rgb8()), args.compare, protect=(args.input,), quality=args.quality)
    if args.show_landmarks:
        write_rgb(landmarks_overlay(photo.rgb8(), face.points), args.show_landmarks, protect=(args.input,),
                  quality=args.quality)
    notes = "; ".join(dict.fromkeys(photo.notes + out.notes))   # the output copies the input's notes
    print(f"{args.output}: {recipe.summary()} ({dt:.2f} s{'; ' + notes if notes else ''})")
    return 0


def run_show(args) -> int:
    """A preset if it says so (its "format"), otherwise a recipe."""
    from ..analyze.preset_schema import MAX_BYTES
    from ..jsonio import read_json

    data = read_json(args.file, "preset or recipe", MAX_BYTES)
    if isinstance(data, dict) and "format" in data:
        op = preset_from_data(data, args.file)
        print(f"{args.file}: preset: {op.describe()}")
        steps = op.recipe.active()
    else:
        steps = Recipe.from_data(data, str(args.file)).active()
        print(f"{args.file}: recipe: {steps.summary()}")
    for s in steps:
        print(f"  {s.op:16s} {s.strength:+7.1f}  {s.label()}")
    return 0
