"""The motion networks of the inter codec: M-LVC's MV prediction and refinement, and the motion auto-encoder.

::

    decoded MVs of the references  v1 = v_{t-1} (t-1 -> t-2), v2 = v_{t-2} (t-2 -> t-3)    (None after an I picture)
    MvPredictor:    [v1, warp(v2, v1), avail] --conv s2, 2 residual blocks, deconv--> + v1  = v_bar (B,2,H,W)
    motion coding:  d = v - v_bar --mv_enc (x16)--> y_mv --mv_ha (x4)--> z_mv  (EntropyBottleneck)
                    z_mv_hat --mv_hs--> (mu, sigma) of y_mv            (GaussianConditional)
                    y_mv_hat --mv_dec (x16 up)--> d_hat ;  v' = v_bar + d_hat
    MvRefiner:      [v', ref, warp(ref, v'), warp(v1, v'), warp(v2, v' o v1)] --conv s2, 2 blocks, deconv--> + v'

Design (digest mlvc.md): MAMVP-Net predicts the current field from the previous decoded ones and only the
difference is coded; MV Refine-Net refines the decoded field with the references, decoder-side (the encoder runs
it too).  Lighter than the paper (one resolution instead of a 4-level pyramid, a strided residual net instead of
dilated convs) and with a hyperprior on the MVD instead of M-LVC's factorised prior (DCVC-TCM's motion coder,
digest dcvc_b_tcm.md).  Both nets add a zero-initialised correction to their input, so an untrained module is
the identity: "predict v_{t-1}" and "no refinement".  Every convolution comes from :mod:`mvcodec.layers.blocks`
(exact on float64 inputs, the coding path).
"""

from __future__ import annotations

import torch
from torch import nn

from mvcodec.layers.blocks import ResidualBottleneck, conv, deconv
from mvcodec.layers.warp import compose, warp


def zero_last(net: nn.Sequential) -> nn.Sequential:
    """``net`` with its last layer's weight and bias set to zero (a correction branch that starts at 0)."""
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def down_up(cin: int, cout: int, ch: int) -> nn.Sequential:
    """``(B, cin, H, W) -> (B, cout, H, W)``: a stride-2 conv, two residual blocks at 1/2, a deconv back (the
    work happens at half resolution: the coding path runs it in float64).  The last layer starts at zero."""
    return zero_last(nn.Sequential(
        conv(cin, ch, 3, 2), nn.LeakyReLU(0.1), ResidualBottleneck(ch), ResidualBottleneck(ch), deconv(ch, cout, 3)))


def previous_motion(motions: list[torch.Tensor | None], like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(v1, v2, avail)``: the references' decoded MVs (zeros where missing) and a (B,2,H,W) availability map
    (channel k is 1 where ``motions[k]`` exists), in ``like``'s dtype."""
    zeros = torch.zeros_like(like[:, :2])
    v1 = motions[0] if motions and motions[0] is not None else zeros
    v2 = motions[1] if len(motions) > 1 and motions[1] is not None else zeros
    avail = torch.cat([torch.ones_like(zeros[:, :1]) * float(v is not None)
                       for v in (motions[:2] + [None, None])[:2]], dim=1)
    return v1.to(like.dtype), v2.to(like.dtype), avail


class MvPredictor(nn.Module):
    """M-LVC's MV prediction (MAMVP-Net, simplified): ``v_bar (B,2,H,W)`` from the previous decoded MVs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = down_up(6, 2, channels)

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """``v1``, ``v2`` (B,2,H,W) decoded MVs of the last two references (zeros if missing), ``avail`` (B,2,H,W)."""
        return v1 + self.net(torch.cat([v1, warp(v2, v1), avail], dim=1))


class MvRefiner(nn.Module):
    """M-LVC's MV Refine-Net (simplified): ``v_hat = v' + net(v', ref, warped ref, aligned old MVs)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = down_up(12, 2, channels)

    def forward(self, v: torch.Tensor, ref: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        """``v`` (B,2,H,W) decoded field before refinement, ``ref`` (B,3,H,W) the last reference, ``v1``, ``v2`` the
        references' decoded MVs (zeros if missing) -> refined field (B,2,H,W)."""
        aligned1 = warp(v1, v)                # v_{t-1} seen from frame t
        aligned2 = warp(v2, compose(v, v1))   # v_{t-2} seen from frame t
        return v + self.net(torch.cat([v, ref, warp(ref, v), aligned1, aligned2], dim=1))


class MotionCoder(nn.Module):
    """The transforms of the motion auto-encoder with hyperprior (x16 latent ``M`` channels, x64 hyper ``Z``).

    ``mv_enc (B,2,H,W) -> (B,M,H/16,W/16)``, ``mv_ha -> (B,Z,H/64,W/64)``, ``mv_hs -> (B,2M,H/16,W/16)``
    (mu, sigma), ``mv_dec (B,M,H/16,W/16) -> (B,2,H,W)``."""

    def __init__(self, channels: int, latent: int, hyper: int) -> None:
        super().__init__()
        c, m, z = channels, latent, hyper
        act = nn.LeakyReLU
        self.mv_enc = nn.Sequential(conv(2, c, 3, 2), act(0.1), ResidualBottleneck(c), conv(c, c, 3, 2), act(0.1),
                                    ResidualBottleneck(c), conv(c, c, 3, 2), act(0.1), conv(c, m, 3, 2))
        self.mv_ha = nn.Sequential(conv(m, z, 3), act(0.1), conv(z, z, 3, 2), act(0.1), conv(z, z, 3, 2))
        self.mv_hs = nn.Sequential(deconv(z, z, 3), act(0.1), deconv(z, m, 3), act(0.1), conv(m, 2 * m, 1))
        self.mv_dec = nn.Sequential(deconv(m, c, 3), act(0.1), ResidualBottleneck(c), deconv(c, c, 3), act(0.1),
                                    ResidualBottleneck(c), deconv(c, c, 3), act(0.1), deconv(c, 2, 3))
