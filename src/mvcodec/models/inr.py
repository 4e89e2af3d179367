"""MV-MGINR: a multi-grid implicit neural representation of a multi-view video (arXiv 2509.16706).

::

    (view v, frame t)
      G_T1[floor(t*T1/T)] (c1,h,w) ++ G_T2[floor(t*T2/T)] (c2,h,w) = L_T (c,h,w)   time grid, two resolutions
      G_V[v] (c,h,w) = L_V                                                          view grid
      G_TV[t, v] (c',h,w) = L_TV                                                    time-and-view grid, c' ~ c/10
      Z = concat(L_T + L_V, L_TV)  (B, c+c', h, w)
      Z --NervBlock(s_1)--> ... --NervBlock(s_n)--> (B, w_n, h*S, w*S) --conv3x3, (tanh+1)/2--> RGB in [0, 1]
          (each block re-injects Z: grid embedding)                   S = prod(s_i); crop to (H, W)

L_T and L_V are added, L_TV concatenated (digest: "details an implementer would otherwise get wrong").  The
latent size follows the clip's aspect ratio: S = 2**k, the largest power of two with min(H, W) / S >= grid_side
(k <= 6), then h = ceil(H / S), w = ceil(W / S); the network renders (h*S, w*S) >= (H, W) and the output is
cropped to (H, W) (pad-then-crop: the loss and the metrics see the original size only).

Variants are data: :class:`InrArch` (what the quality ladder and the ablation flags choose, stored in the file's
``codec_config``) plus the clip's size make an :class:`InrConfig` through :func:`inr_config`, the one builder.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from mvcodec.errors import BitstreamError
from mvcodec.layers import NervBlock

MAX_LOG2_SCALE = 6
MAX_PARAMETERS = 64_000_000  # a header asking for more is rejected before anything is allocated


@dataclass(frozen=True)
class InrArch:
    """The size-independent architecture: set by the quality ladder and the ablation flags.

    ``grid_channels`` is c (split c1 = c - c//2 fine, c2 = c//2 coarse time grid); ``local_channels`` is c';
    ``coarse_stride`` gives T2 = ceil(T / stride) (T1 = T); block i has max(min_width, 2*width // (i+2))
    channels.  Ablations (the paper's Table): ``time_view_grids=False`` drops G_T1, G_T2 and G_V;
    ``local_grid=False`` drops G_TV; ``grid_embedding=False`` drops the re-injection.  Model size is not
    re-allocated when a grid is switched off.
    """

    grid_side: int = 9
    grid_channels: int = 32
    local_channels: int = 4
    width: int = 64
    min_width: int = 16
    coarse_stride: int = 4
    time_view_grids: bool = True
    local_grid: bool = True
    grid_embedding: bool = True

    def __post_init__(self) -> None:
        ints = {f.name: getattr(self, f.name) for f in fields(self) if f.type in ("int", int)}
        if any(type(v) is not int for v in ints.values()):
            raise ValueError(f"architecture sizes must be integers: {ints}")
        if not (1 <= self.grid_side <= 256 and 1 <= self.grid_channels <= 1024 and 1 <= self.local_channels <= 256
                and 1 <= self.min_width <= self.width <= 1024 and 1 <= self.coarse_stride <= 1_000_000):
            raise ValueError(f"architecture sizes out of range: {self}")
        if not (self.time_view_grids or self.local_grid):
            raise ValueError("at least one of time_view_grids and local_grid must be on")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> InrArch:
        """Inverse of :meth:`to_json`; anything malformed is a :class:`BitstreamError`."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not set(data) <= names:
            raise BitstreamError(f"mv-mginr architecture is malformed: {data!r}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise BitstreamError(f"mv-mginr architecture is invalid: {exc}") from None


@dataclass(frozen=True)
class InrConfig:
    """Everything that builds the network: the architecture plus the clip's size and the derived shapes."""

    arch: InrArch
    views: int
    frames: int
    height: int
    width: int
    grid_h: int
    grid_w: int
    scales: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def coarse_frames(self) -> int:
        return math.ceil(self.frames / self.arch.coarse_stride)

    @property
    def latent_channels(self) -> int:
        a = self.arch
        return (a.grid_channels if a.time_view_grids else 0) + (a.local_channels if a.local_grid else 0)

    @property
    def padded_size(self) -> tuple[int, int]:
        s = math.prod(self.scales)
        return self.grid_h * s, self.grid_w * s

    def parameter_count(self) -> int:
        """Number of parameters of :class:`MvMgInr` with this config (computed without building it)."""
        a, hw = self.arch, self.grid_h * self.grid_w
        n = 0
        if a.time_view_grids:
            c2 = a.grid_channels // 2
            n += hw * (self.frames * (a.grid_channels - c2) + self.coarse_frames * c2 + self.views * a.grid_channels)
        if a.local_grid:
            n += hw * self.frames * self.views * a.local_channels
        c_in, cz = self.latent_channels, self.latent_channels
        for s, c in zip(self.scales, self.widths):
            n += c_in * c * s * s * 9 + c * s * s + ((cz * c + c) if a.grid_embedding else 0)
            c_in = c
        return n + c_in * 3 * 9 + 3


def inr_config(arch: InrArch, views: int, frames: int, height: int, width: int) -> InrConfig:
    """The one builder of variants: ``arch`` fitted to a clip of ``views`` x ``frames`` x ``height`` x ``width``."""
    k = 0
    while k < MAX_LOG2_SCALE and min(height, width) / 2 ** (k + 1) >= arch.grid_side:
        k += 1
    s = 2 ** k
    scales = (2,) * k if k else (1,)
    widths = tuple(max(arch.min_width, 2 * arch.width // (i + 2)) for i in range(len(scales)))
    cfg = InrConfig(arch, views, frames, height, width, math.ceil(height / s), math.ceil(width / s), scales, widths)
    if cfg.parameter_count() > MAX_PARAMETERS:
        raise BitstreamError(f"mv-mginr network of {cfg.parameter_count()} parameters is too large")
    return cfg


class MvMgInr(nn.Module):
    """The network of one clip.  ``forward(view, frame)`` -> RGB in [0, 1] at the padded size."""

    def __init__(self, cfg: InrConfig) -> None:
        super().__init__()
        self.cfg = cfg
        a, h, w = cfg.arch, cfg.grid_h, cfg.grid_w
        if a.time_view_grids:
            c2 = a.grid_channels // 2
            self.g_t1 = nn.Parameter(0.1 * torch.randn(cfg.frames, a.grid_channels - c2, h, w))
            self.g_t2 = nn.Parameter(0.1 * torch.randn(cfg.coarse_frames, c2, h, w))
            self.g_v = nn.Parameter(0.1 * torch.randn(cfg.views, a.grid_channels, h, w))
        if a.local_grid:
            self.g_tv = nn.Parameter(0.1 * torch.randn(cfg.frames, cfg.views, a.local_channels, h, w))
        cz = cfg.latent_channels
        blocks, c_in = [], cz
        for s, c in zip(cfg.scales, cfg.widths):
            blocks.append(NervBlock(c_in, c, s, cz if a.grid_embedding else 0))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(c_in, 3, 3, padding=1)

    def latent(self, view: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Z for int64 ``view``, ``frame`` of shape (B,): (B, c + c', h, w)."""
        cfg, parts = self.cfg, []
        if cfg.arch.time_view_grids:
            l_t = torch.cat([self.g_t1[frame], self.g_t2[torch.div(frame * cfg.coarse_frames, cfg.frames,
                                                                   rounding_mode="floor")]], dim=1)
            parts.append(l_t + self.g_v[view])
        if cfg.arch.local_grid:
            parts.append(self.g_tv[frame, view])
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def forward(self, view: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """(B,) int64 views and frames -> (B, 3, h*S, w*S) RGB in [0, 1] (crop to (H, W) for the picture)."""
        z = self.latent(view, frame)
        x = z
        for block in self.blocks:
            x = block(x, z)
        return (torch.tanh(self.head(x)) + 1) * 0.5


def build_inr(cfg: InrConfig, seed: int = 0) -> MvMgInr:
    """A freshly initialised network; the initialisation depends on ``seed`` only (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MvMgInr(cfg)


def crop(x: torch.Tensor, cfg: InrConfig) -> torch.Tensor:
    """(B, 3, Hp, Wp) -> (B, 3, H, W): the picture inside the padded render."""
    return x[..., :cfg.height, :cfg.width]


@torch.inference_mode()
def render_frames(model: MvMgInr, pairs: list[tuple[int, int]]) -> np.ndarray:
    """The decoder's pictures: one forward pass per (view, frame), batch 1, so encoder and decoder run exactly
    the same computation.  Returns (len(pairs), H, W, 3) uint8."""
    cfg = model.cfg
    device = next(model.parameters()).device
    out = np.empty((len(pairs), cfg.height, cfg.width, 3), np.uint8)
    for i, (v, t) in enumerate(pairs):
        x = crop(model(torch.tensor([v], device=device), torch.tensor([t], device=device)), cfg)[0]
        out[i] = torch.round(x.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return out
