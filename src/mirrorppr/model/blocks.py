"""Small transformer building blocks shared by the R-Former, the reconstruction head and
the connector."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.float()).to(dtype)


def rope(x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding over the sequence axis of ``x`` (B, heads, T, D)."""
    t, d = x.shape[-2], x.shape[-1]
    freqs = 1.0 / theta ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    ang = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * freqs[None]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class Attention(nn.Module):
    """Bidirectional multi-head attention; optional QK-RMSNorm and RoPE."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = False, use_rope: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads, self.use_rope = heads, use_rope
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        hd = dim // heads
        self.q_norm = RMSNorm(hd) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(hd) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.use_rope:
            q, k = rope(q), rope(k)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm transformer block: attention then a GELU MLP, both residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, rms: bool = False,
                 qk_norm: bool = False, use_rope: bool = False) -> None:
        super().__init__()
        norm = (lambda: RMSNorm(dim)) if rms else (lambda: nn.LayerNorm(dim))
        self.norm1, self.norm2 = norm(), norm()
        self.attn = Attention(dim, heads, qk_norm=qk_norm, use_rope=use_rope)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def resize_pos(pos: torch.Tensor, n: int) -> torch.Tensor:
    """Learned square-grid position embeddings (1, G*G, C) resized to ``n`` patches."""
    g0 = int(round(pos.shape[1] ** 0.5))
    g1 = int(round(n ** 0.5))
    if g0 * g0 != pos.shape[1] or g1 * g1 != n:
        raise ValueError(f"position embeddings need square patch grids ({pos.shape[1]} -> {n})")
    if g0 == g1:
        return pos
    grid = pos.reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=(g1, g1), mode="bicubic", align_corners=False).to(pos.dtype)
    return grid.permute(0, 2, 3, 1).reshape(1, n, -1)


def save_model(model, path, state: dict | None = None) -> None:
    """A diffusers model's ``config.json`` and weights (safetensors) into ``path``.
    ``state``: its weights gathered from a sharded copy (``ModelMixin.save_pretrained``
    has no way to take them: it always saves the module's own, here only shards)."""
    from pathlib import Path

    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_config(path)
    state = model.state_dict() if state is None else state
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()},
              path / "diffusion_pytorch_model.safetensors")
