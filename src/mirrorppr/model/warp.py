"""The learned warp head: operation tokens decoded into a displacement field.

Beyond the paper. The exemplar pair, seen in its face frame, is read by two small
convolutional stems (the before photo with its landmarks; the after photo with what
changed and the measured motion) into patch features, and the R-Former turns them into
the 8 operation tokens, as in the paper. A small U-Net over the query (its pixels and
its landmarks, in its own face frame, beside the exemplar's measured motion and landmarks
in the exemplar's frame: both faces upright, so that motion is a first guess to adapt)
then decodes the tokens, through FiLM at every scale and cross-attention at the two
coarsest, into:

- ``d``: a backward displacement (crop pixels), the edit's motion on the query;
- ``mask``: where warped pixels replace the query's (1: a plain warp);
- ``ramp``: how much of the paper procedure's resampling ramp the exemplar shows
  (a scalar; the ramp's shape follows from the query's size, see :mod:`.frame`).

The result is applied by the project's warp at full resolution
(:mod:`mirrorppr.model.warp_engine`): pixels outside the predicted motion are the
query's own, bit for bit, and no pixel is generated. Trained on the data engine's
quadruplets with the exact displacement stored there (:mod:`mirrorppr.train.warp`).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .frame import GROUPS
from .blocks import save_model
from .rformer import RFormer

FORMAT = "mirrorppr.learned-warp/1"
N_GROUPS = len(GROUPS)
#: Input channels: exemplar before (RGB + landmark maps + ramp), exemplar after (RGB,
#: difference, measured motion), query (RGB + landmark maps + ramp + blur share).
SOURCE_IN = 3 + N_GROUPS + 2
TARGET_IN = 3 + 3 + 2
QUERY_IN = 3 + N_GROUPS + 2 + 1
#: Where the measured motion and the ramp sit in the exemplar inputs (see frame.exemplar_inputs).
FLOW = slice(6, 8)
RAMP = slice(3 + N_GROUPS, 5 + N_GROUPS)
LANDMARKS = slice(3, 3 + N_GROUPS)
#: The exemplar's own motion map, its landmarks and ramp, beside the query's inputs.
EXEMPLAR_MAP = 2 + N_GROUPS + 2


def exemplar_map(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, EXEMPLAR_MAP, S, S): the exemplar's measured motion, landmarks and ramp in its
    face frame. Both faces sit upright in their frames, so the exemplar's motion is a first
    guess of the query's that the decoder adapts to the query's own face."""
    return torch.cat([target[:, FLOW], source[:, LANDMARKS], source[:, RAMP]], 1)


