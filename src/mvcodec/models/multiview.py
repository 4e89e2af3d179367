"""The dependent-view P-picture model of the multi-view codec: the single-view inter model
(:mod:`mvcodec.models.inter`) plus LMVC's inter-view priors and HDC's cross-view alignment.

::

    side = InterViewRefs(base, near): the decoded pictures of view 0 (base) and of the nearest view already coded
           (near) at the same instant t (the same picture when the dependent view is view 1)
    motion   IVMVP (LMVC):  y_mv = mv_enc(d) + iv_mv_enc([d, v_base, a])          (a: 1 where v_base exists)
                            d_hat = mv_dec(y_mv_hat) + iv_mv_dec([d_hat, v_base, a])
             inter-view motion prior (LMVC): p_mv = mv_hs(z_mv) + fuse([mv_hs(z_mv), y_mv_base, down(v_base, a)])
    content  inter-view contexts (LMVC, disparity-free): P_k = pyramid(F_base)   k = 1, 2, 3 (1, 1/2, 1/4)
                            C_k += predict_k([P_k, C_k])     (strided conv net: a receptive field wider than
                                                              the disparity, no disparity map, no warping)
             HDC-FER:       C_k = HdcFer(C_k, pyramid(F_near)_k)       k = 2, 3
             inter-view contextual prior (LMVC): prior += fuse([prior, down(P_3), y_base])
             HDC-EM:        y coded in S channel slices, each with its earlier slices, the spatial-temporal
                            prior and the near view's decoded latent aligned by HDC (models/hdc_entropy.py)
    everything else (flow, MV prediction / refinement, contextual encoder / decoder, reference refinement)
    is the single-view model's, through the hooks of :meth:`InterModel._code`.

A dependent view's key picture (the instant its intra period starts) is a P picture whose reference is the
base view's decoded picture of the same instant (inter-view prediction: the flow net then estimates
disparity), so every dependent picture goes through this model.

Initialisation (digest lmvc.md, "Loss and training schedule"): every inter-view branch ends in a zero
layer, so a model loaded with single-view weights (strict=False) starts as the single-view codec and training
moves away from it.  Ablations are data: ``iv_motion``, ``iv_context``, ``hdc_fer``, ``hdc_em``,
``hdc_attention`` (shift only), ``hdc_shift`` (channel attention only).

Deviations from the designs (``docs/decisions.md``): view 0 keeps the single-view model unchanged
(backward compatibility), so HDC works one way (dependent from decoded views) and HDC-FER acts on the
contexts that the contextual encoder and decoder both consume (scales 1/2 and 1/4) rather than inside each
stage of both; IVMVP conditions on the base view's decoded motion field and latent (we keep no separate
motion features). Exactness: every net is made of the exact convolutions of :mod:`mvcodec.layers.blocks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mvcodec.errors import InputError
from mvcodec.layers.blocks import ResidualBottleneck, conv
from mvcodec.layers.hdc import HdcFer
from mvcodec.models.config_json import config_from_json
from mvcodec.models.dpb import DecodedPicture
from mvcodec.models.hdc_entropy import HdcSliceEntropy
from mvcodec.models.inter import InterConfig, InterModel, LatentCoder
from mvcodec.models.inter_context import widths
from mvcodec.models.inter_motion import down_up, zero_last


@dataclass(frozen=True)
class DependentConfig(InterConfig):
    """:class:`InterConfig` plus the inter-view switches (module docstring) and HDC's sizes: ``disparities`` D
    (candidates -D..D on each HDC grid), ``slices`` S of HDC-EM (must divide M)."""

    iv_motion: bool = True
    iv_context: bool = True
    hdc_fer: bool = True
    hdc_em: bool = True
    hdc_attention: bool = True
    hdc_shift: bool = True
    disparities: int = 4
    slices: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.disparities < 1 or self.slices < 1 or self.M % self.slices:
            raise InputError(f"bad dependent-view config: disparities >= 1 and slices dividing M={self.M}")

    def inter(self) -> InterConfig:
        """The single-view part (the config of the weights a dependent model starts from)."""
        return InterConfig(**{k: getattr(self, k) for k in InterConfig.__dataclass_fields__})

    @classmethod
    def from_json(cls, data: Any, missing: Mapping[str, Any] | None = None) -> DependentConfig:
        return config_from_json(cls, data, "dependent-view model", missing)


@dataclass
class InterViewRefs:
    """The decoded pictures a dependent view uses at its instant: ``base`` (view 0) and ``near`` (the nearest
    view already coded; ``base`` itself for view 1).  ``cache`` keeps what is derived from them once per picture."""

    base: DecodedPicture
    near: DecodedPicture
    cache: dict[str, Any] = field(default_factory=dict)


class FeaturePyramid(nn.Module):
    """``(frame, feature or None) -> (P1 (N,1), P2 (3N/2,1/2), P3 (2N,1/4))``: a decoded view's content features
    at the three context scales (from its propagated feature, or from its pixels after an intra picture)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        n1, n2, n3 = widths(n)
        act = nn.LeakyReLU
        self.from_pixels = conv(3, n1, 3)
        self.adaptor = conv(n1, n1, 1)
        self.p1 = nn.Sequential(conv(n1, n1, 3), ResidualBottleneck(n1))
        self.p2 = nn.Sequential(conv(n1, n2, 3, 2), act(0.1), ResidualBottleneck(n2))
        self.p3 = nn.Sequential(conv(n2, n3, 3, 2), act(0.1), ResidualBottleneck(n3))

    def forward(self, picture: DecodedPicture, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        base = self.adaptor(picture.feature.to(dtype)) if picture.feature is not None \
            else self.from_pixels(picture.frame.to(dtype))
        p1 = self.p1(base)
        p2 = self.p2(p1)
        return p1, p2, self.p3(p2)


def _down(cin: int, cout: int, steps: int, ch: int) -> nn.Sequential:
    """``steps`` stride-2 convs ``(B, cin, H, W) -> (B, cout, H / 2**steps, W / 2**steps)``."""
    layers: list[nn.Module] = []
    c = cin
    for i in range(steps):
        last = i == steps - 1
        layers.append(conv(c, cout if last else ch, 3, 2))
        if not last:
            layers.append(nn.LeakyReLU(0.1))
        c = ch
    return nn.Sequential(*layers)


def _fuse(cin: int, cout: int) -> nn.Sequential:
    """A zero-initialised 1x1 fusion ``(B, cin, h, w) -> (B, cout, h, w)`` (a correction added to a prior)."""
    return zero_last(nn.Sequential(conv(cin, cout, 1), nn.LeakyReLU(0.1), conv(cout, cout, 1)))


class DependentViewModel(InterModel):
    """P pictures of a dependent view (module docstring); ``side`` is an :class:`InterViewRefs`."""

    def __init__(self, cfg: DependentConfig) -> None:
        super().__init__(cfg)
        n1, n2, n3 = widths(cfg.N)
        c, mv_m, m = cfg.mv_channels, cfg.mv_M, cfg.M
        disparities = tuple(range(-cfg.disparities, cfg.disparities + 1))
        # a branch the config switches off is a None attribute, as in InterModel: a schedule written for the full
        # model then also trains its ablations (engine.check_trainable skips the prefixes that name it)
        if cfg.iv_motion:
            self.iv_mv_enc = zero_last(_down(5, mv_m, 4, c))
            self.iv_mv_dec = down_up(5, 2, c)
            self.iv_mv_down = _down(3, mv_m, 4, c)
            self.iv_mv_prior = _fuse(2 * mv_m + 2 * mv_m, 2 * mv_m)
        else:
            self.iv_mv_enc = self.iv_mv_dec = self.iv_mv_down = self.iv_mv_prior = None
        self.iv_pyramid = FeaturePyramid(cfg.N) if cfg.iv_context or cfg.hdc_fer else None
        if cfg.iv_context:
            self.iv_predict = nn.ModuleList(down_up(2 * k, k, k) for k in (n1, n2, n3))
            self.iv_prior_down = _down(n3, m, 2, n3)
            self.iv_prior = _fuse(2 * m + m + m, 2 * m)
        else:
            self.iv_predict = self.iv_prior_down = self.iv_prior = None
        if cfg.hdc_fer:
            self.hdc_fer = nn.ModuleList(HdcFer(k, disparities, 2, cfg.hdc_attention, cfg.hdc_shift) for k in (n2, n3))
            for fer in self.hdc_fer:  # start as the identity (cur + 0)
                nn.init.zeros_(fer.align.fuse.weight)
                nn.init.zeros_(fer.align.fuse.bias)
        else:
            self.hdc_fer = None
        self.hdc_em = HdcSliceEntropy(m, 2 * m, cfg.slices, disparities, True, cfg.hdc_attention, cfg.hdc_shift,
                                      residual=True) if cfg.hdc_em else None

    # ------------------------------------------------------------------------------------------ side data
    @staticmethod
    def _side(side: Any) -> InterViewRefs:
        if not isinstance(side, InterViewRefs):
            raise InputError("a dependent-view picture needs the decoded pictures of its reference views "
                             f"(InterViewRefs), got {type(side).__name__}")
        return side

    def _base_motion(self, side: InterViewRefs, like: torch.Tensor) -> torch.Tensor:
        """``[v_base, a]`` (B,3,H,W) in ``like``'s dtype: the base view's decoded motion (zeros for an intra
        picture) and its availability."""
        motion = side.base.motion
        if motion is None:
            return torch.zeros_like(like[:, :1]).expand(-1, 3, -1, -1).contiguous()
        motion = motion.to(like.dtype)
        return torch.cat([motion, torch.ones_like(motion[:, :1])], dim=1)

    def _pyramid(self, side: InterViewRefs, which: str, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        key = f"pyramid:{which}:{dtype}"
        if key not in side.cache:
            picture = side.base if which == "base" else side.near
            if which == "near" and side.near is side.base:
                side.cache[key] = self._pyramid(side, "base", dtype)
            else:
                side.cache[key] = self.iv_pyramid(picture, dtype)
        return side.cache[key]

    @staticmethod
    def _latent(picture: DecodedPicture, name: str, like: torch.Tensor) -> torch.Tensor:
        """A decoded latent of a reference picture (zeros of ``like``'s shape when it has none: intra pictures)."""
        latent = (picture.latents or {}).get(name)
        if latent is None or latent.shape != like.shape:
            return torch.zeros_like(like)
        return latent.to(like.dtype)

    # ------------------------------------------------------------------------------------------ hooks
    def _motion_analysis(self, d: torch.Tensor, side: Any) -> torch.Tensor:
        y = self.motion.mv_enc(d)
        if self.cfg.iv_motion:
            y = y + self.iv_mv_enc(torch.cat([d, self._base_motion(self._side(side), d)], dim=1))
        return y

    def _motion_prior(self, z_mv_hat: torch.Tensor, side: Any) -> torch.Tensor:
        p = self.motion.mv_hs(z_mv_hat)
        if self.cfg.iv_motion:
            side = self._side(side)
            latent_like = p[:, : self.cfg.mv_M]
            base = torch.cat([self._latent(side.base, "y_mv", latent_like),
                              self.iv_mv_down(self._base_motion(side, side.base.frame.to(p.dtype)))], dim=1)
            p = p + self.iv_mv_prior(torch.cat([p, base], dim=1))
        return p

    def _motion_synthesis(self, y_mv: torch.Tensor, side: Any) -> torch.Tensor:
        d = self.motion.mv_dec(y_mv)
        if self.cfg.iv_motion:
            d = d + self.iv_mv_dec(torch.cat([d, self._base_motion(self._side(side), d)], dim=1))
        return d

    def _contexts(self, ref: torch.Tensor, feature: torch.Tensor | None, v_hat: torch.Tensor,
                  side: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        contexts = list(self.context(ref, feature, v_hat))
        cfg = self.cfg
        if cfg.iv_context or cfg.hdc_fer:
            side = self._side(side)
            dt = contexts[0].dtype
        if cfg.iv_context:
            base = self._pyramid(side, "base", dt)
            contexts = [c + net(torch.cat([p, c], dim=1)) for c, p, net in zip(contexts, base, self.iv_predict)]
        if cfg.hdc_fer:
            near = self._pyramid(side, "near", dt)
            contexts[1] = self.hdc_fer[0](contexts[1], near[1])
            contexts[2] = self.hdc_fer[1](contexts[2], near[2])
        return contexts[0], contexts[1], contexts[2]

    def _frame_prior(self, z_hat: torch.Tensor, c3: torch.Tensor, side: Any) -> torch.Tensor:
        prior = super()._frame_prior(z_hat, c3, side)
        if self.cfg.iv_context:
            side = self._side(side)
            latent_like = prior[:, : self.cfg.M]
            iv = torch.cat([self.iv_prior_down(self._pyramid(side, "base", c3.dtype)[2]),
                            self._latent(side.base, "y", latent_like)], dim=1)
            prior = prior + self.iv_prior(torch.cat([prior, iv], dim=1))
        return prior

    def _frame_latent(self, coder: LatentCoder, y: torch.Tensor | None, prior: torch.Tensor,
                      side: Any) -> torch.Tensor:
        if not self.cfg.hdc_em:
            return super()._frame_latent(coder, y, prior, side)
        near = self._latent(self._side(side).near, "y", prior[:, : self.cfg.M])
        return self.hdc_em.code(coder, "y", y, prior, near)


def build_dependent(cfg: DependentConfig = DependentConfig()) -> DependentViewModel:
    """The one builder of dependent-view models."""
    return DependentViewModel(cfg)


def from_single_view(cfg: DependentConfig, single: InterModel) -> DependentViewModel:
    """A dependent-view model started from single-view weights (every shared tensor copied, the inter-view
    branches at their zero initialisation): it codes as ``single`` does until trained (module docstring)."""
    if cfg.inter() != single.cfg:
        raise InputError(f"the dependent-view config's single-view part {cfg.inter()} is not the weights' "
                         f"config {single.cfg}")
    model = build_dependent(cfg)
    missing, unexpected = model.load_state_dict(single.state_dict(), strict=False)
    if unexpected:
        raise InputError(f"single-view weights have tensors the dependent model lacks: {unexpected[:3]}")
    return model
