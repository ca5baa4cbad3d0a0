"""Image <-> latent codecs for the backbone, each a diffusers model with its own config.

``VaeCodec`` wraps Qwen-Image's VAE (frozen; latents normalised with its per-channel
mean/std, as Qwen-Image-Edit does). ``PixelCodec`` is the from-scratch option for small
runs, where a VAE cannot be trained in the time: a lossless space-to-depth of the pixels,
so the backbone works on pixel patches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class PixelCodec(ModelMixin, ConfigMixin):
    kind = "pixel"

    @register_to_config
    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = int(factor)
        self.channels = 3 * self.factor ** 2
        self.register_buffer("anchor", torch.zeros(()), persistent=False)   # follows .to(device)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(images, self.factor)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latents, self.factor).clamp(-1, 1)


class VaeCodec(ModelMixin, ConfigMixin):
    """Qwen-Image's VAE from a local folder (``path``, ``subfolder``), or a random one from
    ``vae_config`` (tests only). Never trained, never saved with the weights."""

    kind = "vae"

    @register_to_config
    def __init__(self, path: str | None = None, subfolder: str | None = None,
                 vae_config: dict | None = None) -> None:
        super().__init__()
        from diffusers import AutoencoderKLQwenImage

        if path:
            vae = AutoencoderKLQwenImage.from_pretrained(path, subfolder=subfolder)
        else:
            vae = AutoencoderKLQwenImage(**(vae_config or {}))
        self.vae = vae.requires_grad_(False).eval()
        self.factor = 2 ** len(vae.config.temperal_downsample)
        self.channels = int(vae.config.z_dim)
        c = self.channels
        self.register_buffer("mean", torch.tensor(vae.config.latents_mean).view(1, c, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(vae.config.latents_std).view(1, c, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VaeCodec":
        return super().train(False)                 # always frozen

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        z = self.vae.encode(images.to(self.vae.dtype)[:, :, None]).latent_dist.mode()[:, :, 0]
        return (z.float() - self.mean) / self.std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.float() * self.std + self.mean
        return self.vae.decode(z.to(self.vae.dtype)[:, :, None]).sample[:, :, 0].float().clamp(-1, 1)


def build_codec(spec: dict, dtype: torch.dtype = torch.float32):
    """The codec of a model spec's ``codec`` section (``kind``: pixel or vae)."""
    kind = spec.get("kind", "pixel")
    if kind == "pixel":
        return PixelCodec(int(spec["factor"]))
    if kind == "vae":
        codec = VaeCodec(spec.get("path"), spec.get("subfolder"), spec.get("config"))
        if dtype != torch.float32:
            codec.vae.to(dtype)             # the latent statistics stay float32
        return codec
    raise ValueError(f"unknown codec kind {kind!r} (pixel or vae)")
