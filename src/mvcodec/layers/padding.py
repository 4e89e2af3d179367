"""Replicate padding to a network's size multiple (DESIGN: pad to the multiple, crop back; metrics at the
original size), shared by the learned codecs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def padded(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-n // multiple) * multiple


def replicate_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad ``(B, C, H, W)`` on the right and bottom to multiples of ``multiple`` (unchanged if they are)."""
    h, w = x.shape[-2:]
    ph, pw = padded(h, multiple), padded(w, multiple)
    if (h, w) == (ph, pw):
        return x
    return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
