"""A small pyramid optical-flow network in the style of SpyNet (Ranjan and Black, CVPR 2017), trained from scratch.

::

    current x, reference r (B, 3, H, W), H and W multiples of 2**(levels-1)
    pyramids by 2x2 average pooling: x_0 = x, x_{l+1} = pool(x_l)           (level L-1 is the coarsest)
    flow_{L} = 0
    for l = L-1 .. 0:
        f    = upsample_flow(flow_{l+1})        (bilinear, values doubled; zero at the coarsest level)
        flow_l = f + G_l([x_l, warp(r_l, f), f])   G_l: 4 convs 3x3 (8 -> C -> C -> C/2 -> 2), LeakyReLU
    flow = flow_0 (B, 2, H, W), in pixels, from current pixels to the reference (see mvcodec.layers.warp)

Each level refines the up-sampled coarser estimate by a residual (SpyNet's design); the motion that one level
can follow is a few pixels, so 4 levels follow about 8 times that.  The encoder alone runs it (DCVC-TCM's ME, digest
dcvc_b_tcm.md): the decoder receives the coded motion, so its float arithmetic never reaches the bitstream's
synchronisation.  The synthetic data's ground-truth flow warm-starts it (``mvcodec.train.tasks.inter``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mvcodec.layers.blocks import conv
from mvcodec.layers.warp import upsample_flow, warp


class FlowLevel(nn.Module):
    """SpyNet's basic module ``G_l``: ``(B, 8, h, w) -> (B, 2, h, w)``, a residual flow in pixels of level l."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(conv(8, channels, 3), nn.LeakyReLU(0.1), conv(channels, channels, 3),
                                 nn.LeakyReLU(0.1), conv(channels, channels // 2, 3), nn.LeakyReLU(0.1),
                                 conv(channels // 2, 2, 3))
        nn.init.zeros_(self.net[-1].weight)  # start from "no correction": the coarser estimate passes through
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FlowNet(nn.Module):
    """Pyramid flow estimator (module docstring).  ``forward(x, ref) -> flow (B, 2, H, W)``.

    Args:
        levels: pyramid levels (H and W must be multiples of ``2**(levels-1)``).
        channels: width of every level's network.
    """

    def __init__(self, levels: int = 4, channels: int = 32) -> None:
        super().__init__()
        if levels < 1 or channels < 2:
            raise ValueError(f"FlowNet needs levels >= 1 and channels >= 2, got {levels}, {channels}")
        self.levels = levels
        self.level_nets = nn.ModuleList([FlowLevel(channels) for _ in range(levels)])

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """``x``, ``ref`` (B, 3, H, W) in [0, 1] -> flow (B, 2, H, W) with ``warp(ref, flow) ~ x``."""
        step = 2 ** (self.levels - 1)
        if x.shape != ref.shape or x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"FlowNet: x {tuple(x.shape)} and ref {tuple(ref.shape)} must match and have sides "
                             f"divisible by {step}")
        xs, rs = [x], [ref]
        for _ in range(self.levels - 1):
            xs.append(F.avg_pool2d(xs[-1], 2))
            rs.append(F.avg_pool2d(rs[-1], 2))
        flow = x.new_zeros(x.shape[0], 2, *xs[-1].shape[-2:])
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                flow = upsample_flow(flow)
            inputs = torch.cat([xs[level], warp(rs[level], flow), flow], dim=1)
            flow = flow + self.level_nets[level](inputs)
        return flow