def ramp_agreement(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """How much of the exemplar's measured motion is the paper procedure's ramp: per pixel
    (B, 1, S, S) the motion's projection on the ramp over the ramp's length squared, and
    for the whole pair (B, 1) the least-squares share over the pixels that move. A conv
    net finds products like this one slowly; the ramp decides much of the motion."""
    flow, ramp = target[:, FLOW].float(), source[:, RAMP].float()
    dot = (flow * ramp).sum(1, keepdim=True)
    rr = (ramp * ramp).sum(1, keepdim=True)
    moving = (flow.abs().sum(1, keepdim=True) > 0.05).float()
    local = dot / (rr + 0.05) * moving
    share = (dot * moving).sum((2, 3)) / ((rr * moving).sum((2, 3)) + 1e-3)
    return local.clamp(-2, 2), share.clamp(-2, 2)


@dataclass
class WarpOutput(BaseOutput):
    """Per query: ``d`` (B, 2, c, c) crop pixels, ``mask`` (B, 1, c, c) in [0, 1], ``ramp``
    (B,) in [0, 1], ``ramp_logit`` (B,), ``recipe`` (B, num_ops) strengths / 100."""

    d: torch.Tensor
    mask: torch.Tensor
    ramp: torch.Tensor
    ramp_logit: torch.Tensor
    recipe: torch.Tensor | None = None     # (B, num_ops): the recipe read off the tokens (training aid)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout // 4), cout), nn.SiLU())


class Stem(nn.Module):
    """Pixels (B, C, S, S) -> patch features (B, (S / 2^n)^2, width): strided convs."""

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers, c = [], cin
        for w in widths:
            layers += [_conv(c, w, 2), _conv(w, w)]
            c = w
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(2).transpose(1, 2)


class CrossAttention(nn.Module):
    """Image features (B, C, h, w) attend to the operation tokens (B, T, D)."""

    def __init__(self, dim: int, token_dim: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(8, dim // 4), dim)
        self.attn = nn.MultiheadAttention(dim, heads, kdim=token_dim, vdim=token_dim, batch_first=True)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)        # starts as the identity
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        y, _ = self.attn(q, tokens, tokens, need_weights=False)
        return x + self.out(y).transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """Two convs with FiLM (scale, shift from the pooled tokens) between them."""

    def __init__(self, cin: int, cout: int, token_dim: int, stride: int = 1) -> None:
        super().__init__()
        self.a = _conv(cin, cout, stride)
        self.b = _conv(cout, cout)
        self.film = nn.Linear(token_dim, 2 * cout)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        g, s = self.film(pooled)[:, :, None, None].chunk(2, 1)
        return self.b(x * (1 + g) + s)


class LearnedWarp(ModelMixin, ConfigMixin):
    """Exemplar pair + query (each in its face frame) -> motion, mask and ramp for the
    query. Sizes come from :data:`mirrorppr.model.sizes.WARP_SIZES`."""

    @register_to_config
    def __init__(self, crop: int, stem_widths: tuple[int, ...], token_width: int, rformer_layers: int,
                 rformer_heads: int, num_queries: int, unet_widths: tuple[int, ...], out_stride: int,
                 attn_heads: int, max_motion: float, num_ops: int = 0) -> None:
        super().__init__()
        self.source_stem = Stem(SOURCE_IN, tuple(stem_widths))
        self.target_stem = Stem(TARGET_IN + 1, tuple(stem_widths))
        grid = crop // 2 ** len(stem_widths)
        self.rformer = RFormer(feature_dim=stem_widths[-1], width=token_width, num_layers=rformer_layers,
                               num_heads=rformer_heads, num_queries=num_queries, num_patches=grid * grid)
        self.pool = nn.Sequential(nn.Linear(num_queries * token_width, token_width), nn.SiLU())
        widths = list(unet_widths)
        self.inp = _conv(QUERY_IN + EXEMPLAR_MAP, widths[0])
        self.down = nn.ModuleList(Level(widths[max(i - 1, 0)], w, token_width, 2 if i else 1)
                                  for i, w in enumerate(widths))
        self.attn = nn.ModuleList(CrossAttention(w, token_width, attn_heads) for w in widths[-2:])
        self.up = nn.ModuleList()
        n_up = len(widths) - 1 - {1: 0, 2: 1, 4: 2, 8: 3}[int(out_stride)]
        for i in range(n_up):
            hi, lo = widths[-1 - i], widths[-2 - i]
            self.up.append(Level(hi + lo, lo, token_width))
        self.head = nn.Conv2d(widths[-1 - n_up], 3, 3, 1, 1)
        nn.init.zeros_(self.head.weight)     # starts as "no motion, plain warp"
        nn.init.zeros_(self.head.bias)
        # Training aid: the recipe (each op's strength) read off the pooled tokens, a
        # direct signal that makes the tokens say what the edit is early in training.
        self.recipe_head = nn.Linear(token_width, num_ops) if num_ops else None
        self.ramp_head = nn.Sequential(nn.Linear(token_width + 1, token_width), nn.SiLU(), nn.Linear(token_width, 1))

    def operation_tokens(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, SOURCE_IN, S, S), (B, TARGET_IN, S, S) -> (B, num_queries + 1, token_width):
        the operation tokens, then the pair's ramp share in the first place of a last one."""
        local, share = ramp_agreement(source, target)
        tok = self.rformer(self.source_stem(source), self.target_stem(torch.cat([target, local.to(target.dtype)], 1)))
        extra = torch.zeros_like(tok[:, :1])
        extra[:, 0, 0] = share[:, 0].to(tok.dtype)
        return torch.cat([tok, extra], 1)

    def forward(self, source: torch.Tensor, target: torch.Tensor, query: torch.Tensor,
                tokens: torch.Tensor | None = None, return_dict: bool = True):
        if tokens is None:
            tokens = self.operation_tokens(source, target)
        tokens, share = tokens[:, :-1], tokens[:, -1, :1]
        pooled = self.pool(tokens.flatten(1))
        ex = exemplar_map(source, target)
        if ex.shape[-1] != query.shape[-1]:
            ex = F.interpolate(ex, size=query.shape[-2:], mode="bilinear", align_corners=False)
        x = self.inp(torch.cat([query, ex.to(query.dtype)], 1))
        skips = []
        n = len(self.down)
        for i, lvl in enumerate(self.down):
            x = lvl(x, pooled)
            if i >= n - 2:
                x = self.attn[i - (n - 2)](x, tokens)
            skips.append(x)
        for i, lvl in enumerate(self.up):
            skip = skips[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = lvl(torch.cat([x, skip], 1), pooled)
        out = self.head(x)
        d = torch.tanh(out[:, :2] / self.config.max_motion) * self.config.max_motion
        mask = torch.sigmoid(out[:, 2:3] + 4.0)     # a bias towards 1: a plain warp by default
        logit = self.ramp_head(torch.cat([tokens.mean(1), share], 1))[:, 0]
        recipe = self.recipe_head(pooled) if self.recipe_head is not None else None
        res = WarpOutput(d=d, mask=mask, ramp=torch.sigmoid(logit), ramp_logit=logit, recipe=recipe)
        return res if return_dict else res.to_tuple()


def save_weights(model: LearnedWarp, path: Path, state: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``path`` atomically: the model (config.json + safetensors) and mirrorppr.json.
    ``state``: a full state dict gathered from a sharded model (else the model's own)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, state)
    meta = {"format": FORMAT, "kind": "learned-warp", **(extra or {})}
    (tmp / "mirrorppr.json").write_text(json.dumps(meta, indent=1))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_weights(path: str | Path, torch_dtype: torch.dtype = torch.float32) -> LearnedWarp:
    from ..errors import ConfigError

    path = Path(path)
    meta = path / "mirrorppr.json"
    if not meta.is_file() or json.loads(meta.read_text()).get("format") != FORMAT:
        raise ConfigError(f"{path}: not a learned-warp weights folder (mirrorppr.json with format {FORMAT}); "
                          "train one with 'mirrorppr train --config warp-small'")
    return LearnedWarp.from_pretrained(path, torch_dtype=torch_dtype).eval()
