"""The learned MirrorPPR system at the ``tiny`` config: real modules, real photos, CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
torch.set_num_threads(1)          # test workers share the cores: more threads only contend
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}

from mirrorppr.data import SimConfig, make_tasks, run_tasks  # noqa: E402
from mirrorppr.eval.simface import make_portraits  # noqa: E402
from mirrorppr.imageio import Photo, read_image, write_image  # noqa: E402
from mirrorppr.model.backbone import DEAD_ENDS, LORA_TARGETS  # noqa: E402
from mirrorppr.model.engine import paste_back  # noqa: E402
from mirrorppr.model.head import ReconstructionHead  # noqa: E402
from mirrorppr.model import MirrorPPRPipeline, MirrorPPRPipelineOutput  # noqa: E402
from mirrorppr.model.pipeline import build_extractor  # noqa: E402
from mirrorppr.train import load_config  # noqa: E402
from mirrorppr.train.loop import Batches  # noqa: E402
from mirrorppr.train.losses import FlowMatchingObjective, ReconstructionObjective  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Simulated training shards from the two real portraits (every LLW op, both ways)."""
    root = tmp_path_factory.mktemp("model")
    make_portraits(root / "portraits")
    inputs = [[str(root / "portraits" / n), n] for n in ("astronaut/original.png", "grace_hopper/original.png")]
    run_tasks(make_tasks("simulate", inputs, SimConfig(size=128, seed=0), 2), root / "sim", workers=1,
              progress=False)
    return root / "sim"


@pytest.fixture(scope="module")
def cfg(shards):
    return load_config("tiny", [f"data.shards=['{shards}']"])


@pytest.fixture(scope="module")
def batch(cfg):
    return next(iter(Batches(cfg, 0, 1)))


def _fit(objective, batch, steps, lr, seeded=False):
    torch.manual_seed(0)
    params = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        args = (batch, torch.Generator().manual_seed(0)) if seeded else (batch,)
        loss = objective(*args)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_stage1_reduces_loss_on_a_fixed_batch(cfg, batch):
    torch.manual_seed(0)
    enc, rf = build_extractor(cfg["model"])
    head = ReconstructionHead(token_width=64, num_queries=8, feature_dim=enc.dim, patch_size=8,
                              num_patches=enc.num_patches(), **cfg["model"]["head"])
    losses = _fit(ReconstructionObjective(enc, rf, head), batch, 40, 1e-3)
    assert losses[-1] < 0.6 * losses[0], losses[::8]


def test_stage2_reduces_loss_on_a_fixed_batch(cfg, batch):
    torch.manual_seed(0)
    pipe = MirrorPPRPipeline.build(cfg["model"])
    # LoRA on a frozen random base learns slower than stage I; same noise and timesteps
    # every step, so the objective is fixed and the decrease is the fit's alone.
    losses = _fit(FlowMatchingObjective(pipe), batch, 40, 1e-2, seeded=True)
    assert losses[-1] < 0.8 * losses[0], losses[::8]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_lora_touches_only_the_block_linears(cfg):
    pipe = MirrorPPRPipeline.build(cfg["model"])
    t = pipe.transformer
    trainable = {n: p for n, p in t.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n and n.startswith("transformer_blocks.") for n in trainable)
    rank = cfg["model"]["base"]["lora"]["rank"]
    # Every targeted linear of every block has exactly one A (r x in) and one B (out x r).
    # The last block's text-stream outputs feed nothing: not trained (DDP needs every
    # trained parameter to get a gradient).
    n_blocks = len(t.transformer_blocks)
    dead = {f"transformer_blocks.{n_blocks - 1}.{d}" for d in DEAD_ENDS}
    expected = 0
    for name, mod in t.named_modules():
        if name.startswith("transformer_blocks.") and any(name.endswith("." + k) for k in LORA_TARGETS) \
                and hasattr(mod, "base_layer") and name not in dead:
            expected += rank * (mod.base_layer.in_features + mod.base_layer.out_features)
    assert sum(p.numel() for p in trainable.values()) == expected > 0
    assert len(trainable) == 2 * (len(LORA_TARGETS) * n_blocks - len(DEAD_ENDS))
    # Nothing outside the blocks (embedders, norms, output projection) is trained.
    assert not any(p.requires_grad for n, p in t.named_parameters() if not n.startswith("transformer_blocks."))
    # The modules that are trained in stage II are all trainable.
    for m in (pipe.rformer, pipe.connector):
        assert all(p.requires_grad for p in m.parameters())


