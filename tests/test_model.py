"""The learned MirrorPPR system at the ``tiny`` config: real modules, real photos, CPU."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from mirrorppr.data import SimConfig, make_tasks, run_tasks  # noqa: E402
from mirrorppr.eval.simface import make_portraits  # noqa: E402
from mirrorppr.imageio import Photo, read_image, write_image  # noqa: E402
from mirrorppr.model.backbone import LORA_TARGETS  # noqa: E402
from mirrorppr.model.engine import paste_back  # noqa: E402
from mirrorppr.model.head import ReconstructionHead  # noqa: E402
from mirrorppr.model.pipeline import MirrorPPRPipeline, build_extractor  # noqa: E402
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
    return Batches(cfg, 0, 1).fixed(2)


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
    enc, rf, spec = build_extractor(cfg["model"])
    head = ReconstructionHead(token_width=64, num_queries=8, feature_dim=enc.dim, patch_size=8,
                              num_patches=enc.num_patches(), **spec["head"])
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
    expected = 0
    for name, mod in t.named_modules():
        if name.startswith("transformer_blocks.") and any(name.endswith("." + k) for k in LORA_TARGETS) \
                and hasattr(mod, "base_layer"):
            expected += rank * (mod.base_layer.in_features + mod.base_layer.out_features)
    n_blocks = len(t.transformer_blocks)
    assert sum(p.numel() for p in trainable.values()) == expected > 0
    assert len(trainable) == 2 * len(LORA_TARGETS) * n_blocks
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
    a = pipe(hopper, hopper, astronaut, num_inference_steps=3, seed=5, progress=False)
    b = again(hopper, hopper, astronaut, num_inference_steps=3, seed=5, progress=False)
    assert np.array_equal(a, b)
    c = again(hopper, hopper, astronaut, num_inference_steps=3, seed=6, progress=False)
    assert not np.array_equal(a, c)           # the seed matters: outputs are not constant
    meta = json.loads((tmp_path / "w" / "mirrorppr.json").read_text())
    assert meta["format"] == "mirrorppr.model/1"
    assert (tmp_path / "w" / "lora" / "adapter.safetensors").is_file()


def test_train_cli_resumes_then_model_engine_retouches_a_real_photo(cfg, shards, tmp_path, astronaut, hopper):
    run = tmp_path / "run"
    base = [sys.executable, "-m", "mirrorppr", "train", "--config", "tiny", "--data", str(shards),
            "--out", str(run)]
    first = subprocess.run(base + ["--steps", "3"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # Resumed with gradient accumulation and checkpointing switched on.
    second = subprocess.run(base + ["--steps", "6", "--set", "train.grad_accum=2", "--set",
                                    "train.grad_checkpointing=true"], capture_output=True, text=True, timeout=300)
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
                        "-o", str(out), "--steps", "3"], capture_output=True, text=True, timeout=300)
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
                         "--out", str(tmp_path / "ev")], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["cases"]["model"]["c1"]["psnr"] > 10 and res["cases"]["recipe"]["c1"]["gain_edit"] > 3
    # Without weights: a clear error and the config exit code, no traceback.
    bad = subprocess.run([sys.executable, "-m", "mirrorppr", "retouch", "--engine", "model", "--weights",
                          str(tmp_path), "--source", str(src), "--target", str(tgt), "--query", str(q),
                          "-o", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
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
                       capture_output=True, text=True, timeout=120)
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
    # feeds the output (the last block's text-side ones do not, by construction).
    grads = [p.grad for n, p in pipe.transformer.named_parameters()
             if n.startswith("transformer_blocks.0.") and "lora_B" in n]
    assert len(grads) == len(LORA_TARGETS) and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert not any(p.requires_grad for p in pipe.codec.parameters())          # the VAE stays frozen
    img = (np.random.default_rng(0).random((90, 70, 3)) * 255).astype(np.uint8)
    out = pipe(img, img, img, num_inference_steps=2, progress=False)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
