"""Hybrid disparity compensation (HDC; digest ``papers/digests/hdc.md``, eqs. 1-3): aligned cross-view features.

::

    cur, other (B, C, H, W): features of two views at one point of a network (same instant)
    V[d]   = shift(other, d)            other[..., w - d], zeros outside the picture       d in disparities
    F[d]   = cur * V[d]                 element-wise similarity, per channel               (B, D, C, H, W)
    A[d]   = tanh(softplus(F[d]))       the Mish-style score in (0, 1); negative correlation -> ~0
    ref    = Conv(concat_d(A[d] * V[d]))   the disparity axis folded into channels, (D*C) -> C, 3x3
    HdcAlign(cur, other) = ref          (B, C, H, W): the other view's content placed where ``cur`` sees it

    HdcFer (HDC-FER): cur + Up(HdcAlign(Down(cur), Down(other)))     Down = average pool by ``down``, Up = nearest

Explicit compensation is the shift (a geometric prior: candidates along the epipolar line), implicit
compensation the score (soft, per position and channel, any of the D candidates).  Ablations of the design:
``attention=False`` keeps the shifts and drops the score (A = 1); ``shift=False`` keeps the score over the
unshifted other view only (channel attention, D = 1).

Deviations, recorded in ``docs/decisions.md``: the paper's volumes shift *both* views (cur[w + d] against
other[w - d]), which matches content 2d apart but then places other[w - d] at w, d pixels from where ``cur``
sees it; here ``cur`` stays in place and ``other`` is shifted by every candidate, so a matched candidate lands
where it belongs.  ``disparities`` may be signed (e.g. ``range(-D, D + 1)``) for rigs whose baseline direction
is unknown.  The digest leaves the reduction of the D axis open: we fold it into channels and convolve (a 3D
convolution whose kernel spans D is the same operation), which keeps the coding path on the exact
convolutions of :mod:`mvcodec.layers.blocks`.

Coding path (float64 inputs): shifts, products, average pooling and nearest upsampling are exact on the 2^-12
grid or deterministic IEEE operations; softplus and tanh are element-wise float64 functions whose output the
next exact convolution rounds to the 2^-12 grid.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mvcodec.layers.blocks import conv


def shift_volume(other: torch.Tensor, disparities: Sequence[int]) -> torch.Tensor:
    """``V[:, i] = other[..., w - d_i]`` (zeros where ``w - d_i`` leaves the picture): ``(B, C, H, W)`` ->
    ``(B, D, C, H, W)``."""
    width = other.shape[-1]
    planes = []
    for d in disparities:
        if d == 0:
            planes.append(other)
        elif abs(d) >= width:
            planes.append(torch.zeros_like(other))
        elif d > 0:
            planes.append(F.pad(other[..., : width - d], (d, 0)))
        else:
            planes.append(F.pad(other[..., -d:], (0, -d)))
    return torch.stack(planes, dim=1)


def hdc_scores(cur: torch.Tensor, volume: torch.Tensor) -> torch.Tensor:
    """The attention score ``tanh(softplus(cur * V[d]))`` for ``cur (B, C, H, W)`` and ``volume (B, D, C, H, W)``
    (same shape as ``volume``, values in (0, 1))."""
    return torch.tanh(F.softplus(cur.unsqueeze(1) * volume))


class HdcAlign(nn.Module):
    """The HDC core (module docstring): ``(cur, other)`` (B, C, H, W) each -> the aligned reference (B, C, H, W).

    Args:
        channels: C of both inputs and of the output.
        disparities: the candidate horizontal shifts, in pixels of the inputs' grid (default 1..8).
        attention: weight the shifted volume by the score (False: the "shift only" ablation).
        shift: use the candidates (False: the "channel attention only" ablation, one unshifted candidate).
    """

    def __init__(self, channels: int, disparities: Sequence[int] = tuple(range(1, 9)), attention: bool = True,
                 shift: bool = True) -> None:
        super().__init__()
        self.candidates = tuple(int(d) for d in disparities)   # as configured; used by the shift switch's init
        self.disparities = self.candidates if shift else (0,)
        if not self.disparities:
            raise ValueError("HdcAlign needs at least one disparity")
        self.attention, self.channels = attention, channels
        self.fuse = conv(len(self.disparities) * channels, channels, 3)

    def forward(self, cur: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        if cur.shape != other.shape or cur.dim() != 4 or cur.shape[1] != self.channels:
            raise ValueError(f"HdcAlign: cur {tuple(cur.shape)} and other {tuple(other.shape)} must both be "
                             f"(B, {self.channels}, H, W)")
        volume = shift_volume(other, self.disparities)
        if self.attention:
            volume = hdc_scores(cur, volume) * volume
        return self.fuse(volume.flatten(1, 2))

    def extra_repr(self) -> str:
        return f"disparities={self.disparities}, attention={self.attention}"

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """A shift-off module (one unshifted candidate) accepts the fuse weights of the shifted module of the same
        configuration, ``(C, len(candidates) * C, 3, 3)``, and keeps the d = 0 candidate's input channels: the
        ablation starts from the trained model's treatment of the unshifted view (lmvc-v9's init from lmvc-v7).
        Any other shape is left to the usual mismatch error."""
        key = prefix + "fuse.weight"
        weight = state_dict.get(key)
        c = self.channels
        if (self.disparities == (0,) and 0 in self.candidates and weight is not None and weight.dim() == 4
                and weight.shape[1] == len(self.candidates) * c != c):
            i = self.candidates.index(0)
            state_dict[key] = weight[:, i * c:(i + 1) * c].contiguous()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class HdcFer(nn.Module):
    """HDC-FER: ``cur + Up(HdcAlign(Down(cur), Down(other)))`` for (B, C, H, W) features, any H and W.

    ``down`` is the pooling factor (the disparities count pixels of the pooled grid, so D candidates reach
    D x ``down`` pixels of the input); the output has ``cur``'s shape."""

    def __init__(self, channels: int, disparities: Sequence[int] = tuple(range(1, 9)), down: int = 2,
                 attention: bool = True, shift: bool = True) -> None:
        super().__init__()
        if down < 1:
            raise ValueError(f"HdcFer: down must be >= 1, got {down}")
        self.down = down
        self.align = HdcAlign(channels, disparities, attention, shift)

    def forward(self, cur: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        h, w = cur.shape[-2:]
        if self.down == 1:
            return cur + self.align(cur, other)
        small = [F.avg_pool2d(x, self.down, ceil_mode=True) for x in (cur, other)]
        ref = self.align(*small)
        up = ref.repeat_interleave(self.down, dim=-2).repeat_interleave(self.down, dim=-1)
        return cur + up[..., :h, :w]