def test_save_load_round_trip_gives_identical_outputs(cfg, tmp_path, astronaut, hopper):
    torch.manual_seed(1)
    pipe = MirrorPPRPipeline.build(cfg["model"])
    with torch.no_grad():                   # make the adapter non-trivial before saving
        for n, p in pipe.transformer.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    pipe.save_pretrained(tmp_path / "w")
    again = MirrorPPRPipeline.from_pretrained(tmp_path / "w")
    run = lambda p, seed: p(hopper, hopper, astronaut, num_inference_steps=3, output_type="np",  # noqa: E731
                            generator=torch.Generator().manual_seed(seed), progress=False).images
    a, b, c = run(pipe, 5), run(again, 5), run(again, 6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)           # the generator matters: outputs are not constant
    meta = json.loads((tmp_path / "w" / "mirrorppr.json").read_text())
    assert meta["format"] == "mirrorppr.model/2"
    assert (tmp_path / "w" / "lora" / "adapter.safetensors").is_file()
    # One home per size: module sizes in their config.json, none in mirrorppr.json.
    assert "rformer" not in meta["settings"] and "connector" not in meta["settings"]
    assert json.loads((tmp_path / "w" / "rformer" / "config.json").read_text())["width"] == 64
    assert "config" not in meta["settings"]["base"]


def test_train_cli_resumes_then_model_engine_retouches_a_real_photo(cfg, shards, tmp_path, astronaut, hopper):
    run = tmp_path / "run"
    base = [sys.executable, "-m", "mirrorppr", "train", "--config", "tiny", "--data", str(shards),
            "--out", str(run)]
    first = subprocess.run(base + ["--steps", "3"], capture_output=True, text=True, env=ONE_THREAD, timeout=300)
    assert first.returncode == 0, first.stderr
    # Resumed with gradient accumulation and checkpointing switched on.
    second = subprocess.run(base + ["--steps", "6", "--set", "train.grad_accum=2", "--set",
                                    "train.grad_checkpointing=true"], capture_output=True, text=True, env=ONE_THREAD,
                            timeout=300)
    assert second.returncode == 0, second.stderr
    assert "stage 2: steps 3 -> 6" in second.stdout, second.stdout
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in rows} >= {"stage1", "stage2", "stage2/val"}
    assert all(0 <= r["data_wait_share"] <= 1 for r in rows if "data_wait_share" in r)
    assert list((run / "validation").glob("stage2-*.png"))
    # The trained weights as the 'model' engine, on a real portrait of another size.
    q = tmp_path / "query.png"
    write_image(Photo(astronaut[:500, :400]), q)
    src, tgt = tmp_path / "s.png", tmp_path / "t.png"
    write_image(Photo(hopper), src)
    write_image(Photo(hopper), tgt)
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "mirrorppr", "retouch", "--engine", "model", "--weights",
                        str(run / "weights"), "--source", str(src), "--target", str(tgt), "--query", str(q),
                        "-o", str(out), "--steps", "3"], capture_output=True, text=True, env=ONE_THREAD, timeout=300)
    assert r.returncode == 0, r.stderr
    assert read_image(out).pixels.shape == (500, 400, 3)
    # The same weights scored by 'mirrorppr eval' beside a training-free engine.
    from mirrorppr.edit import edit_pixels
    from mirrorppr.ops.recipe import Recipe

    case = tmp_path / "cases" / "c1"
    case.mkdir(parents=True)
    rec = Recipe.of(("eye_resize", 100))
    for name, img in (("source", hopper), ("target", edit_pixels(hopper, rec)), ("query", astronaut),
                      ("ground-truth", edit_pixels(astronaut, rec))):
        write_image(Photo(img), case / f"{name}.png")
    ev = subprocess.run([sys.executable, "-m", "mirrorppr", "eval", str(tmp_path / "cases"), "--engine", "model",
                         "--engine", "recipe", "--weights", str(run / "weights"), "--steps", "2", "--no-facesim",
                         "--out", str(tmp_path / "ev")], capture_output=True, text=True, env=ONE_THREAD, timeout=300)
    assert ev.returncode == 0, ev.stderr
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["cases"]["model"]["c1"]["psnr"] > 10 and res["cases"]["recipe"]["c1"]["gain_edit"] > 3
    # Without weights: a clear error and the config exit code, no traceback.
    bad = subprocess.run([sys.executable, "-m", "mirrorppr", "retouch", "--engine", "model", "--weights",
                          str(tmp_path), "--source", str(src), "--target", str(tgt), "--query", str(q),
                          "-o", str(tmp_path / "x.png")], capture_output=True, text=True, env=ONE_THREAD, timeout=120)
    assert bad.returncode == 6 and "mirrorppr.json" in bad.stderr and "Traceback" not in bad.stderr


