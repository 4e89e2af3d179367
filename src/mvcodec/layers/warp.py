"""Backward warping by a dense motion field: the one warping function of the package, and the flow helpers.

::

    x (B, C, H, W), flow (B, 2, H, W) in pixels (dx, dy)
    out[b, :, i, j] = bilinear sample of x[b] at (j + dx[b, i, j], i + dy[b, i, j])   (border padding)

so ``warp(reference, flow)`` predicts the current picture when ``flow`` points from each current pixel to where
it came from in the reference (the convention of SpyNet, DVC and DCVC; digest dcvc_b_tcm.md "ME").

Each output element is computed on its own from four inputs (``grid_sample``), so the result does not depend on
the thread count and float64 inputs stay float64: the coding path of the learned codecs warps in float64.

Composition (M-LVC's multi-reference alignment, digest mlvc.md "MV direction and composition"): with ``a``
from frame t to t-1 and ``b`` from t-1 to t-2, the field from t to t-2 is ``a + warp(b, a)``
(:func:`compose`), not ``a + b``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _base_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(1, 2, H, W)`` pixel coordinates (x, y) of every position, in ``like``'s dtype and device."""
    ys = torch.arange(height, dtype=like.dtype, device=like.device).view(1, 1, height, 1).expand(1, 1, height, width)
    xs = torch.arange(width, dtype=like.dtype, device=like.device).view(1, 1, 1, width).expand(1, 1, height, width)
    return torch.cat([xs, ys], dim=1)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``x (B, C, H, W)`` by ``flow (B, 2, H, W)`` (pixels; bilinear, border padding).

    Returns ``(B, C, H, W)`` in ``x``'s dtype (``flow`` is cast to it)."""
    if flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[-2:] != x.shape[-2:] or flow.shape[0] != x.shape[0]:
        raise ValueError(f"warp: flow {tuple(flow.shape)} does not match x {tuple(x.shape)} (needs (B, 2, H, W))")
    h, w = x.shape[-2:]
    pos = _base_grid(h, w, x) + flow.to(x.dtype)
    # align_corners=True maps -1 / +1 to the centres of the first / last pixels, so pixel p -> 2p / (n-1) - 1
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def compose(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The field of ``first`` (t -> t-1) followed by ``second`` (t-1 -> t-2): ``first + warp(second, first)``."""
    return first + warp(second, first)


def downsample_flow(flow: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, 2, H, W) -> (B, 2, H/factor, W/factor)``: average over ``factor`` x ``factor`` cells, values divided by
    ``factor`` (a displacement in pixels of the smaller grid).  ``factor`` must divide H and W."""
    if factor == 1:
        return flow
    return F.avg_pool2d(flow, factor) / factor


def upsample_flow(flow: torch.Tensor) -> torch.Tensor:
    """``(B, 2, h, w) -> (B, 2, 2h, 2w)``: bilinear up-sampling, values doubled."""
    return F.interpolate(flow, scale_factor=2.0, mode="bilinear", align_corners=False) * 2.0
