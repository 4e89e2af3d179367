"""The NeRV synthesis block with grid embedding (re-injection of the input latent), used by MV-MGINR.

::

    x (B, c_in, h, w) --conv3x3--> (B, c_out*s*s, h, w) --PixelShuffle(s)--> (B, c_out, h*s, w*s) --GELU--> y
    z (B, c_z, h0, w0) --conv1x1--> (B, c_out, h0, w0) --bilinear to (h*s, w*s)--> + y   (grid embedding)

The grid embedding stands in for MV-IERV's GE block, whose structure the MV-MGINR paper does not give
(docs: shared/papers/digests/mvmginr.md, "GE"): the multi-grid latent is projected and added again inside
every block, as HiNeRV's hierarchical encoding does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NervBlock(nn.Module):
    """Conv -> PixelShuffle(scale) -> GELU, plus the grid embedding when ``embed_channels > 0``.

    Args:
        c_in: channels of ``x``.
        c_out: channels of the output.
        scale: upsampling factor (1 keeps the size).
        embed_channels: channels of the latent ``z`` re-injected into the output (0: none).
    """

    def __init__(self, c_in: int, c_out: int, scale: int, embed_channels: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.act = nn.GELU()
        self.embed = nn.Conv2d(embed_channels, c_out, 1) if embed_channels > 0 else None

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (B, c_in, h, w); ``z``: (B, c_z, h0, w0) or None.  Returns (B, c_out, h*s, w*s)."""
        y = self.act(self.shuffle(self.conv(x)))
        if self.embed is not None and z is not None:
            y = y + F.interpolate(self.embed(z), size=y.shape[-2:], mode="bilinear", align_corners=False)
        return y
