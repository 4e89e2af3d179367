"""Differentiable losses: SSIM and MV-MGINR's motion-aware loss.

Motion-aware loss (digest of arXiv 2509.16706, "Loss", reconstructed form)::

    L = alpha * mean((1 + M) * |x_hat - x|) + (1 - alpha) * (1 - SSIM(x_hat, x)),   alpha = 0.7

with M in [0, 1] the per-pixel motion mask (:mod:`mvcodec.train.motion`); M = 0 gives NeRV's loss.
"""

from __future__ import annotations

import torch


def _gauss_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _blur(t: torch.Tensor, g: list[float]) -> torch.Tensor:
    """Separable 'valid' filtering of (..., H, W) by the taps ``g`` along W then H, as weighted sums of shifted
    views: 2.5x faster than grouped ``conv2d`` on CPU at 752x480 (oneDNN's depthwise path), same values."""
    n = len(g)
    w = t.shape[-1] - n + 1
    u = t[..., 0:w] * g[0]
    for i in range(1, n):
        u = u.add(t[..., i:i + w], alpha=g[i])
    h = u.shape[-2] - n + 1
    out = u[..., 0:h, :] * g[0]
    for i in range(1, n):
        out = out.add(u[..., i:i + h, :], alpha=g[i])
    return out


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of (B, C, H, W) images in [0, data_range]; Gaussian window 11, sigma 1.5, shrunk to the largest
    odd size <= min(H, W) on small frames (sigma scaled with it), 'valid' filtering."""
    size = min(11, min(x.shape[-2:]))
    size -= 1 - size % 2
    g = [float(v) for v in _gauss_window(size, 1.5 * size / 11, torch.device("cpu"))]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx, syy, sxy = _blur(x * x, g) - mx * mx, _blur(y * y, g) - my * my, _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()


def motion_aware_loss(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None,
                      alpha: float = 0.7) -> torch.Tensor:
    """``x_hat``, ``x``: (B, 3, H, W) in [0, 1]; ``mask``: (B, H, W) in [0, 1] or None (no motion weighting)."""
    l1 = (x_hat - x).abs()
    if mask is not None:
        l1 = l1 * (1 + mask.unsqueeze(1))
    return alpha * l1.mean() + (1 - alpha) * (1 - ssim(x_hat, x))
