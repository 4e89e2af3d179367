"""The conditional-coding networks of the inter codec: DCVC-TCM's temporal contexts, contextual encoder, decoder
and temporal prior, and M-LVC's multi-reference refinement of the decoded feature.

::

    reference feature F (B,N,H,W) (or conv3x3 of the reference pixels after an I picture)
      --extract--> F1 (N, 1), F2 (N2, 1/2), F3 (N3, 1/4) --warp by v_hat, v_hat/2, v_hat/4-->
      top-down fusion: C3 = F3w + g3(F3w); C2 = F2w + g2([up(C3), F2w]); C1 = F1w + g1([up(C2), F1w])
    encoder   [x, C1] --s2--> [., C2] --s2--> [., C3] --s2, s2--> y (M, 1/16)
    prior     temporal prior tp(C3) (M, 1/16) fused with the hyperprior h_s(z_hat) -> (mu, sigma) of y
    decoder   y_hat --up, up--> [., C3] --up--> [., C2] --up--> [., C1] --blocks--> F_hat (N, 1): the propagated
              feature; refine (M-LVC): F_hat += R([F_hat, A(ref_1 o m_1), A(ref_2 o m_2), A(ref_3 o m_3)])
              --conv--> + warp(ref_1, v_hat) = x_hat (3, 1)   (the prediction skip of M-LVC: x_hat = x_bar + r_hat)

``m_k`` is the composed motion from frame t to frame t-k (mvcodec.layers.warp.compose); ``A`` a shared 3x3
conv over each reference's pixels (zeros for missing references).  Channel widths: N at full resolution,
N2 = 3N/2 at 1/2, N3 = 2N at 1/4 (TCM-lite, digest dcvc_b_tcm.md "Light versions").
"""

from __future__ import annotations

import torch
from torch import nn

from mvcodec.layers.blocks import ResidualBottleneck, conv, deconv
from mvcodec.layers.warp import compose, downsample_flow, warp
from mvcodec.models.inter_motion import down_up


def widths(n: int) -> tuple[int, int, int]:
    """Channels of the three context scales for feature width ``n``."""
    return n, (3 * n) // 2, 2 * n