def test_paste_back_keeps_untouched_pixels_and_follows_motion(astronaut):
    import cv2

    big = np.ascontiguousarray(astronaut)
    small = cv2.resize(big, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.array_equal(paste_back(big, small, small.copy()), big)      # no change -> bit-identical
    # The model moved a patch 3 px right: the full-res result moves it ~12 px (scale 4).
    moved = small.copy()
    moved[40:80, 43:83] = small[40:80, 40:80]
    out = paste_back(big, small, moved)
    assert np.array_equal(out[:100], big[:100]) and np.array_equal(out[400:], big[400:])
    assert not np.array_equal(out, big)


def test_config_errors_are_clear(tmp_path):
    from mirrorppr.errors import ConfigError

    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {encoder: {image_size: 64}, base: {train: lora}}\ndata: {size: 64, batch_size: 1}\n"
                   "stage1: {steps: 1, lr: 1}\nstage2: {steps: 1, lr: 1}\n")
    with pytest.raises(ConfigError, match="model.base needs a path"):
        load_config(bad)
    r = subprocess.run([sys.executable, "-m", "mirrorppr", "train", "--config", "tiny", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, env=ONE_THREAD, timeout=120)
    assert r.returncode == 6 and "no training data" in r.stderr


def test_flops_estimate_matches_the_counted_matmuls(cfg):
    from diffusers import QwenImageTransformer2DModel
    from torch.utils.flop_counter import FlopCounterMode

    from mirrorppr.model.cost import dit_step

    c = cfg["model"]["base"]["config"]
    t = QwenImageTransformer2DModel(**c)
    n_img, n_txt = 2 * 64, 8
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        t(hidden_states=torch.randn(1, n_img, c["in_channels"]),
          encoder_hidden_states=torch.randn(1, n_txt, c["joint_attention_dim"]),
          encoder_hidden_states_mask=torch.ones(1, n_txt, dtype=torch.long), timestep=torch.tensor([0.5]),
          img_shapes=[[(1, 8, 8), (1, 8, 8)]])
    counted = fc.get_flop_counts()["Global"]
    est = dit_step(c, n_img, n_txt)
    # The CPU attention kernel is not counted by torch; every linear layer is.
    linear = sum(v for k, v in counted.items() if "scaled_dot_product" not in str(k))
    assert abs(linear - (est.flops - est.attention_flops)) / linear < 0.01


def test_vae_codec_and_gradient_checkpointing_train_the_adapter(cfg, batch):
    """The paper path's pieces on a tiny random Qwen-Image VAE: latents in, pixels out,
    and LoRA gradients that survive gradient checkpointing."""
    spec = json.loads(json.dumps(cfg["model"]))
    spec["residual"] = False
    spec["codec"] = {"kind": "vae", "config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1,
                                               "temperal_downsample": [False], "latents_mean": [0.0] * 4,
                                               "latents_std": [1.0] * 4}}
    spec["base"]["config"] = {**spec["base"]["config"], "in_channels": 16, "out_channels": 4}
    torch.manual_seed(0)
    pipe = MirrorPPRPipeline.build(spec)
    assert pipe.codec.kind == "vae" and pipe.codec.factor == 2
    pipe.transformer.enable_gradient_checkpointing()
    loss = FlowMatchingObjective(pipe)(batch, torch.Generator().manual_seed(0))
    loss.backward()
    # B starts at zero, so B is what gets gradient first; every adapter of the first block
    # feeds the output (the last block's text-side ones do not, and are frozen).
    grads = [p.grad for n, p in pipe.transformer.named_parameters()
             if n.startswith("transformer_blocks.0.") and "lora_B" in n]
    assert len(grads) == len(LORA_TARGETS) and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert not any(p.requires_grad for p in pipe.codec.parameters())          # the VAE stays frozen
    img = (np.random.default_rng(0).random((90, 70, 3)) * 255).astype(np.uint8)
    out = pipe(img, img, img, num_inference_steps=2, output_type="np", progress=False).images
    assert out.shape == (1, 90, 70, 3) and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1


# ---------------------------------------------------------------- diffusers conventions

@pytest.fixture(scope="module")
def saved(cfg, tmp_path_factory):
    """A tiny pipeline with a non-trivial adapter, saved."""
    torch.manual_seed(3)
    pipe = MirrorPPRPipeline.build(cfg["model"])
    with torch.no_grad():
        for n, p in pipe.transformer.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    return pipe.save_pretrained(tmp_path_factory.mktemp("conv") / "w")


