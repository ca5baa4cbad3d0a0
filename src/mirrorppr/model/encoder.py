"""Patch features of an image from a ViT-MAE encoder (transformers ``ViTMAEModel``).

The paper freezes a pretrained MAE ViT-L/16 (weights from a local folder); small runs
train a tiny one from scratch. Masking is switched off and patches keep their order
(MAE shuffles them by default, even with nothing masked).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from ..errors import ConfigError

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class PatchEncoder(ModelMixin, ConfigMixin):
    """Images in [-1, 1] (B, 3, H, W) -> patch features (B, N, D), CLS dropped.

    ``vit_config``: a ``transformers.ViTMAEConfig`` as a dict (its one home: the saved
    ``config.json``); ``image_size``: the side images are resized to."""

    @register_to_config
    def __init__(self, vit_config: dict, image_size: int, frozen: bool) -> None:
        super().__init__()
        from transformers import ViTMAEConfig, ViTMAEModel

        cfg = ViTMAEConfig(**{"image_size": int(image_size), **vit_config, "mask_ratio": 0.0})
        self.vit = ViTMAEModel(cfg)
        self.image_size = int(image_size)
        self.frozen = bool(frozen)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self._freeze()

    def _freeze(self) -> None:
        if self.frozen:
            self.vit.requires_grad_(False).eval()
        # MAE's position embeddings are fixed sin-cos tables, never trained.
        self.vit.embeddings.position_embeddings.requires_grad_(False)

    @property
    def dim(self) -> int:
        return int(self.vit.config.hidden_size)

    def num_patches(self) -> int:
        return (self.image_size // int(self.vit.config.patch_size)) ** 2

    @classmethod
    def from_vit(cls, path: str | Path, image_size: int | None = None, frozen: bool = True,
                 torch_dtype: torch.dtype | None = None) -> "PatchEncoder":
        """A pretrained ViT-MAE from a local transformers folder (e.g. facebook/vit-mae-large)."""
        from transformers import ViTMAEModel
        from transformers.utils import logging as hf_logging

        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path}: not a ViT-MAE folder (config.json missing); point the config's "
                              "encoder.path at a local copy of e.g. facebook/vit-mae-large")
        hf_logging.disable_progress_bar()
        vit = ViTMAEModel.from_pretrained(path, mask_ratio=0.0)
        keep = {k: v for k, v in vit.config.to_dict().items()
                if k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                         "patch_size", "image_size", "num_channels", "hidden_act", "layer_norm_eps", "qkv_bias")}
        enc = cls(keep, image_size or int(vit.config.image_size), frozen)
        enc.vit.load_state_dict(vit.state_dict())
        enc._freeze()
        return enc if torch_dtype is None else enc.to(torch_dtype)

    def train(self, mode: bool = True) -> "PatchEncoder":
        super().train(mode and not self.frozen)   # a frozen encoder stays in eval mode
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              antialias=True, align_corners=False)
        x = ((x + 1) / 2 - self.mean) / self.std
        n = self.num_patches()
        order = torch.arange(n, device=x.device, dtype=torch.float32).expand(x.shape[0], n)
        native = self.image_size == int(self.vit.config.image_size)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.vit(pixel_values=x.to(self.vit.dtype), noise=order,
                           interpolate_pos_encoding=not native)
        return out.last_hidden_state[:, 1:]