class TemporalContext(nn.Module):
    """Feature-domain motion compensation: ``(C1, C2, C3)`` from a reference and the decoded motion."""

    def __init__(self, n: int) -> None:
        super().__init__()
        n1, n2, n3 = widths(n)
        act = nn.LeakyReLU
        self.from_pixels = conv(3, n1, 3)   # reference without a propagated feature (an I picture)
        self.adaptor = conv(n1, n1, 1)      # propagated feature of a P picture
        self.f1 = nn.Sequential(conv(n1, n1, 3), ResidualBottleneck(n1))
        self.f2 = nn.Sequential(conv(n1, n2, 3, 2), act(0.1), ResidualBottleneck(n2))
        self.f3 = nn.Sequential(conv(n2, n3, 3, 2), act(0.1), ResidualBottleneck(n3))
        self.g3 = nn.Sequential(conv(n3, n3, 3), act(0.1), conv(n3, n3, 3))
        self.up3 = deconv(n3, n2, 3)
        self.g2 = nn.Sequential(conv(2 * n2, n2, 3), act(0.1), conv(n2, n2, 3))
        self.up2 = deconv(n2, n1, 3)
        self.g1 = nn.Sequential(conv(2 * n1, n1, 3), act(0.1), conv(n1, n1, 3))

    def forward(self, frame: torch.Tensor, feature: torch.Tensor | None, flow: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``frame (B,3,H,W)``, ``feature (B,N,H,W)`` or None, ``flow (B,2,H,W)`` -> C1, C2, C3."""
        base = self.from_pixels(frame) if feature is None else self.adaptor(feature)
        f1 = self.f1(base)
        f2 = self.f2(f1)
        f3 = self.f3(f2)
        f1w, f2w, f3w = warp(f1, flow), warp(f2, downsample_flow(flow, 2)), warp(f3, downsample_flow(flow, 4))
        c3 = f3w + self.g3(f3w)
        c2 = f2w + self.g2(torch.cat([self.up3(c3), f2w], dim=1))
        c1 = f1w + self.g1(torch.cat([self.up2(c2), f1w], dim=1))
        return c1, c2, c3


class ContextualEncoder(nn.Module):
    """``[x (B,3,H,W), C1, C2, C3] -> y (B,M,H/16,W/16)`` (DCVC-TCM's contextual encoder)."""

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        n1, n2, n3 = widths(n)
        act = nn.LeakyReLU
        self.s1 = nn.Sequential(conv(3 + n1, n2, 3, 2), act(0.1))
        self.s2 = nn.Sequential(conv(2 * n2, n2, 3), ResidualBottleneck(n2), conv(n2, n3, 3, 2), act(0.1))
        self.s3 = nn.Sequential(conv(2 * n3, n3, 3), ResidualBottleneck(n3), conv(n3, n3, 3, 2), act(0.1),
                                conv(n3, m, 3, 2))

    def forward(self, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor) -> torch.Tensor:
        h = self.s1(torch.cat([x, c1], dim=1))
        h = self.s2(torch.cat([h, c2], dim=1))
        return self.s3(torch.cat([h, c3], dim=1))


class ContextualDecoder(nn.Module):
    """``[y_hat (B,M,H/16,W/16), C1, C2, C3] -> F_hat (B,N,H,W)`` (contextual decoder + frame generator)."""

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        n1, n2, n3 = widths(n)
        act = nn.LeakyReLU
        self.s3 = nn.Sequential(deconv(m, n3, 3), act(0.1), deconv(n3, n3, 3), act(0.1))
        self.s2 = nn.Sequential(conv(2 * n3, n3, 3), ResidualBottleneck(n3), deconv(n3, n2, 3), act(0.1))
        self.s1 = nn.Sequential(conv(2 * n2, n2, 3), ResidualBottleneck(n2), deconv(n2, n1, 3), act(0.1))
        self.generator = nn.Sequential(conv(2 * n1, n1, 3), ResidualBottleneck(n1), ResidualBottleneck(n1))

    def forward(self, y_hat: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor) -> torch.Tensor:
        h = self.s3(y_hat)
        h = self.s2(torch.cat([h, c3], dim=1))
        h = self.s1(torch.cat([h, c2], dim=1))
        return self.generator(torch.cat([h, c1], dim=1))


class TemporalPrior(nn.Module):
    """``C3 (B,N3,H/4,W/4) -> (B,M,H/16,W/16)``: the temporal part of the entropy model's input."""

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        n3 = widths(n)[2]
        self.net = nn.Sequential(conv(n3, m, 3, 2), nn.LeakyReLU(0.1), conv(m, m, 3, 2))

    def forward(self, c3: torch.Tensor) -> torch.Tensor:
        return self.net(c3)


def composed_motions(flow: torch.Tensor, motions: list[torch.Tensor | None], count: int) -> list[torch.Tensor]:
    """``[m_1, ..., m_count]``: the motion from frame t to t-k, composing ``flow`` (t -> t-1) with the references'
    decoded MVs ``motions[k]`` (t-1-k -> t-2-k); stops early where a motion is missing."""
    out = [flow]
    for k in range(count - 1):
        if k >= len(motions) or motions[k] is None:
            break
        out.append(compose(out[-1], motions[k].to(flow.dtype)))
    return out


class ReferenceRefiner(nn.Module):
    """M-LVC's multi-reference refinement, on the decoded feature: ``F_hat + R([F_hat, aligned references])``.

    Each of up to ``refs`` references is warped to frame t by its composed motion and passed through a shared
    3x3 conv (``align`` channels); missing references are zeros."""

    def __init__(self, n: int, refs: int, align: int = 16) -> None:
        super().__init__()
        self.refs = refs
        self.align = nn.Sequential(conv(3, align, 3), nn.LeakyReLU(0.1))
        self.net = down_up(n + refs * align, n, widths(n)[1])

    def forward(self, feature: torch.Tensor, frames: list[torch.Tensor], motions: list[torch.Tensor]) -> torch.Tensor:
        """``feature (B,N,H,W)``; ``frames[k] (B,3,H,W)`` reference t-1-k; ``motions[k]`` its composed motion."""
        aligned = [self.align(warp(f.to(feature.dtype), m)) for f, m in zip(frames, motions)]
        while len(aligned) < self.refs:
            aligned.append(torch.zeros_like(aligned[0]))
        return feature + self.net(torch.cat([feature, *aligned[: self.refs]], dim=1))
