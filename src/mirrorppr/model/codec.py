"""Image <-> latent codecs for the backbone.

``VaeCodec`` wraps Qwen-Image's VAE (frozen; latents normalised with its per-channel
mean/std, as Qwen-Image-Edit does). ``PixelCodec`` is the from-scratch option for small
runs, where a VAE cannot be trained in the time: a lossless space-to-depth of the pixels,
so the backbone works on pixel patches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DeviceMixin


class PixelCodec(DeviceMixin, nn.Module):
    kind = "pixel"

    def __init__(self, factor: int = 8) -> None:
        super().__init__()
        self.factor = int(factor)
        self.channels = 3 * self.factor ** 2
        self.register_buffer("anchor", torch.zeros(()), persistent=False)   # follows .to(device)

    def spec(self) -> dict:
        return {"kind": "pixel", "factor": self.factor}

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(images, self.factor)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latents, self.factor).clamp(-1, 1)


class VaeCodec(DeviceMixin, nn.Module):
    kind = "vae"

    def __init__(self, vae, path: str | None = None) -> None:
        super().__init__()
        self.vae = vae.requires_grad_(False).eval()
        self.path = path
        self.factor = 2 ** len(vae.config.temperal_downsample)
        self.channels = int(vae.config.z_dim)
        c = self.channels
        self.register_buffer("mean", torch.tensor(vae.config.latents_mean).view(1, c, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(vae.config.latents_std).view(1, c, 1, 1), persistent=False)

    def spec(self) -> dict:
        return {"kind": "vae", "path": self.path}

    def train(self, mode: bool = True) -> "VaeCodec":
        return super().train(False)                 # always frozen

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        z = self.vae.encode(images.to(self.vae.dtype)[:, :, None]).latent_dist.mode()[:, :, 0]
        return (z.float() - self.mean) / self.std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.float() * self.std + self.mean
        return self.vae.decode(z.to(self.vae.dtype)[:, :, None]).sample[:, :, 0].float().clamp(-1, 1)


def build_codec(spec: dict, dtype: torch.dtype = torch.float32) -> nn.Module:
    kind = spec.get("kind", "pixel")
    if kind == "pixel":
        return PixelCodec(int(spec.get("factor", 8)))
    if kind == "vae":
        from diffusers import AutoencoderKLQwenImage

        if spec.get("path"):
            vae = AutoencoderKLQwenImage.from_pretrained(spec["path"], subfolder=spec.get("subfolder"),
                                                         torch_dtype=dtype)
        else:       # random tiny VAE: tests only
            vae = AutoencoderKLQwenImage(**spec.get("config", {}))
        return VaeCodec(vae, spec.get("path"))
    raise ValueError(f"unknown codec kind {kind!r} (pixel or vae)")
