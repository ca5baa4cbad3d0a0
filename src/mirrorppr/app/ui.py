"""The studio's page (Gradio Blocks) and its API endpoints.

Layout: exemplar (before/after, analysis, measured motion) | recipe (one slider per op,
global strength, engine, add an op, presets) | photos (live preview with a before/after
slider and a difference view, export). Every handler works on the caller's own
:class:`~mirrorppr.app.session.Workspace`, found by Gradio's session id; errors a person
can act on become a message in the page, anything else a short line (the trace stays in
the server log).
"""
from __future__ import annotations

import functools
import json
import logging
import re

import gradio as gr

from ..errors import ConfigError, InputError, MirrorError
from ..ops import get_op, ops_in
from ..analyze import PROCEDURES
from .core import STUDIO_ENGINES, Settings, candidate_rows, operation_facts, sliders_of
from .session import Studio, Workspace

log = logging.getLogger("mirrorppr.app")

CSS = """
#mp-recipe .mp-op { padding-top: 0; padding-bottom: 0; }
#mp-analysis table { font-size: 12px; }
#mp-analysis td, #mp-analysis th { padding: 2px 6px; }
#mp-title { margin-bottom: 0; }
footer { display: none !important; }
"""

INTRO = ("Load one portrait before and after a retoucher's structural edits (or the bundled "
         "example): the studio finds the edits as named operations, one slider each. Adjust "
         "them, preview your photos live, export them at full resolution.")


def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: nothing is fetched for text."""
    return gr.themes.Default(primary_hue="orange", neutral_hue="slate",
                             font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


#: What the before/after view shows.
VIEWS = ("face close-up", "whole photo")


def _slider_label(name: str) -> str:
    """The op in a retoucher's words, negative side first (as the slider runs)."""
    op = get_op(name)
    return f"{op.labels[1]}  ◂ ▸  {op.labels[0]}"


def _op_label(name: str) -> str:
    op = get_op(name)
    return f"{name}  (− {op.labels[1]} · + {op.labels[0]})"


