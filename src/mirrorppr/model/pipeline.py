"""``MirrorPPRPipeline``: exemplar (source, target) + query -> retouched query.

The operation tokens from the R-Former and connector condition the DiT (after the
Qwen2.5-VL tokens of the query when that encoder is available); the query's latents are
concatenated with the noisy latents as Qwen-Image-Edit does; the flow-matching ODE is
integrated with Euler steps on a resolution-shifted schedule.

    >>> pipe = MirrorPPRPipeline.from_pretrained("runs/small/weights", torch_dtype=torch.bfloat16)
    >>> out = pipe(source, target, image, num_inference_steps=40, generator=torch.manual_seed(0))
    >>> out.images[0]                    # a PIL image of the query's size

Weights folder (``save_pretrained`` / ``from_pretrained``); every module's size lives in
its own ``config.json``, ``mirrorppr.json`` holds only what no module config says::

    mirrorppr.json   format, where the frozen parts live (base / encoder paths), LoRA
                     settings, codec, resolution, residual, trained steps
    rformer/  connector/  scheduler/     always
    lora/adapter.safetensors             when the base is adapted with LoRA
    transformer/                         when the base was trained (or is random) here
    encoder/                             when the patch encoder was trained here
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import save_file

from ..errors import ConfigError
from .blocks import save_model
from .backbone import add_lora, build_transformer, default_scheduler, freeze_dead_ends, image_shift, pack, unpack
from .codec import build_codec
from .connector import Connector
from .encoder import PatchEncoder
from .rformer import RFormer

FORMAT = "mirrorppr.model/2"
OUTPUT_TYPES = ("pil", "np", "pt")


@dataclass
class MirrorPPRPipelineOutput(BaseOutput):
    """``images``: a list of PIL images (``output_type="pil"``), or float arrays / tensors
    in [0, 1] (``"np"``: (B, H, W, 3), ``"pt"``: (B, 3, H, W); a list when the queries'
    sizes differ), each at its query's size."""

    images: list | np.ndarray | torch.Tensor


def working_size(h: int, w: int, resolution: int, multiple: int) -> tuple[int, int]:
    """(h, w) with about ``resolution``^2 pixels, same aspect, sides a multiple of ``multiple``."""
    k = resolution / math.sqrt(h * w)
    return (max(multiple, int(round(h * k / multiple)) * multiple),
            max(multiple, int(round(w * k / multiple)) * multiple))


