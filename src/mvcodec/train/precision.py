"""Training arithmetic: float32, or bfloat16 autocast where the hardware has native bf16 matrix units.

``precision`` is "fp32", "bf16" or "auto" (bf16 on a CUDA device that supports it, or on a CPU whose oneDNN
reports bf16 support, e.g. AMX / AVX512-BF16; float32 elsewhere, where bf16 would be emulated and slower).
Autocast runs convolutions and matrix products in bf16 with float32 weights, gradients and optimizer state;
the entropy models compute their likelihoods and :func:`~mvcodec.train.rd_loss.rd_loss` its terms in float32
(a CDF difference in bf16 keeps 8 significant bits), and coding never autocasts (the decoders' arithmetic is
float32 or the exact float64 path of :mod:`mvcodec.layers.blocks`), so bf16 changes how weights are trained,
never how a file decodes.  Used by the training engine (``RunConfig.precision``) and the MV-MGINR fit.
"""

from __future__ import annotations

from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def use_bf16(precision: str, device: str | torch.device) -> bool:
    """Whether training on ``device`` autocasts to bfloat16 under ``precision`` (see the module docstring)."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_bf16(device: str | torch.device, enabled: bool) -> torch.autocast:
    """``torch.autocast`` to bfloat16 on ``device``'s type (no effect when not ``enabled``)."""
    return torch.autocast(torch.device(device).type, torch.bfloat16, enabled=enabled)
