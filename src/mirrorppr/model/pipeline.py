"""``MirrorPPRPipeline``: exemplar (source, target) + query -> retouched query.

The operation tokens from the R-Former and connector condition the DiT (after the
Qwen2.5-VL tokens of the query when that encoder is available); the query's latents are
concatenated with the noisy latents as Qwen-Image-Edit does; the flow-matching ODE is
integrated with Euler steps on a resolution-shifted schedule.

Weights folder (``save_pretrained`` / ``from_pretrained``)::

    mirrorppr.json   what to build: encoder, base (path or from-scratch config), codec, LoRA
    rformer/  connector/           always (trained)
    lora/adapter.safetensors       when the base is adapted with LoRA
    transformer/  encoder/         when trained from scratch
    head/                          Stage-I head (training only)
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch
from diffusers import DiffusionPipeline

from safetensors.torch import save_file

from ..errors import ConfigError
from .backbone import add_lora, build_transformer, default_scheduler, image_shift, pack, unpack
from .codec import build_codec
from .connector import Connector
from .encoder import PatchEncoder
from .rformer import RFormer

FORMAT = "mirrorppr.model/1"


def working_size(h: int, w: int, resolution: int, multiple: int) -> tuple[int, int]:
    """(h, w) with about ``resolution``^2 pixels, same aspect, sides a multiple of ``multiple``."""
    k = resolution / math.sqrt(h * w)
    return (max(multiple, int(round(h * k / multiple)) * multiple),
            max(multiple, int(round(w * k / multiple)) * multiple))


def to_tensor(images, hw: tuple[int, int]) -> torch.Tensor:
    """uint8 RGB arrays (or one array) -> (B, 3, h, w) float in [-1, 1]."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = []
    for im in images:
        im = np.asarray(im)
        if im.shape[:2] != hw:
            down = im.shape[0] * im.shape[1] > hw[0] * hw[1]
            im = cv2.resize(im, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if down else cv2.INTER_CUBIC)
        out.append(torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1))).float() / 127.5 - 1)
    return torch.stack(out)


def _cpu(state: dict) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def base_state_dict(transformer) -> dict:
    """The transformer's own weights, without LoRA adapters (names as before injection)."""
    return {k.replace(".base_layer.", "."): v for k, v in transformer.state_dict().items() if "lora_" not in k}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def build_extractor(spec: dict) -> tuple[PatchEncoder, RFormer, dict]:
    """The Retouching Operation Extractor (patch encoder + R-Former) of a model spec;
    returns them with a copy of the spec completed by the sizes they imply."""
    spec = json.loads(json.dumps(spec))             # a private, JSON-clean copy
    e = spec["encoder"]
    if e.get("path"):
        encoder = PatchEncoder.from_pretrained(e["path"], e.get("image_size"), frozen=e.get("frozen", True))
    else:
        encoder = PatchEncoder.from_config(e["config"], int(e["image_size"]), frozen=e.get("frozen", False))
    r = dict(spec.get("rformer", {}))
    r.setdefault("feature_dim", encoder.dim)
    r.setdefault("num_patches", encoder.num_patches())
    spec["rformer"] = r
    return encoder, RFormer(**r), spec


class MirrorPPRPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "encoder->rformer->connector->transformer->codec"
    _optional_components = ["condition_encoder"]

    def __init__(self, encoder, rformer, connector, transformer, codec, scheduler,
                 condition_encoder=None, spec: dict | None = None) -> None:
        super().__init__()
        self.register_modules(encoder=encoder, rformer=rformer, connector=connector, transformer=transformer,
                              codec=codec, scheduler=scheduler, condition_encoder=condition_encoder)
        self.spec = dict(spec or {})

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, spec: dict, dtype: torch.dtype = torch.float32) -> "MirrorPPRPipeline":
        """Fresh modules from a model spec (the ``model`` section of a training config)."""
        encoder, rformer, spec = build_extractor(spec)
        r = spec["rformer"]
        transformer = build_transformer(spec["base"], dtype)
        c = dict(spec.get("connector", {}))
        c.setdefault("width", r.get("width", 768))
        c.setdefault("out_dim", int(transformer.config.joint_attention_dim))
        spec["connector"] = c
        connector = Connector(**c)
        codec = build_codec(spec.get("codec", {"kind": "pixel"}), dtype)
        want = codec.channels * 4
        if int(transformer.config.in_channels) != want:
            raise ConfigError(f"base transformer takes {transformer.config.in_channels} channels per token but "
                              f"the {codec.kind} codec gives {want} (4 x {codec.channels})")
        if spec["base"].get("train", "lora") == "lora":
            add_lora(transformer, spec["base"].get("lora", {}))
        cond = None
        if spec.get("condition", {}).get("vl") and spec["base"].get("path"):
            from .condition import QwenVLCondition
            cond = QwenVLCondition(spec["base"]["path"], dtype)
        return cls(encoder, rformer, connector, transformer, codec, default_scheduler(), cond, spec)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, base_path: str | None = None,
                        encoder_path: str | None = None, dtype: torch.dtype = torch.float32,
                        **_) -> "MirrorPPRPipeline":
        """Load a weights folder written by :meth:`save_pretrained` (or by training).

        ``base_path`` / ``encoder_path`` override where the frozen base model and MAE
        encoder were on the training machine."""
        path = Path(path)
        meta_file = path / "mirrorppr.json"
        if not meta_file.is_file():
            raise ConfigError(f"{path}: not a MirrorPPR weights folder (mirrorppr.json missing); "
                              "train one with 'mirrorppr train --config ...'")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{meta_file}: unknown format {meta.get('format')!r}")
        spec = meta["model"]
        saved_spec = json.loads(json.dumps(spec))      # what a re-save must write back
        if base_path:
            spec["base"]["path"] = base_path
        if encoder_path:
            spec["encoder"]["path"] = encoder_path
        if (path / "encoder").is_dir():
            spec["encoder"]["path"] = str(path / "encoder")
        if (path / "transformer").is_dir():        # trained (or random) base kept with the weights
            spec["base"] = {**spec["base"], "path": str(path)}
        pipe = cls.build(spec, dtype)
        pipe.rformer.load_state_dict(RFormer.from_pretrained(path / "rformer").state_dict())
        pipe.connector.load_state_dict(Connector.from_pretrained(path / "connector").state_dict())
        lora = path / "lora" / "adapter.safetensors"
        if lora.is_file():
            from peft.utils import set_peft_model_state_dict
            from safetensors.torch import load_file

            res = set_peft_model_state_dict(pipe.transformer, load_file(lora))
            if getattr(res, "unexpected_keys", None):
                raise ConfigError(f"{lora}: adapter does not match the base ({len(res.unexpected_keys)} keys)")
        pipe.spec = {**saved_spec, "rformer": pipe.spec["rformer"], "connector": pipe.spec["connector"]}
        pipe.spec["resolution"] = meta.get("resolution", spec.get("resolution", 256))
        pipe.spec["trained_steps"] = meta.get("trained_steps")
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)

    def save_pretrained(self, path: str | os.PathLike, extra: dict | None = None, **_) -> Path:
        """Write the trained parts (not the frozen base) into ``path``, atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.rformer.save_pretrained(tmp / "rformer")
        self.connector.save_pretrained(tmp / "connector")
        if not self.spec["encoder"].get("path") or not self.encoder.frozen:
            self.encoder.save_pretrained(tmp / "encoder")
        lora = self.spec["base"].get("train", "lora") == "lora"
        if lora:
            from peft.utils import get_peft_model_state_dict

            (tmp / "lora").mkdir()
            save_file(_cpu(get_peft_model_state_dict(self.transformer)), tmp / "lora" / "adapter.safetensors")
        if not lora or not self.spec["base"].get("path"):
            # Trained from scratch, or a random base under the adapter: its weights are
            # part of the model.
            (tmp / "transformer").mkdir()
            self.transformer.save_config(tmp / "transformer")
            save_file(_cpu(base_state_dict(self.transformer)),
                      tmp / "transformer" / "diffusion_pytorch_model.safetensors")
        spec = json.loads(json.dumps(self.spec))
        spec["encoder"] = {k: v for k, v in spec["encoder"].items() if k != "path"} \
            if (tmp / "encoder").is_dir() else spec["encoder"]
        meta = {"format": FORMAT, "model": spec, "resolution": self.spec.get("resolution", 256),
                **(extra or {})}
        (tmp / "mirrorppr.json").write_text(json.dumps(meta, indent=1))
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
        return path

    # ------------------------------------------------------------ building blocks
    @property
    def resolution(self) -> int:
        return int(self.spec.get("resolution", 256))

    @property
    def residual(self) -> bool:
        """Diffuse the edit (ground truth minus query latents) instead of the image: a
        from-scratch deviation that makes "change nothing" the easy default."""
        return bool(self.spec.get("residual", False))

    @property
    def multiple(self) -> int:
        return 2 * self.codec.factor

    def operation_tokens(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(torch.cat([source, target]))
        fs, ft = feats.chunk(2)
        return self.rformer(fs, ft)

    def condition(self, source: torch.Tensor, target: torch.Tensor,
                  query_rgb: list[np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-stream tokens and their mask: [VL tokens of the query,] operation tokens."""
        tokens = self.connector(self.operation_tokens(source, target))
        mask = torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)
        if self.condition_encoder is not None and query_rgb is not None:
            emb, m = self.condition_encoder(query_rgb)
            tokens = torch.cat([emb.to(tokens.dtype), tokens], 1)
            mask = torch.cat([m.to(mask.dtype), mask], 1)
        return tokens, mask

    def velocity(self, noisy: torch.Tensor, query_tokens: torch.Tensor, sigma: torch.Tensor,
                 cond: torch.Tensor, mask: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
        """Predicted flow ``noise - clean`` for the noisy tokens (query tokens appended)."""
        b = noisy.shape[0]
        grid = (1, latent_hw[0] // 2, latent_hw[1] // 2)
        dtype = self.transformer.dtype
        out = self.transformer(hidden_states=torch.cat([noisy, query_tokens], 1).to(dtype),
                               timestep=sigma.to(dtype), encoder_hidden_states=cond.to(dtype),
                               encoder_hidden_states_mask=mask, img_shapes=[[grid, grid]] * b,
                               return_dict=False)[0]
        return out[:, : noisy.shape[1]].float()

    def shift_mu(self, seq_len: int) -> float:
        c = self.scheduler.config
        return image_shift(seq_len, c.base_image_seq_len, c.max_image_seq_len, c.base_shift, c.max_shift)

    # ------------------------------------------------------------ inference
    @torch.no_grad()
    def __call__(self, source: np.ndarray, target: np.ndarray, query: np.ndarray,
                 num_inference_steps: int = 40, seed: int = 0, resolution: int | None = None,
                 progress: bool = True) -> np.ndarray:
        """Retouch ``query`` (uint8 RGB) as ``target`` retouches ``source``; returns the
        result (uint8 RGB) at the model's working size (about ``resolution``^2 pixels)."""
        dev = self._execution_device
        es = self.encoder.image_size
        src, tgt = to_tensor(source, (es, es)).to(dev), to_tensor(target, (es, es)).to(dev)
        hw = working_size(query.shape[0], query.shape[1], resolution or self.resolution, self.multiple)
        q = to_tensor(query, hw).to(dev)
        cond, mask = self.condition(src, tgt, list(to_uint8(q)))
        zq = self.codec.encode(q)
        lh, lw = zq.shape[-2:]
        qtok = pack(zq.float())
        gen = torch.Generator("cpu").manual_seed(int(seed))
        x = torch.randn(qtok.shape, generator=gen).to(dev)
        sigmas = np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps)
        self.scheduler.set_timesteps(sigmas=sigmas, mu=self.shift_mu(x.shape[1]), device=dev)
        self.scheduler.set_begin_index(0)
        self.set_progress_bar_config(disable=not progress)
        for t in self.progress_bar(self.scheduler.timesteps):
            v = self.velocity(x, qtok, (t / 1000).expand(1).to(dev), cond, mask, (lh, lw))
            x = self.scheduler.step(v, t, x, return_dict=False)[0]
        z = unpack(x, lh, lw)
        if self.residual:
            z = z + zq.float()
        return to_uint8(self.codec.decode(z))[0]
