"""Per-quality gain vectors: variable rate in one model (DCVC-HEM's q-step gains; digest dcvc_b_tcm.md).

::

    y = g_a(x) * gain[q]   (C,) per channel   --quantize-->   y_hat * inv_gain[q]  --> g_s

A small gain makes the quantization step coarser relative to the latent (fewer bits); both vectors are learned.
"""

from __future__ import annotations

import torch
from torch import nn


def quality_gains(qualities: int, channels: int) -> tuple[nn.Parameter, nn.Parameter]:
    """(gain, inv_gain), each (Q, C): rung q starts at 2**((q - Q + 1) / 2), the top rung at 1."""
    ladder = torch.pow(2.0, 0.5 * (torch.arange(qualities, dtype=torch.float32) - (qualities - 1)))
    return (nn.Parameter(ladder.view(-1, 1).repeat(1, channels)),
            nn.Parameter((1.0 / ladder).view(-1, 1).repeat(1, channels)))