def test_pipeline_takes_pil_and_returns_images_at_the_query_size(saved, astronaut, hopper):
    from PIL import Image

    pipe = MirrorPPRPipeline.from_pretrained(saved)
    query = Image.fromarray(np.ascontiguousarray(astronaut[40:470, 60:380]))       # 320 x 430, not square
    out = pipe(Image.fromarray(hopper), Image.fromarray(hopper), query, num_inference_steps=2, progress=False)
    assert isinstance(out, MirrorPPRPipelineOutput)
    assert len(out.images) == 1 and isinstance(out.images[0], Image.Image) and out.images[0].size == query.size
    (tup,) = pipe(hopper, hopper, query, num_inference_steps=2, return_dict=False, progress=False)
    assert tup[0].size == query.size
    # Tensors in [0, 1] are read too, and "pt" gives tensors back.
    t = torch.from_numpy(np.array(query)).permute(2, 0, 1).float() / 255
    pt = pipe(hopper, hopper, t, num_inference_steps=2, output_type="pt", progress=False).images
    assert pt.shape == (1, 3, 430, 320) and 0 <= float(pt.min()) <= float(pt.max()) <= 1
    with pytest.raises(ValueError, match="output_type"):
        pipe(hopper, hopper, query, output_type="latent")


def test_generator_reproducibility_and_a_batch_of_two(saved, astronaut, hopper):
    pipe = MirrorPPRPipeline.from_pretrained(saved)
    small = np.ascontiguousarray(astronaut[:300, :240])
    gen = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    kw = dict(num_inference_steps=2, output_type="np", progress=False)
    one = pipe(hopper, hopper, astronaut, generator=gen(1), **kw).images[0]
    assert np.array_equal(one, pipe(hopper, hopper, astronaut, generator=gen(1), **kw).images[0])
    assert not np.array_equal(one, pipe(hopper, hopper, astronaut, generator=gen(2), **kw).images[0])
    # A batch of two queries of different sizes, one generator each: each result is the
    # one that query gets alone with its generator, at its own size.
    both = pipe(hopper, hopper, [astronaut, small], generator=[gen(1), gen(2)], **kw).images
    assert [b.shape for b in both] == [(512, 512, 3), (300, 240, 3)]
    assert np.array_equal(both[0], one)
    assert np.array_equal(both[1], pipe(hopper, hopper, small, generator=gen(2), **kw).images[0])
    # Two queries of one size are denoised together (one batch) and still match.
    pair = pipe([hopper, astronaut], [hopper, astronaut], [astronaut, astronaut], generator=[gen(1), gen(1)],
                **kw).images
    assert pair.shape == (2, 512, 512, 3) and np.array_equal(pair[0], one)
    assert not np.array_equal(pair[0], pair[1])           # another exemplar, another result
    with pytest.raises(ValueError, match="generators"):
        pipe(hopper, hopper, [astronaut, small], generator=[gen(1)], **kw)


def test_torch_dtype_is_honoured_and_unknown_arguments_refused(saved, astronaut, hopper):
    pipe = MirrorPPRPipeline.from_pretrained(saved, torch_dtype=torch.bfloat16)
    for m in (pipe.encoder, pipe.rformer, pipe.connector, pipe.transformer):
        assert m.dtype == torch.bfloat16
    out = pipe(hopper, hopper, astronaut, num_inference_steps=2, output_type="np", progress=False).images
    assert out.shape == (1, 512, 512, 3) and np.isfinite(out).all()
    with pytest.raises(TypeError, match="dtype"):
        MirrorPPRPipeline.from_pretrained(saved, dtype=torch.bfloat16)       # the old, silently ignored name
    with pytest.raises(TypeError, match="revision"):
        MirrorPPRPipeline.from_pretrained(saved, revision="main")


def test_sizes_come_from_one_registry(cfg):
    from mirrorppr.model.sizes import SIZES

    assert cfg["model"]["rformer"] == SIZES["tiny"]["rformer"]
    over = load_config("tiny", ["model.rformer.num_layers=3"])
    assert over["model"]["rformer"]["num_layers"] == 3 and over["model"]["rformer"]["width"] == 64
    pipe = MirrorPPRPipeline.build(over["model"])
    assert len(pipe.rformer.blocks) == 3 and pipe.connector.config.out_dim == 64


def test_loader_keeps_the_query_aspect_in_buckets(cfg):
    """Training sizes queries as inference does: aspect kept, about size^2 pixels."""
    from mirrorppr.data.loader import bucket_size
    from mirrorppr.model.pipeline import working_size

    shapes = set()
    for i, b in enumerate(Batches(cfg, 0, 1)):
        q = b["query"]
        assert q.shape == b["ground_truth"].shape and b["source"].shape[-2:] == (64, 64)
        shapes.add(tuple(q.shape[-2:]))
        if i == 12:
            break
    assert any(h != w for h, w in shapes), shapes                 # not squashed to squares
    for h, w in shapes:
        assert 0.7 < h * w / 64 ** 2 < 1.4 and h % 4 == 0 and w % 4 == 0
    assert bucket_size(576, 448, 64, 4) == working_size(576, 448, 64, 4)

