"""Quantization of latents for training and coding, and the bound operators the likelihoods need.

``quantize(x, mode, mean)``::

    "noise": x + u,  u ~ U(-1/2, 1/2)            (training proxy of rounding; ``mean`` is irrelevant)
    "ste":   round(x - mean) + mean, gradient 1  (straight-through estimator)
    "round": round(x - mean) + mean, no gradient (what the decoder reconstructs)
"""

from __future__ import annotations

from typing import Literal

import torch

QuantizeMode = Literal["noise", "ste", "round"]
QUANTIZE_MODES: tuple[str, ...] = ("noise", "ste", "round")


def quantize(x: torch.Tensor, mode: QuantizeMode, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Quantize ``x`` (any shape; ``mean`` broadcastable to it) as described in the module docstring."""
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantization mode {mode!r} (choose from {', '.join(QUANTIZE_MODES)})")
    shifted = x if mean is None else x - mean
    q = torch.round(shifted)
    if mode == "ste":
        q = shifted + (q - shifted).detach()
    return q if mean is None else q + mean


def to_symbols(x: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """The integers the coder sees, ``round(x - mean)``, as int64 (same shape as ``x``)."""
    shifted = x if mean is None else x - mean
    return torch.round(shifted.detach()).to(torch.int64)


def dequantize(q: torch.Tensor, mean: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``q + mean``: the reconstruction from coded integers ``q``."""
    out = q.to(dtype)
    return out if mean is None else out + mean


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows where it would push ``x`` back above the bound."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp(min=bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through, None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Elementwise ``max(x, bound)`` with the straight-through gradient of Balle et al. (CompressAI's LowerBound)."""
    return _LowerBound.apply(x, bound)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a narrower float type (bfloat16 from autocast), else unchanged (float64
    stays float64): likelihoods and losses are computed at float32 precision or better."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
