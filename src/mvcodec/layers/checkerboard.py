"""The checkerboard spatial context (He et al., CVPR 2021; used per channel group by ELIC, He et al. CVPR 2022).

The latent's positions are split like a checkerboard.  Anchors are decoded first, from the hyperprior (and the
channel context) alone; each non-anchor then also sees its decoded anchor neighbours::

    position (i, j):   anchor when (i + j) is even        . = anchor, x = non-anchor
                                                          . x . x
    pass 1: anchors      params(hyper, channel ctx, 0)    x . x .
    pass 2: non-anchors  params(hyper, channel ctx,       . x . x
                                conv(anchors only))

Both passes run over whole tensors (two convolution passes, no per-position loop); :func:`select` picks the
elements of one half in a fixed order (batch, channel, row, column) that encoder and decoder share.
"""

from __future__ import annotations

import torch

from mvcodec.layers.blocks import Conv2d


def anchor_mask(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(1, 1, height, width)`` bool, True on anchors (``(i + j)`` even)."""
    i = torch.arange(height, device=device).view(-1, 1)
    j = torch.arange(width, device=device).view(1, -1)
    return ((i + j) % 2 == 0).view(1, 1, height, width)


def select(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The elements of ``t (B, C, H, W)`` where ``mask (1, 1, H, W)`` is True, flattened in (b, c, i, j) order."""
    return t[mask.expand_as(t)]


def merge(anchors: torch.Tensor, non_anchors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``anchors`` where ``mask`` is True, ``non_anchors`` elsewhere (same shapes, ``(B, C, H, W)``)."""
    return torch.where(mask, anchors, non_anchors)


class CheckerboardContext(Conv2d):
    """The spatial context of the non-anchors: a convolution over the decoded anchors only.

    ``forward(y_hat (B, C, H, W)) -> (B, C_out, H, W)``; non-anchor inputs are zeroed first, so the output never
    depends on a value the decoder does not have yet (the output at anchor positions is not used).  Inherits the
    exact fixed-point face of :class:`~mvcodec.layers.blocks.Conv2d` for float64 inputs.
    """

    def __init__(self, channels: int, out_channels: int, kernel: int = 5) -> None:
        super().__init__(channels, out_channels, kernel, 1, kernel // 2)

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        mask = anchor_mask(y_hat.shape[-2], y_hat.shape[-1], y_hat.device)
        return super().forward(y_hat * mask.to(y_hat.dtype))
