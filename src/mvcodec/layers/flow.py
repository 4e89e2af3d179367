"""A small pyramid optical-flow network in the style of SpyNet (Ranjan and Black, CVPR 2017) with PWC-Net's local
cost volume (Sun et al., CVPR 2018), trained from scratch.

::

    current x, reference r (B, 3, H, W), H and W multiples of 2**(levels-1)
    pyramids by 2x2 average pooling: x_0 = x, x_{l+1} = pool(x_l)           (level L-1 is the coarsest)
    flow_{L} = 0
    for l = L-1 .. 0:
        f    = upsample_flow(flow_{l+1})        (bilinear, values doubled; zero at the coarsest level)
        w    = warp(r_l, f)
        cost = cost_volume(x_l, w, search)      ((2s+1)^2 channels; none with search 0)
        flow_l = f + G_l([x_l, w, f, cost])     G_l: 4 convs 3x3 (8 [+ (2s+1)^2] -> C -> C -> C/2 -> 2), LeakyReLU
    flow = flow_0 (B, 2, H, W), in pixels, from current pixels to the reference (see mvcodec.layers.warp)

Each level refines the up-sampled coarser estimate by a residual (SpyNet's design); the motion that one level
can follow is a few pixels, so 4 levels follow about 8 times that.  The encoder alone runs it (DCVC-TCM's ME, digest
dcvc_b_tcm.md): the decoder receives the coded motion, so its float arithmetic never reaches the bitstream's
synchronisation.  The synthetic data's ground-truth flow warm-starts it (``mvcodec.train.tasks.inter``).

Why the cost volume: without it (``search`` 0, the net of the weights shipped before it: mlvc-v1, mlvc-v2,
lmvc-v1) the net must discover matching from pixels through 3x3 convolutions, and on this project's CPU budget it
never did: trained from scratch for 200-300 steps (and 300 more in a probe, end-point error alone, lr 1e-3, with
every level supervised) its estimate stayed within 0.01 px of zero flow (end-point error 2.7 px, the ground truth's
own magnitude), so every P picture was predicted without motion (BENCHMARKS.md, "The flow net never learned").
With the cost volume, search 2, the same probe fell to 1.86 px in 200 steps and its warping error to a sixth.
The cost of a displacement is PWC-Net's matching cost on pixels instead of learned features (reconstructed): the
mean absolute RGB difference, averaged over a 3x3 window, negated and scaled by :data:`COST_SCALE`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mvcodec.layers.blocks import conv
from mvcodec.layers.warp import upsample_flow, warp

COST_SCALE = 10.0  # the cost volume's values (minus mean absolute differences in [0, 1]) to about unit range


def cost_volume(x: torch.Tensor, ref: torch.Tensor, search: int) -> torch.Tensor:
    """Matching costs of ``x`` against ``ref`` shifted by every integer displacement ``(dy, dx)`` in
    ``[-search, search]^2`` (row-major, dy outer): ``(B, 3, h, w)`` twice -> ``(B, (2 search + 1)^2, h, w)``,
    ``-COST_SCALE * box3x3(mean_c |x(p) - ref(p + d)|)``; ``ref`` is edge-replicated outside the picture."""
    h, w = x.shape[-2:]
    padded = F.pad(ref, (search,) * 4, mode="replicate")
    span = range(2 * search + 1)
    costs = [(x - padded[..., dy: dy + h, dx: dx + w]).abs().mean(1, keepdim=True) for dy in span for dx in span]
    return F.avg_pool2d(torch.cat(costs, dim=1), 3, stride=1, padding=1, count_include_pad=False) * -COST_SCALE


class FlowLevel(nn.Module):
    """SpyNet's basic module ``G_l``: ``(B, 8 + (2 search + 1)^2, h, w) -> (B, 2, h, w)`` (``(B, 8, h, w)`` with
    ``search`` 0), a residual flow in pixels of level l."""

    def __init__(self, channels: int, search: int) -> None:
        super().__init__()
        inputs = 8 + (2 * search + 1) ** 2 if search else 8
        self.net = nn.Sequential(conv(inputs, channels, 3), nn.LeakyReLU(0.1), conv(channels, channels, 3),
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
        search: the cost volume's reach in pixels of each level (0: no cost volume, the first design).
    """

    def __init__(self, levels: int = 4, channels: int = 32, search: int = 2) -> None:
        super().__init__()
        if levels < 1 or channels < 2 or not 0 <= search <= 4:
            raise ValueError(f"FlowNet needs levels >= 1, channels >= 2 and search 0..4, got {levels}, {channels}, "
                             f"{search}")
        self.levels, self.search = levels, search
        self.level_nets = nn.ModuleList([FlowLevel(channels, search) for _ in range(levels)])

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
            warped = warp(rs[level], flow)
            inputs = [xs[level], warped, flow]
            if self.search:
                inputs.append(cost_volume(xs[level], warped, self.search))
            flow = flow + self.level_nets[level](torch.cat(inputs, dim=1))
        return flow