def build_ui(studio: Studio) -> gr.Blocks:
    """The page and its endpoints, bound to ``studio``'s sessions."""
    names = [op.name for op in ops_in()]
    root_pattern = re.compile(re.escape(str(studio.root)) + r"[^\s:,;]*/")

    def message(exc: Exception, where: str) -> str:
        if isinstance(exc, MirrorError):
            return root_pattern.sub("", str(exc))
        log.error("studio: unexpected error in %s", where, exc_info=exc)
        return f"internal error ({type(exc).__name__}); the server log has the details"

    def guarded(fn=None, *, on_error=None):
        """Errors become a message in the page, never a trace: a MirrorError its own line,
        anything else one line (the trace goes to the server log). With ``on_error`` the
        handler still updates the page (e.g. clears an upload box) and says why."""
        def wrap(fn):
            @functools.wraps(fn)
            def inner(*args, **kwargs):
                try:
                    return fn(*args, **kwargs)
                except gr.Error:
                    raise
                except Exception as exc:
                    text = message(exc, fn.__name__)
                    if on_error is None:
                        raise gr.Error(text, print_exception=False) from None
                    gr.Warning(text)
                    return on_error(text)
            return inner
        return wrap(fn) if fn is not None else wrap

    def ws_of(request: gr.Request) -> Workspace:
        return studio.workspace(request.session_hash)

    def settings(ws: Workspace, strength: float, engine: str, values: dict[str, float]) -> Settings:
        return Settings(tuple((n, float(values.get(n, 0.0))) for n in ws.shown), float(strength), engine)

    def slider_updates(ws: Workspace, values: dict[str, float] | None = None) -> list:
        values = values if values is not None else ws.default_values()
        return [gr.update(visible=n in ws.shown, value=values.get(n, 0.0)) for n in names]

    def add_choices(ws: Workspace):
        return gr.update(choices=[(f"{get_op(n).group}: {_op_label(n)}", n) for n in names
                                  if n not in ws.shown], value=None)

    def photo_choices(ws: Workspace, select: str | None = None):
        keys = list(ws.photos)
        value = select if select in ws.photos else (keys[0] if keys else None)
        return gr.update(choices=keys, value=value)

    def photo_list(ws: Workspace) -> str:
        if not ws.photos:
            return "No photos yet."
        return "\n".join(f"- {p.describe()}" for p in ws.photos.values())

    def analysis_md(ws: Workspace) -> str:
        op = ws.require_operation()
        facts = ws.analysis.facts() if ws.analysis is not None else operation_facts(op)
        head = "| analysis | |" if ws.analysis is not None else "| preset | |"
        out = head + "\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in facts)
        cands = candidate_rows(op)
        if cands:
            out += ("\n\n**Each transfer tried on the exemplar** (PSNR where it changed; gain over "
                    "doing nothing)\n\n| candidate | PSNR | gain | |\n|---|---|---|---|\n")
            out += "\n".join(f"| {n} | {p:.2f} dB | {g:+.2f} dB | {'auto' if c else ''} |"
                              for n, p, g, c in cands)
        if op.notes:
            out += "\n\n" + "\n".join(f"- {n}" for n in op.notes)
        return out

    # ------------------------------------------------------------ handlers
    def exemplar_outputs(ws: Workspace) -> list:
        pair = tuple(str(p) for p in ws.exemplar_files) if ws.exemplar_files else None
        return [f"Exemplar ready: **{ws.require_operation().summary}**. Move the sliders; "
                "the preview follows.", pair, str(ws.motion) if ws.motion else None,
                analysis_md(ws), *slider_updates(ws), add_choices(ws), gr.update(value=1.0),
                photo_choices(ws), photo_list(ws)]

    def exemplar_failed(text: str) -> list:
        """The exemplar boxes emptied (their files were taken), the reason said."""
        return [f"**Not analysed**: {text}", *[gr.skip()] * (len(exemplar_outs) - 1), None, None]

    @guarded(on_error=exemplar_failed)
    def on_analyse(before, after, procedure_, request: gr.Request, progress=gr.Progress()):
        ws = ws_of(request)
        with ws.lock:
            ws.load_exemplar(before, after, procedure_ or "auto", lambda s, f: progress(f, desc=s))
            ws.reset_shown()
            return [*exemplar_outputs(ws), None, None, None, None]

    @guarded
    def on_example(procedure_, request: gr.Request, progress=gr.Progress()):
        ws = ws_of(request)
        with ws.lock:
            ws.load_example(procedure_ or "auto", lambda s, f: progress(f, desc=s))
            ws.reset_shown()
            return [*exemplar_outputs(ws), None, None, gr.skip(), gr.skip()]

    @guarded(on_error=lambda text: [f"**Preset not loaded**: {text}", *[gr.skip()] * (len(exemplar_outs) - 1),
                                    None])
    def on_preset(upload, request: gr.Request):
        ws = ws_of(request)
        with ws.lock:
            ws.load_preset(upload)
            ws.reset_shown()
            return [*exemplar_outputs(ws), None, None, None]

    @guarded(on_error=lambda text: [f"**No photo added**: {text}", gr.skip(), gr.skip(), None])
    def on_photos(uploads, request: gr.Request):
        ws = ws_of(request)
        with ws.lock:
            added, refused = ws.add_photos(uploads if isinstance(uploads, list) else [uploads])
        for text in refused:
            gr.Warning(text)
        note = f"Added {len(added)} photo(s)." if added else "No photo added."
        if refused:
            note += " Refused: " + " · ".join(refused)
        return note, photo_choices(ws, added[-1].name if added else None), photo_list(ws), None

    @guarded
    def on_clear(request: gr.Request):
        ws = ws_of(request)
        with ws.lock:
            ws.clear_photos()
            return "Photos removed.", photo_choices(ws), photo_list(ws), None, None, ""

    @guarded
    def on_preview(data: dict, request: gr.Request):
        ws = ws_of(request)
        key = data[photo_dd]
        if ws.operation is None or not key:
            return gr.skip(), gr.skip(), "Load an exemplar and a photo to see a preview."
        with ws.lock:
            s = settings(ws, data[strength], data[engine], {n: data[sliders[n]] for n in names})
            p = ws.preview(key, s, close_up=data[view] == VIEWS[0])
        return ((str(p.before), str(p.after)), str(p.diff),
                f"Preview {key}: transfer {p.seconds * 1000:.0f} ms, with images {p.total * 1000:.0f} ms")

    @guarded
    def on_add(data: dict, request: gr.Request):
        ws = ws_of(request)
        name = data[add_dd]
        with ws.lock:
            ws.require_operation()
            if name:
                get_op(name)
                if name not in ws.shown:
                    ws.shown.append(name)
            values = {n: data[sliders[n]] for n in names}
            return [*slider_updates(ws, values), add_choices(ws)]

    @guarded
    def on_reset(request: gr.Request):
        ws = ws_of(request)
        with ws.lock:
            ws.require_operation()
            ws.reset_shown()
            return [*slider_updates(ws), add_choices(ws), gr.update(value=1.0)]

    @guarded
    def on_save(data: dict, request: gr.Request):
        ws = ws_of(request)
        with ws.lock:
            s = settings(ws, data[strength], data[engine], {n: data[sliders[n]] for n in names})
            path = ws.save_preset(s)
        return (gr.update(value=str(path), visible=True),
                "Preset saved (the recipe as the sliders hold it). The same result from the command "
                f"line: `mirrorppr apply preset.json PHOTO... -o OUT {' '.join(s.cli_options())}`")

    def export(data: dict, request: gr.Request, every: bool):
        ws = ws_of(request)
        with ws.lock:
            s = settings(ws, data[strength], data[engine], {n: data[sliders[n]] for n in names})
            ws.require_operation()
            res = ws.export(s, None if every else [ws.photo(data[photo_dd]).name], zip_all=every)
        failed = "".join(f"\n- {m}" for m in res.failed.values())
        return (gr.update(value=str(res.path), visible=True), f"Exported {len(res.done)} photo(s) at full resolution in "
                               f"{res.seconds:.1f} s: `{res.path.name}`" + failed)

    @guarded
    def on_export(data: dict, request: gr.Request):
        return export(data, request, every=False)

    @guarded
    def on_export_all(data: dict, request: gr.Request):
        return export(data, request, every=True)

    def on_unload(request: gr.Request):
        studio.end(request.session_hash)

    # ------------------------------------------------------------ API-only handlers
    @guarded
    def api_analyze(before, after, procedure, request: gr.Request):
        """Analyse an exemplar pair; returns the preset file and its summary."""
        ws = ws_of(request)
        with ws.lock:
            analysis = ws.load_exemplar(before, after, procedure or "auto")
            ws.reset_shown()
            return str(ws.save_preset(ws.default_settings())), analysis.operation.describe()

    @guarded
    def api_retouch(preset, photos, recipe, strength, engine, request: gr.Request):
        """Retouch photos with a preset (plus strength changes); returns the image (one
        photo) or a zip (several, with the preset and one sidecar each), the preset as
        changed, and a report."""
        ws = ws_of(request)
        with ws.lock:
            op = ws.load_preset(preset)
            values = dict((s.op, s.strength) for s in sliders_of(op))
            values.update(_recipe_changes(recipe))
            s = Settings(tuple(values.items()), float(strength if strength is not None else 1.0),
                         engine or "auto")
            ws.clear_photos()
            added, refused = ws.add_photos(photos if isinstance(photos, list) else [photos])
            if not added:
                raise InputError("; ".join(refused) or "no photo given")
            res = ws.export(s, [p.name for p in added], zip_all=len(added) > 1)
            return str(res.path), str(res.preset), json.dumps({"done": res.done, "failed": res.failed, "refused": refused,
                                              "seconds": round(res.seconds, 3)})

    def api_ops() -> list[dict]:
        """The registered operations (name, labels, group, family)."""
        return [{"name": op.name, "labels": list(op.labels), "group": op.group, "family": op.family}
                for op in ops_in()]

    # ------------------------------------------------------------ layout
    with gr.Blocks(title="mirrorppr studio", analytics_enabled=False) as demo:
        gr.Markdown("## mirrorppr studio", elem_id="mp-title")
        gr.Markdown(INTRO)
        status = gr.Markdown("", elem_id="mp-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                gr.Markdown("### 1 · Exemplar")
                with gr.Row():
                    before_in = gr.File(label="Before", file_types=["image"], height=120, elem_id="mp-before")
                    after_in = gr.File(label="After", file_types=["image"], height=120, elem_id="mp-after")
                procedure = gr.Radio(list(PROCEDURES), value="auto", label="Read the exemplar as",
                                     info="auto: a clean edit, or the paper's procedure when the pair "
                                          "shows it; clean: never the paper's; paper: always try it",
                                     elem_id="mp-procedure")
                with gr.Row():
                    analyse_btn = gr.Button("Analyse", variant="primary", elem_id="mp-analyse")
                    example_btn = gr.Button("Bundled example", elem_id="mp-example")
                exemplar_view = gr.ImageSlider(label="Exemplar: before | after", type="filepath",
                                               interactive=False, max_height=320, elem_id="mp-exemplar")
                motion = gr.Image(label="Measured motion (exemplar)", type="filepath", interactive=False,
                                  height=300, elem_id="mp-motion")
            with gr.Column(scale=3, min_width=300, elem_id="mp-recipe"):
                gr.Markdown("### 2 · Recipe")
                strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Global strength",
                                     elem_id="mp-strength")
                engine = gr.Radio(list(STUDIO_ENGINES), value="auto", label="Engine",
                                  info="auto: the ops plus motion they leave unexplained; recipe: the "
                                       "ops only; flow: the measured motion (sliders do not apply)",
                                  elem_id="mp-engine")
                sliders = {n: gr.Slider(-100, 100, value=0, step=1, label=_slider_label(n), info=n,
                                        visible=False, elem_id=f"mp-op-{n}", elem_classes=["mp-op"])
                           for n in names}
                with gr.Row():
                    add_dd = gr.Dropdown(choices=[], label="Add an operation", scale=3, elem_id="mp-add-op")
                    add_btn = gr.Button("Add", scale=1, elem_id="mp-add")
                with gr.Row():
                    reset_btn = gr.Button("Reset to the analysis", elem_id="mp-reset")
                    save_btn = gr.Button("Save preset", elem_id="mp-save")
                preset_out = gr.File(label="Preset (JSON)", interactive=False, visible=False,
                                     elem_id="mp-preset-out")
                preset_in = gr.File(label="Load a preset (JSON)", file_types=[".json"], height=90,
                                    elem_id="mp-preset-in")
                analysis = gr.Markdown("", elem_id="mp-analysis")
            with gr.Column(scale=5, min_width=360):
                gr.Markdown("### 3 · Photos")
                photos_in = gr.File(label="Photos to retouch", file_count="multiple", file_types=["image"],
                                    height=110, elem_id="mp-photos")
                with gr.Row():
                    photo_dd = gr.Dropdown(choices=[], label="Preview", scale=4, elem_id="mp-photo")
                    clear_btn = gr.Button("Remove all", scale=1, elem_id="mp-clear")
                with gr.Row():
                    photo_md = gr.Markdown("No photos yet.", elem_id="mp-photo-list")
                    view = gr.Radio(list(VIEWS), value=VIEWS[0], show_label=False, container=False,
                                    elem_id="mp-view")
                compare = gr.ImageSlider(label="Before | after (drag the divider)", type="filepath",
                                         interactive=False, max_height=560, elem_id="mp-compare")
                diff = gr.Image(label="Difference (amplified)", type="filepath", interactive=False,
                                height=220, elem_id="mp-diff")
                timing = gr.Markdown("", elem_id="mp-timing")
                with gr.Row():
                    export_btn = gr.Button("Export this photo", variant="primary", elem_id="mp-export")
                    export_all_btn = gr.Button("Export all (zip)", elem_id="mp-export-all")
                export_file = gr.File(label="Export (full resolution)", interactive=False, visible=False,
                                      elem_id="mp-export-file")
        with gr.Column(visible=False):     # API-only inputs and outputs
            a_before, a_after = gr.File(label="before"), gr.File(label="after")
            a_procedure = gr.Textbox(label="procedure", value="auto")
            a_preset_out, a_summary = gr.File(label="preset"), gr.Textbox(label="summary")
            a_preset = gr.File(label="preset")
            a_photos = gr.File(label="photos", file_count="multiple")
            a_recipe = gr.Textbox(label="recipe", value="")
            a_strength = gr.Number(label="strength", value=1.0)
            a_engine = gr.Textbox(label="engine", value="auto")
            a_result, a_used = gr.File(label="result"), gr.File(label="preset")
            a_report = gr.Textbox(label="report")
            a_ops = gr.JSON(label="ops")
            a_analyze_btn, a_retouch_btn, a_ops_btn = gr.Button(), gr.Button(), gr.Button()

        slider_list = [sliders[n] for n in names]
        view_inputs = {photo_dd, strength, engine, view, *slider_list}
        exemplar_outs = [status, exemplar_view, motion, analysis, *slider_list, add_dd, strength,
                         photo_dd, photo_md, compare, diff]
        exemplar_boxes = [before_in, after_in]
        private = dict(api_visibility="private")

        def preview_after(event):
            return event.then(on_preview, view_inputs, [compare, diff, timing], **private)

        preview_after(analyse_btn.click(on_analyse, [before_in, after_in, procedure],
                                        exemplar_outs + exemplar_boxes, concurrency_id="heavy", **private))
        preview_after(example_btn.click(on_example, procedure, exemplar_outs + exemplar_boxes,
                                        concurrency_id="heavy", **private))
        preview_after(preset_in.upload(on_preset, preset_in, exemplar_outs + [preset_in], **private))
        preview_after(photos_in.upload(on_photos, photos_in, [status, photo_dd, photo_md, photos_in],
                                       **private))
        clear_btn.click(on_clear, None, [status, photo_dd, photo_md, compare, diff, timing], **private)
        # Only a person's moves (input) trigger a preview, and only the latest waits.
        gr.on([s.input for s in slider_list] + [strength.input, engine.input, photo_dd.input, view.input],
              on_preview, view_inputs, [compare, diff, timing], trigger_mode="always_last",
              concurrency_limit=2, **private)
        add_btn.click(on_add, view_inputs | {add_dd}, [*slider_list, add_dd], **private)
        preview_after(reset_btn.click(on_reset, None, [*slider_list, add_dd, strength], **private))
        save_btn.click(on_save, view_inputs, [preset_out, status], **private)
        export_btn.click(on_export, view_inputs, [export_file, status], concurrency_id="heavy", **private)
        export_all_btn.click(on_export_all, view_inputs, [export_file, status],
                             concurrency_id="heavy", **private)
        demo.unload(on_unload)

        a_analyze_btn.click(api_analyze, [a_before, a_after, a_procedure], [a_preset_out, a_summary],
                            api_name="analyze", concurrency_id="heavy")
        a_retouch_btn.click(api_retouch, [a_preset, a_photos, a_recipe, a_strength, a_engine],
                            [a_result, a_used, a_report], api_name="retouch", concurrency_id="heavy")
        a_ops_btn.click(api_ops, None, a_ops, api_name="ops")
    return demo


def _recipe_changes(text: str | None) -> dict[str, float]:
    """``{"op": strength, ...}`` from the API's recipe argument (empty: no change)."""
    if not text or not str(text).strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"recipe: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError('recipe: expected an object such as {"face_width": -40}')
    out = {}
    for name, s in data.items():
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            raise ConfigError(f"recipe: {name}: strength must be a number")
        get_op(name).fraction(float(s))
        out[name] = float(s)
    return out


__all__ = ["build_ui", "theme", "CSS"]