def _resize(im: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if im.shape[:2] == tuple(hw):
        return im
    down = im.shape[0] * im.shape[1] > hw[0] * hw[1]
    return cv2.resize(im, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if down else cv2.INTER_CUBIC)


def to_tensor(images, hw: tuple[int, int]) -> torch.Tensor:
    """uint8 RGB arrays (or one array) -> (B, 3, h, w) float in [-1, 1]."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = [torch.from_numpy(np.ascontiguousarray(_resize(np.asarray(im), hw).transpose(2, 0, 1))).float()
           / 127.5 - 1 for im in images]
    return torch.stack(out)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def rgb_list(images) -> list[np.ndarray]:
    """PIL images, uint8 / float [0, 1] arrays (H, W, 3) or tensors in [0, 1] ((3, H, W) or
    (B, 3, H, W)), alone or in a list -> a list of uint8 RGB arrays."""
    from PIL import Image

    if isinstance(images, torch.Tensor):
        t = images[None] if images.ndim == 3 else images
        return [(t_.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy() for t_ in t]
    if isinstance(images, (Image.Image, np.ndarray)):
        images = [images]
    out = []
    for im in images:
        if isinstance(im, Image.Image):
            out.append(np.asarray(im.convert("RGB")))
        elif isinstance(im, torch.Tensor):
            out.extend(rgb_list(im))
        else:
            a = np.asarray(im)
            if a.ndim == 2:
                a = np.repeat(a[..., None], 3, axis=2)
            if a.dtype != np.uint8:
                a = (np.clip(a.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
            out.append(np.ascontiguousarray(a[..., :3]))
    return out


def _cpu(state: dict) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def base_state_dict(state: dict) -> dict:
    """A transformer state dict without LoRA adapters (names as before injection)."""
    return {k.replace(".base_layer.", "."): v for k, v in state.items() if "lora_" not in k}


def build_extractor(spec: dict) -> tuple[PatchEncoder, RFormer]:
    """The Retouching Operation Extractor (patch encoder + R-Former) of a model spec."""
    e = spec["encoder"]
    if e.get("path"):
        encoder = PatchEncoder.from_vit(e["path"], e.get("image_size"), frozen=e.get("frozen", True))
    else:
        encoder = PatchEncoder(e["config"], int(e["image_size"]), bool(e.get("frozen", False)))
    r = spec["rformer"]
    rformer = RFormer(feature_dim=encoder.dim, width=r["width"], num_layers=r["num_layers"],
                      num_heads=r["num_heads"], num_queries=r["num_queries"], num_patches=encoder.num_patches())
    return encoder, rformer


def settings_of(spec: dict) -> dict:
    """What ``mirrorppr.json`` keeps of a model spec: everything no module config holds."""
    base = {k: v for k, v in spec["base"].items() if k != "config"}
    enc = {k: v for k, v in spec["encoder"].items() if k != "config"}
    return json.loads(json.dumps({"resolution": int(spec.get("resolution", 256)),
                                  "residual": bool(spec.get("residual", False)), "base": base, "encoder": enc,
                                  "codec": spec.get("codec", {"kind": "pixel", "factor": 8}),
                                  "condition": spec.get("condition", {})}))


class MirrorPPRPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "encoder->rformer->connector->transformer->codec"
    _optional_components = ["condition_encoder"]

    def __init__(self, encoder, rformer, connector, transformer, codec, scheduler,
                 condition_encoder=None) -> None:
        super().__init__()
        self.register_modules(encoder=encoder, rformer=rformer, connector=connector, transformer=transformer,
                              codec=codec, scheduler=scheduler, condition_encoder=condition_encoder)
        self.settings: dict = {}

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, spec: dict, torch_dtype: torch.dtype = torch.float32) -> "MirrorPPRPipeline":
        """Fresh modules from a model spec (a size of :data:`mirrorppr.model.sizes.SIZES`,
        as a training config's ``model`` section resolves to)."""
        encoder, rformer = build_extractor(spec)
        transformer = build_transformer(spec["base"], torch_dtype)
        c = spec["connector"]
        connector = Connector(width=c.get("width", rformer.config.width), num_layers=c["num_layers"],
                              num_heads=c["num_heads"],
                              out_dim=c.get("out_dim", int(transformer.config.joint_attention_dim)))
        codec = build_codec(spec.get("codec", {"kind": "pixel", "factor": 8}), torch_dtype)
        want = codec.channels * 4
        if int(transformer.config.in_channels) != want:
            raise ConfigError(f"base transformer takes {transformer.config.in_channels} channels per token but "
                              f"the {codec.kind} codec gives {want} (4 x {codec.channels})")
        if spec["base"].get("train", "lora") == "lora":
            add_lora(transformer, spec["base"].get("lora", {}))
        freeze_dead_ends(transformer)
        cond = None
        if spec.get("condition", {}).get("vl") and spec["base"].get("path"):
            from .condition import QwenVLCondition
            cond = QwenVLCondition(spec["base"]["path"], torch_dtype)
        pipe = cls(encoder, rformer, connector, transformer, codec, default_scheduler(), cond)
        pipe.settings = settings_of(spec)
        return pipe

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, torch_dtype: torch.dtype = torch.float32,
                        base_path: str | None = None, encoder_path: str | None = None,
                        **kwargs) -> "MirrorPPRPipeline":
        """Load a weights folder written by :meth:`save_pretrained` (or by training).

        ``base_path`` / ``encoder_path``: where the frozen base model and MAE encoder are
        on this machine, if not where they were during training. Other arguments are
        refused (a misspelt ``torch_dtype`` must not pass silently)."""
        if kwargs:
            raise TypeError(f"MirrorPPRPipeline.from_pretrained: unknown arguments {', '.join(sorted(kwargs))}")
        from diffusers import FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

        path = Path(path)
        meta_file = path / "mirrorppr.json"
        if not meta_file.is_file():
            raise ConfigError(f"{path}: not a MirrorPPR weights folder (mirrorppr.json missing); "
                              "train one with 'mirrorppr train --config ...'")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{meta_file}: format {meta.get('format')!r}, this version reads {FORMAT} "
                              "(weights from an older version: train again)")
        st = meta["settings"]
        dt = torch_dtype
        if (path / "encoder").is_dir():
            encoder = PatchEncoder.from_pretrained(path / "encoder", torch_dtype=dt)
        else:
            e = st["encoder"]
            encoder = PatchEncoder.from_vit(encoder_path or e["path"], e.get("image_size"), e.get("frozen", True),
                                            torch_dtype=dt)
        rformer = RFormer.from_pretrained(path / "rformer", torch_dtype=dt)
        connector = Connector.from_pretrained(path / "connector", torch_dtype=dt)
        if (path / "transformer").is_dir():
            transformer = QwenImageTransformer2DModel.from_pretrained(path / "transformer", torch_dtype=dt)
        else:
            transformer = build_transformer({"path": base_path or st["base"]["path"]}, dt)
        codec = build_codec(st["codec"], dt)
        lora = path / "lora" / "adapter.safetensors"
        if st["base"].get("train", "lora") == "lora":
            from peft.utils import set_peft_model_state_dict
            from safetensors.torch import load_file

            add_lora(transformer, st["base"].get("lora", {}))
            res = set_peft_model_state_dict(transformer, load_file(lora))
            if getattr(res, "unexpected_keys", None):
                raise ConfigError(f"{lora}: adapter does not match the base ({len(res.unexpected_keys)} keys)")
        else:
            transformer.requires_grad_(True)             # trained in full (resumed)
        freeze_dead_ends(transformer)
        cond = None
        if st.get("condition", {}).get("vl") and (base_path or st["base"].get("path")):
            from .condition import QwenVLCondition
            cond = QwenVLCondition(base_path or st["base"]["path"], torch_dtype)
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(path / "scheduler") \
            if (path / "scheduler").is_dir() else default_scheduler()
        pipe = cls(encoder, rformer, connector, transformer, codec, scheduler, cond)
        pipe.settings = {**st, "trained_steps": meta.get("trained_steps")}
        return pipe

    def save_pretrained(self, path: str | os.PathLike, extra: dict | None = None,
                        state_dict: dict | None = None, **kwargs) -> Path:
        """Write the trained parts (not the frozen base) into ``path``, atomically.
        ``state_dict``: full weights gathered from a sharded training model (keys prefixed
        ``encoder.``, ``rformer.``, ``connector.``, ``transformer.``); else the modules' own."""
        if kwargs:
            raise TypeError(f"MirrorPPRPipeline.save_pretrained: unknown arguments {', '.join(sorted(kwargs))}")
        path = Path(path)

        def part(name: str) -> dict:
            mod = getattr(self, name)
            if state_dict is None:
                return mod.state_dict()
            p = name + "."
            return {k[len(p):]: v for k, v in state_dict.items() if k.startswith(p)}

        tmp = path.with_name(path.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(self.rformer, tmp / "rformer", part("rformer"))
        save_model(self.connector, tmp / "connector", part("connector"))
        self.scheduler.save_pretrained(tmp / "scheduler")
        if not self.settings["encoder"].get("path") or not self.encoder.frozen:
            save_model(self.encoder, tmp / "encoder", part("encoder"))
        base = self.settings["base"]
        lora = base.get("train", "lora") == "lora"
        tstate = part("transformer")
        if lora:
            from peft.utils import get_peft_model_state_dict

            (tmp / "lora").mkdir()
            save_file(_cpu(get_peft_model_state_dict(self.transformer, state_dict=tstate)),
                      tmp / "lora" / "adapter.safetensors")
        if not lora or not base.get("path"):
            # Trained from scratch, or a random base under the adapter: its weights are
            # part of the model.
            (tmp / "transformer").mkdir()
            self.transformer.save_config(tmp / "transformer")
            save_file(_cpu(base_state_dict(tstate)), tmp / "transformer" / "diffusion_pytorch_model.safetensors")
        st = {k: v for k, v in self.settings.items() if k != "trained_steps"}
        if (tmp / "encoder").is_dir():     # its size is in encoder/config.json
            st["encoder"] = {k: v for k, v in st["encoder"].items() if k not in ("image_size", "frozen")}
        meta = {"format": FORMAT, "settings": st, **(extra or {})}
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
        return int(self.settings.get("resolution", 256))

    @property
    def residual(self) -> bool:
        """Diffuse the edit (ground truth minus query latents) instead of the image: a
        from-scratch deviation that makes "change nothing" the easy default."""
        return bool(self.settings.get("residual", False))

    @property
    def multiple(self) -> int:
        return 2 * self.codec.factor

    def operation_tokens(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(torch.cat([source, target]))
        fs, ft = feats.to(self.rformer.dtype).chunk(2)
        return self.rformer(fs, ft)

    def condition(self, source: torch.Tensor, target: torch.Tensor,
                  query_rgb: list[np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-stream tokens and their mask: [VL tokens of the query,] operation tokens."""
        tok = self.operation_tokens(source, target)
        tokens = self.connector(tok.to(self.connector.dtype))
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
    def _sample(self, src: torch.Tensor, tgt: torch.Tensor, q: torch.Tensor, steps: int, generator,
                progress: bool) -> np.ndarray:
        """One batch of queries of one working size -> uint8 results at that size."""
        dev = self._execution_device
        cond, mask = self.condition(src, tgt, list(to_uint8(q)))
        zq = self.codec.encode(q.to(self.codec.dtype)).float()
        lh, lw = zq.shape[-2:]
        qtok = pack(zq)
        x = randn_tensor(qtok.shape, generator=generator, device=dev, dtype=torch.float32)
        sigmas = np.linspace(1.0, 1.0 / steps, steps)
        self.scheduler.set_timesteps(sigmas=sigmas, mu=self.shift_mu(x.shape[1]), device=dev)
        self.scheduler.set_begin_index(0)
        for t in self.progress_bar(self.scheduler.timesteps) if progress else self.scheduler.timesteps:
            v = self.velocity(x, qtok, (t / 1000).expand(x.shape[0]).to(dev), cond, mask, (lh, lw))
            x = self.scheduler.step(v, t, x, return_dict=False)[0]
        z = unpack(x, lh, lw)
        if self.residual:
            z = z + zq
        return to_uint8(self.codec.decode(z.to(self.codec.dtype)))

    @torch.no_grad()
    def __call__(self, source, target, image, num_inference_steps: int = 40,
                 generator: torch.Generator | list[torch.Generator] | None = None, output_type: str = "pil",
                 return_dict: bool = True, resolution: int | None = None, working_size_output: bool = False,
                 progress: bool = True):
        """Retouch ``image`` (the query) as ``target`` retouches ``source``.

        Each of ``source``, ``target``, ``image`` is a PIL image, an array (uint8, or float
        in [0, 1]), a tensor in [0, 1], or a list of them (a batch; a single exemplar is
        shared by every query). ``generator``: one, or one per query. Results come at each
        query's size (``working_size_output``: at the model's working size, about
        ``resolution``^2 pixels, what the ``model`` engine carries to full resolution)."""
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type {output_type!r}: one of {', '.join(OUTPUT_TYPES)}")
        queries = rgb_list(image)
        srcs, tgts = rgb_list(source), rgb_list(target)
        n = len(queries)
        if len(srcs) != len(tgts) or len(srcs) not in (1, n):
            raise ValueError(f"{len(srcs)} sources and {len(tgts)} targets for {n} queries "
                             "(one exemplar for all, or one per query)")
        if len(srcs) == 1:
            srcs, tgts = srcs * n, tgts * n
        if isinstance(generator, list) and len(generator) != n:
            raise ValueError(f"{len(generator)} generators for {n} queries")
        dev = self._execution_device
        es = self.encoder.image_size
        res = resolution or self.resolution
        sizes = [working_size(q.shape[0], q.shape[1], res, self.multiple) for q in queries]
        results: list[np.ndarray | None] = [None] * n
        # Queries of one working size are denoised together; sizes in order of first use.
        for hw in dict.fromkeys(sizes):
            idx = [i for i, s in enumerate(sizes) if s == hw]
            gen = [generator[i] for i in idx] if isinstance(generator, list) else generator
            src = to_tensor([srcs[i] for i in idx], (es, es)).to(dev)
            tgt = to_tensor([tgts[i] for i in idx], (es, es)).to(dev)
            q = to_tensor([queries[i] for i in idx], hw).to(dev)
            for i, o in zip(idx, self._sample(src, tgt, q, num_inference_steps, gen, progress)):
                results[i] = o if working_size_output else _resize(o, queries[i].shape[:2])
        images = self._postprocess(results, output_type)
        self.maybe_free_model_hooks()
        return MirrorPPRPipelineOutput(images=images) if return_dict else (images,)

    @staticmethod
    def _postprocess(results: list[np.ndarray], output_type: str):
        if output_type == "pil":
            from PIL import Image
            return [Image.fromarray(r) for r in results]
        same = len({r.shape for r in results}) == 1
        if output_type == "np":
            arr = [r.astype(np.float32) / 255.0 for r in results]
            return np.stack(arr) if same else arr
        ts = [torch.from_numpy(r).permute(2, 0, 1).float() / 255.0 for r in results]
        return torch.stack(ts) if same else ts
