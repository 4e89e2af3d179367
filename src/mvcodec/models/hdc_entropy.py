"""HDC-EM: the cross-view channel-slice entropy model of a dependent view (digest ``papers/digests/hdc.md``,
"Entropy model (HDC-EM)"), in the LMVC structure where view 0 stays independent (``lmvc.md``).

::

    y (B, M, h, w)       the dependent view's latent, split into S slices of M/S channels      (None on the decoder)
    prior (B, P, h, w)   its spatial-temporal prior Phi (hyperprior fused with the temporal prior)
    ref_hat (B, M, h, w) the decoded latent of a reference view of the same instant (already decoded, all slices)

    anchor  = conv1x1(prior)                              (B, M, h, w): where this view sees the scene
    aligned = HdcAlign(anchor, ref_hat)                   the reference latent shifted over the disparities and
                                                          weighted by the HDC score, fused to M channels
    slice i: (mu_i, sigma_i) = net_i(concat[aligned, y_hat_{<i}, prior])  ->  y_hat_i = coder.y(name_i, ...)
             residual=True: the prior is itself (mu, sigma) of all M channels (P = 2M) and net_i, whose last
             layer starts at zero, corrects slice i of it: a model started from single-view weights codes as
             the single-view entropy model until trained

Order and causality: the paper interleaves the views' slices (L1, R1, L2, R2, ...) so that each view helps the
other.  Here view 0 is the independent view (LMVC's backward compatibility: its packets decode with the
single-view decoder, so its latents cannot depend on any other view), which makes every slice of the reference
view available before the dependent view starts: slice i of a dependent view sees *all* reference slices, more
than the paper's ``<= i``, at no cost in causality (recorded in ``docs/decisions.md``).  Within the dependent
view the order is the paper's: slice i sees the same view's slices ``< i``.

Ablations (data): ``cross_view=False`` drops the aligned reference (channel-slice model of one view);
``attention`` / ``shift`` are :class:`~mvcodec.layers.hdc.HdcAlign`'s switches.

Coding path: every network here is built from the exact convolutions of :mod:`mvcodec.layers.blocks`, so on
float64 inputs the slice parameters (hence the scale indexes) are identical on the encoder and the decoder.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mvcodec.layers.blocks import conv
from mvcodec.layers.hdc import HdcAlign
from mvcodec.models.inter import LatentCoder


class HdcSliceEntropy(nn.Module):
    """HDC-EM for one dependent view (module docstring).

    Args:
        latent: M, channels of ``y`` and of the reference latent.
        prior: P, channels of the spatial-temporal prior.
        slices: S; must divide M.
        disparities: HDC candidates in latent pixels (1/16 of the picture: +-4 reaches +-64 pixels).
        cross_view: use the aligned reference latent (False: the intra-view slice model alone).
        attention, shift: :class:`HdcAlign` ablation switches.
        residual: the prior holds (mu, sigma) of the whole latent and the slice nets correct it (P must be 2M).
    """

    def __init__(self, latent: int, prior: int, slices: int = 4, disparities: Sequence[int] = tuple(range(-4, 5)),
                 cross_view: bool = True, attention: bool = True, shift: bool = True, residual: bool = False,
                 ) -> None:
        super().__init__()
        if slices < 1 or latent % slices:
            raise ValueError(f"HdcSliceEntropy: {slices} slices do not divide {latent} latent channels")
        if residual and prior != 2 * latent:
            raise ValueError(f"HdcSliceEntropy: a residual prior is mu and sigma: {2 * latent} channels, not {prior}")
        self.residual = residual
        self.latent, self.prior, self.slices = latent, prior, slices
        self.slice_channels = latent // slices
        self.cross_view = cross_view
        if cross_view:
            self.anchor = conv(prior, latent, 1)
            self.align = HdcAlign(latent, disparities, attention, shift)
        cross = latent if cross_view else 0
        hidden = max(2 * self.slice_channels, 64)
        self.params = nn.ModuleList(
            nn.Sequential(conv(cross + i * self.slice_channels + prior, hidden, 3), nn.LeakyReLU(0.1),
                          conv(hidden, hidden, 1), nn.LeakyReLU(0.1), conv(hidden, 2 * self.slice_channels, 1))
            for i in range(slices))
        if residual:
            for net in self.params:
                nn.init.zeros_(net[-1].weight)
                nn.init.zeros_(net[-1].bias)

    def code(self, coder: LatentCoder, name: str, y: torch.Tensor | None, prior: torch.Tensor,
             ref_hat: torch.Tensor | None) -> torch.Tensor:
        """Code (train, encode or decode, as ``coder`` does) the dependent view's latent slice by slice.

        ``y (B, M, h, w)`` or None on the decoder; ``prior (B, P, h, w)``; ``ref_hat (B, M, h, w)`` (ignored
        without ``cross_view``).  The slices go to ``coder`` as latents ``{name}{i}``, i = 0..S-1, in that order.
        Returns ``y_hat (B, M, h, w)`` in ``prior``'s dtype."""
        b, _, h, w = prior.shape
        if prior.shape[1] != self.prior:
            raise ValueError(f"HdcSliceEntropy: prior has {prior.shape[1]} channels, expected {self.prior}")
        if y is not None and y.shape != (b, self.latent, h, w):
            raise ValueError(f"HdcSliceEntropy: y {tuple(y.shape)} does not match ({b}, {self.latent}, {h}, {w})")
        context = [prior]
        if self.cross_view:
            if ref_hat is None or ref_hat.shape != (b, self.latent, h, w):
                raise ValueError(f"HdcSliceEntropy: the reference latent must be ({b}, {self.latent}, {h}, {w}), "
                                 f"got {None if ref_hat is None else tuple(ref_hat.shape)}")
            context.insert(0, self.align(self.anchor(prior), ref_hat.to(prior.dtype)))
        done: list[torch.Tensor] = []
        cs = self.slice_channels
        for i, net in enumerate(self.params):
            params = net(torch.cat(context[:-1] + done + context[-1:], dim=1))
            if self.residual:
                m = self.latent
                params = params + torch.cat([prior[:, i * cs:(i + 1) * cs], prior[:, m + i * cs:m + (i + 1) * cs]], 1)
            mu, sigma = params.chunk(2, dim=1)
            part = None if y is None else y[:, i * cs:(i + 1) * cs]
            done.append(coder.y(f"{name}{i}", part, mu, sigma))
        return torch.cat(done, dim=1)
