"""The single-view inter codec: DCVC-TCM conditional coding with M-LVC's multiple references (P pictures).

::

    refs = dpb.references(view, t, 3): [t-1, t-2, t-3] (decoded frame, feature, motion), fewer after an I picture
    ENCODER ONLY                              BOTH SIDES (decoder-side nets; float64, exact, on the coding path)
                                              v_bar = MvPredictor(v_{t-1}, v_{t-2})          (0 when disabled/none)
    v = FlowNet(x, ref_1)
    y_mv = mv_enc(v - v_bar) * mv_gain[q]  -> z_mv_hat, y_mv_hat (hyperprior; round(y - mu) ANS-coded)
                                              v' = v_bar + mv_dec(y_mv_hat * mv_inv_gain[q])
                                              v_hat = MvRefiner(v', ref_1, old MVs)          (v' when disabled)
                                              C1, C2, C3 = TemporalContext(ref_1 frame/feature, v_hat)
    y = ctx_enc(x, C1, C2, C3) * gain[q]   -> z_hat, y_hat; (mu, sigma) = fuse(h_s(z_hat), tp(C3))
                                              F_hat = ctx_dec(y_hat * inv_gain[q], C1, C2, C3)
                                              F_hat = ReferenceRefiner(F_hat, refs warped by composed motion)
                                              x_hat = warp(ref_1, v_hat) + to_rgb(F_hat)
                                              dpb.put(t, (x_hat, F_hat, v_hat))

Payload of one P picture: one ANS stream holding z_mv, y_mv, z, y in that order (``mvcodec.entropy`` tables:
factorized for z, Gaussian with the fixed ScaleTable for y), after a mode byte in files with frame-latent skip:
the encoder codes the motion once and the frame latent both ways, coded or skipped (z and y left out of the
stream, every symbol 0 on both sides), and keeps the cheaper in rate-distortion cost (:meth:`InterModel.compress`).
Variable rate: per-quality gain vectors on both latents (DCVC-HEM's gains, as the intra model), quality index per
sample.  The M-LVC ablation is data:
``InterConfig(references=1, mv_prediction=False, mv_refinement=False, reference_refinement=False)``.

Exactness (as :mod:`mvcodec.models.intra`): the decoder-side networks run in float64 on the fixed-point face of
:mod:`mvcodec.layers.blocks`, warping is per-element, so scale indexes, reconstructions and the buffer contents
are bit-identical on both sides whatever the thread count; the encoder codes with the same function
(:meth:`InterModel._code`) and returns the decoder's reconstruction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, Self

import torch
from torch import nn

from mvcodec.entropy import EntropyBottleneck, GaussianConditional, dequantize, quantize, to_symbols
from mvcodec.entropy.coder import SegmentDecoder, decode_indexed_part, encode_segments, indexed_segments
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.layers.blocks import ExactOverflowError, conv, deconv
from mvcodec.layers.flow import FlowNet
from mvcodec.layers.gain import quality_gains
from mvcodec.layers.padding import replicate_pad
from mvcodec.layers.warp import warp
from mvcodec.models.config_json import config_from_json
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter_context import (
    ContextualDecoder,
    ContextualEncoder,
    ReferenceRefiner,
    TemporalContext,
    TemporalPrior,
    composed_motions,
)
from mvcodec.models.inter_motion import MotionCoder, MvPredictor, MvRefiner, previous_motion

PAD_MULTIPLE = 64  # latents at 1/16, hyper-latents at 1/64
FRAME_CODED, FRAME_SKIPPED, PICTURE_COPIED, KEY_COPIED = 0, 1, 2, 3
"""The mode byte that starts a P picture's payload in files with frame-latent skip (``compress(skip_cost=..)``):
the frame latent (z, y) coded, or skipped (:class:`SkippedFrameCoder`: not in the stream, all symbols 0), or
(files with picture copy, ``compress(copy=True)``) the whole picture copied from its nearest reference: nothing
else in the payload, no motion (the skip picture of video codecs: a static scene's pictures, where the P model's
reconstruction would lose more than the copy), or (files with key copy, ``compress(copy=True, key=..)``) copied
from the key picture of its intra period: the long-term reference of video codecs, for a scene that comes back
to where the period began after the pictures in between moved away from it."""
ANALYSIS_INIT_GAIN = 16.0
"""The last convolution of the contextual encoder and of the motion encoder starts this much larger than PyTorch's
default initialisation.  With the default, a fresh model's frame latent has a standard deviation of 0.038 at the
top rung (128x128 synthetic frames) and its motion latent 0.08 (from ground-truth flow): 12-25x below the
rounding step, so the decoder sees round(y) = mu, learns to do without the latent, and the encoder never gets a
reason to grow it (the rate collapse of mlvc-v1: BENCHMARKS.md).  x16 starts both near the step."""


@dataclass(frozen=True)
class InterConfig:
    """Sizes and switches of the inter model.

    ``N``: feature channels at full resolution (3N/2 at 1/2, 2N at 1/4); ``M`` / ``Z``: frame latent and hyper
    channels; ``mv_channels`` / ``mv_M`` / ``mv_Z``: motion nets' width, motion latent and hyper channels;
    ``qualities``: gain vectors; ``references``: 1..3 pictures used (M-LVC); ``mv_prediction``,
    ``mv_refinement``, ``reference_refinement``: M-LVC's modules (off = the ablation); ``flow_levels`` /
    ``flow_channels`` / ``flow_search``: the encoder's SpyNet-like flow net and its cost volume's reach
    (:mod:`mvcodec.layers.flow`; 0 = none, the net of the weights shipped before it).  The defaults (1.5 M
    parameters) keep the codec's weights file (this model and the default intra model, float32) under the zoo's
    20 MB."""

    N: int = 32
    M: int = 96
    Z: int = 48
    mv_channels: int = 32
    mv_M: int = 48
    mv_Z: int = 32
    qualities: int = 6
    references: int = 3
    mv_prediction: bool = True
    mv_refinement: bool = True
    reference_refinement: bool = True
    flow_levels: int = 4
    flow_channels: int = 24
    flow_search: int = 2

    def __post_init__(self) -> None:
        sizes = (self.N, self.M, self.Z, self.mv_channels, self.mv_M, self.mv_Z, self.qualities, self.flow_channels)
        if min(sizes) < 2 or not 1 <= self.references <= 3 or not 1 <= self.flow_levels <= 6 \
                or not 0 <= self.flow_search <= 4:
            raise InputError(f"bad inter model config {self}: sizes >= 2, references 1..3, flow_levels 1..6, "
                             f"flow_search 0..4")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, missing: Mapping[str, Any] | None = None) -> InterConfig:
        """From :meth:`to_json`'s dict (or a JSON string); anything else is an :class:`InputError`.  ``missing``:
        values for absent fields (:func:`~mvcodec.models.config_json.config_from_json`)."""
        return config_from_json(cls, data, "inter model", missing)

    @classmethod
    def from_stored(cls, data: Any) -> Self:
        """:meth:`from_json` for a config stored by an earlier version (a weights file, a zoo entry, a bitstream
        header): a field added since takes the value that rebuilds what was stored (:data:`STORED_DEFAULTS`)."""
        return cls.from_json(data, STORED_DEFAULTS)


STORED_DEFAULTS: dict[str, Any] = {"flow_search": 0}
"""Fields added to :class:`InterConfig` after weights were shipped, with the value those weights were made with."""


def build_inter(cfg: InterConfig = InterConfig()) -> InterModel:
    """The one builder of inter models."""
    return InterModel(cfg)


class InterModel(nn.Module):
    """P-picture codec (module docstring).  Training: :meth:`forward` (one P picture) and
    :meth:`forward_sequence` (cascade); coding: :meth:`compress` / :meth:`decompress` with a
    :class:`~mvcodec.models.dpb.DecodedPictureBuffer`."""

    def __init__(self, cfg: InterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.flow = FlowNet(cfg.flow_levels, cfg.flow_channels, cfg.flow_search)
        self.mv_predictor = MvPredictor(cfg.mv_channels) if cfg.mv_prediction else None
        self.mv_refiner = MvRefiner(cfg.mv_channels) if cfg.mv_refinement else None
        self.motion = MotionCoder(cfg.mv_channels, cfg.mv_M, cfg.mv_Z)
        self.context = TemporalContext(cfg.N)
        self.ctx_enc = ContextualEncoder(cfg.N, cfg.M)
        self.ctx_dec = ContextualDecoder(cfg.N, cfg.M)
        self.h_a = nn.Sequential(conv(cfg.M, cfg.Z, 3), nn.LeakyReLU(0.1), conv(cfg.Z, cfg.Z, 3, 2),
                                 nn.LeakyReLU(0.1), conv(cfg.Z, cfg.Z, 3, 2))
        self.h_s = nn.Sequential(deconv(cfg.Z, cfg.Z, 3), nn.LeakyReLU(0.1), deconv(cfg.Z, cfg.M, 3))
        self.temporal_prior = TemporalPrior(cfg.N, cfg.M)
        self.prior_fusion = nn.Sequential(conv(2 * cfg.M, 2 * cfg.M, 1), nn.LeakyReLU(0.1),
                                          conv(2 * cfg.M, 2 * cfg.M, 1))
        self.refiner = ReferenceRefiner(cfg.N, cfg.references) if cfg.reference_refinement else None
        self.to_rgb = conv(cfg.N, 3, 3)
        with torch.no_grad():  # start near x_hat = the motion-compensated prediction (M-LVC: x_hat = x_bar + r_hat)
            self.to_rgb.weight.mul_(0.1)
            self.to_rgb.bias.zero_()
            for last in (self.ctx_enc.s3[-1], self.motion.mv_enc[-1]):  # latents near the rounding step
                last.weight.mul_(ANALYSIS_INIT_GAIN)
                last.bias.mul_(ANALYSIS_INIT_GAIN)
        self.gain, self.inv_gain = quality_gains(cfg.qualities, cfg.M)
        self.mv_gain, self.mv_inv_gain = quality_gains(cfg.qualities, cfg.mv_M)
        self.mv_entropy_bottleneck = EntropyBottleneck(cfg.mv_Z)
        self.entropy_bottleneck = EntropyBottleneck(cfg.Z)
        self.gaussian = GaussianConditional()
        # Training only, set per stage by the task: what the decoder side sees of each latent (TrainCoder's
        # ``decoder``): "ste" round(y) with a straight-through gradient; "noise" y + U(-1/2, 1/2) for every latent,
        # so a latent that starts below the rounding step still reaches the decoder; "frame-noise" the same for the
        # frame latent only (the motion as it will be coded).
        self.decoder_quantization = "ste"

    # ------------------------------------------------------------------------------------------ the one path
    def _code(self, x: torch.Tensor | None, refs: list[DecodedPicture], quality: torch.Tensor, coder: LatentCoder,
              motion_only: bool = False, side: Any = None, frame_coder: LatentCoder | None = None,
              ) -> dict[str, Any]:
        """Code one P picture.  ``x (B,3,H,W)`` padded (None when decoding), ``refs`` most recent first (padded,
        in the coding dtype), ``quality (B,)``.  ``coder`` quantizes (training), codes or decodes the latents
        (``frame_coder``, when given, the frame latent's: :class:`SkippedFrameCoder` for a skipped one).
        ``side``: what a subclass's hooks (the ``_motion_*``, ``_contexts``, ``_frame_*`` methods) need besides
        the references (the multi-view codec's inter-view data); this class ignores it.

        Returns ``{"x_hat", "feature", "motion" (v_hat), "flow" (v, encoder only), "prediction"
        (ref_1 warped by v_hat), "latents" {"y_mv", "y"} (decoded)}``; with ``motion_only`` the frame coding is
        skipped and ``x_hat`` is the prediction."""
        out = self._code_motion(x, refs, quality, coder, side)
        if motion_only:
            return {**out, "x_hat": out["prediction"], "feature": None}
        return self._code_frame(x, refs, quality, frame_coder or coder, out, side)

    def _code_motion(self, x: torch.Tensor | None, refs: list[DecodedPicture], quality: torch.Tensor,
                     coder: LatentCoder, side: Any) -> dict[str, Any]:
        """The first half of :meth:`_code`: the motion latents (z_mv, y_mv) and the prediction.  Returns
        ``{"motion", "flow", "prediction", "latents" {"y_mv"}}``."""
        cfg = self.cfg
        refs = refs[: cfg.references]
        ref = refs[0].frame
        dt = ref.dtype
        enc_dt = torch.float32 if x is None else x.dtype
        motions = [r.motion for r in refs[:2]]
        v1, v2, avail = previous_motion(motions, ref)
        v_bar = self.mv_predictor(v1, v2, avail) if self.mv_predictor is not None and motions[0] is not None \
            else torch.zeros_like(v1)
        # ---- motion
        mv_gain, mv_inv = self.mv_gain[quality].unsqueeze(-1).unsqueeze(-1), \
            self.mv_inv_gain[quality].unsqueeze(-1).unsqueeze(-1)
        flow = y_mv = z_mv = None
        if x is not None:
            flow = self.flow(x, ref.to(enc_dt))
            y_mv = self._motion_analysis(flow - v_bar.to(enc_dt), side) * mv_gain
            z_mv = self.motion.mv_ha(y_mv)
        hp, wp = ref.shape[-2:]
        z_mv_hat = coder.z("z_mv", z_mv, (ref.shape[0], cfg.mv_Z, hp // 64, wp // 64), self.mv_entropy_bottleneck)
        mu, sigma = self._motion_prior(z_mv_hat.to(dt), side).chunk(2, dim=1)
        y_mv_hat = coder.y("y_mv", y_mv, mu, sigma)
        v_hat = v_bar + self._motion_synthesis(y_mv_hat * mv_inv.to(dt), side)
        if self.mv_refiner is not None:
            v_hat = self.mv_refiner(v_hat, ref, v1, v2)
        return {"motion": v_hat, "flow": flow, "prediction": warp(ref, v_hat), "latents": {"y_mv": y_mv_hat}}

    def _code_frame(self, x: torch.Tensor | None, refs: list[DecodedPicture], quality: torch.Tensor,
                    coder: LatentCoder, motion: dict[str, Any], side: Any,
                    contexts: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
        """The second half of :meth:`_code` after :meth:`_code_motion`'s ``motion``: contexts, the frame latents
        (z, y) and the reconstruction (``motion`` is not changed, so the encoder can try two ``coder``;
        ``contexts``, :meth:`_motion_contexts` of this ``motion`` when the caller has them: they do not depend on
        the frame latent, so the encoder's two trials share them)."""
        cfg = self.cfg
        refs = refs[: cfg.references]
        ref = refs[0].frame
        dt = ref.dtype
        enc_dt = torch.float32 if x is None else x.dtype
        hp, wp = ref.shape[-2:]
        v_hat, prediction, y_mv_hat = motion["motion"], motion["prediction"], motion["latents"]["y_mv"]
        c1, c2, c3 = contexts or self._motion_contexts(refs, motion, side)
        y = z = None
        if x is not None:
            gain = self.gain[quality].unsqueeze(-1).unsqueeze(-1)
            y = self.ctx_enc(x, c1.to(enc_dt), c2.to(enc_dt), c3.to(enc_dt)) * gain
            z = self.h_a(y)
        z_hat = coder.z("z", z, (ref.shape[0], cfg.Z, hp // 64, wp // 64), self.entropy_bottleneck)
        y_hat = self._frame_latent(coder, y, self._frame_prior(z_hat.to(dt), c3, side), side)
        inv = self.inv_gain[quality].unsqueeze(-1).unsqueeze(-1).to(dt)
        feature = self.ctx_dec(y_hat * inv, c1, c2, c3)
        if self.refiner is not None:
            feature = self.refiner(feature, [r.frame for r in refs],
                                   composed_motions(v_hat, [r.motion for r in refs], len(refs)))
        x_hat = prediction + self.to_rgb(feature)
        return {**motion, "x_hat": x_hat, "feature": feature, "latents": {"y_mv": y_mv_hat, "y": y_hat}}

    def _motion_contexts(self, refs: list[DecodedPicture], motion: dict[str, Any],
                         side: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`_contexts` of :meth:`_code_motion`'s ``motion`` on the nearest reference: the one place that
        says which picture the contexts come from, for the decoder's path and the encoder's shared trials."""
        return self._contexts(refs[0].frame, refs[0].feature, motion["motion"], side)

    # Hooks of the coding path (the single-view networks here; the multi-view codec's dependent views add their
    # inter-view priors by overriding them).
    def _motion_analysis(self, d: torch.Tensor, side: Any) -> torch.Tensor:
        """Motion difference ``d (B,2,H,W)`` -> motion latent ``(B,mv_M,H/16,W/16)`` (before the gain)."""
        return self.motion.mv_enc(d)

    def _motion_prior(self, z_mv_hat: torch.Tensor, side: Any) -> torch.Tensor:
        """``z_mv_hat`` -> ``(B,2 mv_M,H/16,W/16)``: mu and sigma of the motion latent."""
        return self.motion.mv_hs(z_mv_hat)

    def _motion_synthesis(self, y_mv: torch.Tensor, side: Any) -> torch.Tensor:
        """Decoded motion latent (after the inverse gain) -> decoded motion difference ``(B,2,H,W)``."""
        return self.motion.mv_dec(y_mv)

    def _contexts(self, ref: torch.Tensor, feature: torch.Tensor | None, v_hat: torch.Tensor,
                  side: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The multi-scale contexts C1, C2, C3 of the contextual encoder, decoder and prior."""
        return self.context(ref, feature, v_hat)

    def _frame_prior(self, z_hat: torch.Tensor, c3: torch.Tensor, side: Any) -> torch.Tensor:
        """``(B,2M,H/16,W/16)``: the fused hyperprior and temporal prior of the frame latent."""
        return self.prior_fusion(torch.cat([self.h_s(z_hat), self.temporal_prior(c3)], dim=1))

    def _frame_latent(self, coder: LatentCoder, y: torch.Tensor | None, prior: torch.Tensor,
                      side: Any) -> torch.Tensor:
        """Code the frame latent ``y`` with the prior of :meth:`_frame_prior` (mu, sigma halves): ``y_hat``."""
        mu, sigma = prior.chunk(2, dim=1)
        return coder.y("y", y, mu, sigma)

    # ------------------------------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, refs: list[DecodedPicture], quality: torch.Tensor,
                motion_only: bool = False, side: Any = None) -> dict[str, Any]:
        """One P picture.  ``x (B,3,H,W)`` in [0, 1] (H, W multiples of 64), ``refs`` most recent first
        ``(B,3,H,W)`` frames (features (B,N,H,W) / motions (B,2,H,W) or None), ``quality (B,)`` int64.

        Returns ``{"x_hat" (B,3,H,W), "bits" (B,), "bits_motion" (B,), "likelihoods" {name: tensor},
        "flow", "prediction", "motion", "feature"}``.  Training: noise for the rates, straight-through rounding
        for what the decoder sees; eval mode: rounding.  ``side``: see :meth:`_code`."""
        quality = self._check_quality(quality, x.shape[0])
        _check_padded(x)
        coder = TrainCoder(self.gaussian, self.training, self.decoder_quantization)
        out = self._code(x, refs, quality, coder, motion_only, side)
        lik = coder.likelihoods
        bits = {k: -torch.log2(v).flatten(1).sum(1) for k, v in lik.items()}
        motion_bits = bits["z_mv"] + bits["y_mv"]
        total = sum(bits.values())  # motion only: z_mv and y_mv are all that was coded
        return {**out, "bits": total, "bits_motion": motion_bits, "likelihoods": lik}

    def forward_sequence(self, frames: torch.Tensor, i_frame: torch.Tensor, quality: torch.Tensor,
                         motion_only: bool = False) -> list[dict[str, Any]]:
        """The cascade over P pictures ``frames[:, 1:]`` of ``frames (B,T,3,H,W)`` after the I picture
        reconstruction ``i_frame (B,3,H,W)``; each P picture's reconstruction, feature and motion become the
        next one's reference, gradients kept across them.  Returns one :meth:`forward` dict per P picture."""
        if frames.dim() != 5 or frames.shape[1] < 2 or i_frame.shape != frames[:, 0].shape:
            raise InputError(f"forward_sequence needs frames (B, T>=2, 3, H, W) and the I picture (B, 3, H, W), "
                             f"got {tuple(frames.shape)} and {tuple(i_frame.shape)}")
        refs = [DecodedPicture(i_frame)]
        outs = []
        for t in range(1, frames.shape[1]):
            out = self(frames[:, t], refs, quality, motion_only)
            outs.append(out)
            refs = [self._picture(out), *refs][:3]
        return outs

    def update(self) -> None:
        """Integer tables of both factorized priors (after training, before coding)."""
        self.mv_entropy_bottleneck.update()
        self.entropy_bottleneck.update()

    # ------------------------------------------------------------------------------------------ coding
    @torch.no_grad()
    def compress(self, x: torch.Tensor, dpb: DecodedPictureBuffer, view: int, frame: int, quality: int,
                 refs: list[DecodedPicture] | None = None, side: Any = None,
                 skip_cost: Callable[[torch.Tensor, int], float] | None = None,
                 copy: bool = False, key: DecodedPicture | None = None) -> tuple[bytes, torch.Tensor]:
        """Code ``x (1,3,H,W)`` in [0, 1] as P picture ``frame`` of ``view`` with references from ``dpb`` (or
        ``refs``, most recent first: a multi-view codec's inter-view reference), ``side`` for :meth:`_code`.

        With ``skip_cost`` (``(x_hat (1,3,H,W), payload bits) -> cost``, the codec's rate-distortion cost) the
        payload starts with the picture's mode byte (:data:`FRAME_CODED` or :data:`FRAME_SKIPPED`) and the encoder
        codes the motion and its contexts once, then the frame latent both ways, coded or skipped
        (:class:`SkippedFrameCoder`), and keeps the cheaper; with ``copy`` too, a third candidate: the nearest
        reference's picture unchanged (:data:`PICTURE_COPIED`, the mode byte alone, :meth:`_copied`); with ``key``
        too (the intra period's key picture as the buffer held it), a fourth: that picture unchanged
        (:data:`KEY_COPIED`).  Without ``skip_cost``, the payload of files written before the skip mode (no mode
        byte).

        Puts the decoder's picture into ``dpb`` and returns ``(payload, x_hat (1,3,H,W) float32)``;
        :attr:`last_estimated_bits` holds the continuous-likelihood estimate of what was coded,
        :attr:`last_symbol_counts` the non-zero and all symbols of each coded latent (:class:`EncodeCoder`),
        :attr:`last_frame_skipped` whether the frame latent was skipped, :attr:`last_picture_copied` whether the
        picture was copied (from either), :attr:`last_key_copied` whether from the key picture."""
        if x.dim() != 4 or x.shape[:2] != (1, 3):
            raise InputError(f"inter compress takes one RGB picture (1, 3, H, W), got {tuple(x.shape)}")
        q = self._check_quality(torch.tensor([quality]), 1)
        refs = refs or dpb.references(view, frame, self.cfg.references)
        h, w = x.shape[-2:]
        xp = replicate_pad(x.float(), PAD_MULTIPLE)
        if xp.shape[-2:] != refs[0].frame.shape[-2:]:
            raise InputError(f"picture {w}x{h} pads to {tuple(xp.shape[-2:])}, references are "
                             f"{tuple(refs[0].frame.shape[-2:])}")
        coder = EncodeCoder(self.gaussian)
        try:
            if skip_cost is None:
                out = self._code(xp, refs, q, coder, side=side)
                payload, mode = encode_segments(coder.segments), FRAME_CODED
            else:
                motion = self._code_motion(xp, refs, q, coder, side)
                contexts = self._motion_contexts(refs, motion, side)
                best: tuple[float, bytes, dict[str, Any], EncodeCoder, int] | None = None
                copies = copy + (copy and key is not None)
                modes = (FRAME_CODED, FRAME_SKIPPED, PICTURE_COPIED, KEY_COPIED)[: 2 + copies]
                for mode in modes:
                    if mode in (PICTURE_COPIED, KEY_COPIED):  # nothing coded, not even the motion
                        trial, out, payload = EncodeCoder(self.gaussian), self._copied(refs, key, mode), bytes([mode])
                    else:
                        trial = coder.fork()
                        out = self._code_frame(None if mode == FRAME_SKIPPED else xp, refs, q,
                                               SkippedFrameCoder() if mode == FRAME_SKIPPED else trial, motion,
                                               side, contexts)
                        payload = bytes([mode]) + encode_segments(trial.segments)
                    cost = skip_cost(self._crop(out["x_hat"], h, w), 8 * len(payload))
                    if best is None or cost < best[0]:
                        best = (cost, payload, out, trial, mode)
                assert best is not None
                _, payload, out, coder, mode = best
        except ExactOverflowError as exc:
            raise CodecError(f"inter encoder: {exc}") from None
        self.last_estimated_bits = coder.estimated_bits + (0 if skip_cost is None else 8)  # the mode byte
        self.last_symbol_counts = coder.symbol_counts
        self.last_frame_skipped = skip_cost is not None and mode == FRAME_SKIPPED
        self.last_picture_copied = skip_cost is not None and mode in (PICTURE_COPIED, KEY_COPIED)
        self.last_key_copied = skip_cost is not None and mode == KEY_COPIED
        dpb.put(view, frame, self._picture(out))
        return payload, self._crop(out["x_hat"], h, w)

    @torch.no_grad()
    def decompress(self, payload: bytes, dpb: DecodedPictureBuffer, view: int, frame: int, height: int,
                   width: int, quality: int, refs: list[DecodedPicture] | None = None, side: Any = None,
                   frame_skip: bool = False, picture_copy: bool = False, key: DecodedPicture | None = None,
                   ) -> torch.Tensor:
        """The P picture ``(1,3,height,width)`` float32 from :meth:`compress`'s payload (the same ``refs`` and
        ``side``; ``frame_skip``: the payload starts with the mode byte, as :meth:`compress` writes it with a
        ``skip_cost``; ``picture_copy``: that byte may say :data:`PICTURE_COPIED`, and with ``key`` (files with
        key copy: the period's key picture) :data:`KEY_COPIED`); puts it into ``dpb``.  A payload that does not
        decode is a :class:`BitstreamError`."""
        q = self._check_quality(torch.tensor([quality]), 1)
        refs = refs or dpb.references(view, frame, self.cfg.references)
        frame_coder: LatentCoder | None = None
        mode = FRAME_CODED
        if frame_skip:
            copies = picture_copy + (picture_copy and key is not None)
            modes = (FRAME_CODED, FRAME_SKIPPED, PICTURE_COPIED, KEY_COPIED)[: 2 + copies]
            if not payload or payload[0] not in modes:
                raise BitstreamError(f"P picture {frame} of view {view}: mode byte "
                                     f"{payload[0] if payload else 'missing'}, not {FRAME_CODED} (frame latent "
                                     f"coded) or {FRAME_SKIPPED} (skipped)"
                                     + (f" or {PICTURE_COPIED} (copied)" if picture_copy else "")
                                     + (f" or {KEY_COPIED} (copied from the key picture)" if copies == 2 else ""))
            mode, payload = payload[0], payload[1:]
            if mode in (PICTURE_COPIED, KEY_COPIED) and payload:
                raise BitstreamError(f"P picture {frame} of view {view} is copied but its payload has "
                                     f"{len(payload)} more bytes")
            frame_coder = SkippedFrameCoder() if mode == FRAME_SKIPPED else None
        if mode in (PICTURE_COPIED, KEY_COPIED):
            out = self._copied(refs, key, mode)
        else:
            dec = SegmentDecoder(payload)
            try:
                out = self._code(None, refs, q, DecodeCoder(dec, self.gaussian), side=side, frame_coder=frame_coder)
            except ExactOverflowError as exc:
                raise BitstreamError(f"inter payload decodes to out-of-range latents (corrupt): {exc}") from None
            dec.finish()
        dpb.put(view, frame, self._picture(out))
        return self._crop(out["x_hat"], height, width)

    @staticmethod
    def reference(x_hat: torch.Tensor) -> DecodedPicture:
        """The buffer entry of an intra picture ``x_hat (1,3,H,W)`` (the intra decoder's output): padded,
        float64, no feature, no motion."""
        return DecodedPicture(replicate_pad(x_hat.double(), PAD_MULTIPLE))

    @staticmethod
    def _copied(refs: list[DecodedPicture], key: DecodedPicture | None, mode: int) -> dict[str, Any]:
        """A copied picture, :meth:`_code`'s output for it: :data:`PICTURE_COPIED`, the nearest reference's picture
        and propagated feature, and zero motion (so later pictures' motion chain runs through it);
        :data:`KEY_COPIED`, the key picture's, and no motion (the chain starts again there, as at the key
        picture: the motion to the previous picture is not known)."""
        if mode == KEY_COPIED:
            assert key is not None
            return {"x_hat": key.frame, "feature": key.feature, "motion": None, "latents": None}
        ref = refs[0]
        return {"x_hat": ref.frame, "feature": ref.feature, "motion": torch.zeros_like(ref.frame[:, :2]),
                "latents": None}

    @staticmethod
    def _picture(out: dict[str, Any]) -> DecodedPicture:
        return DecodedPicture(out["x_hat"].clamp(0.0, 1.0), out["feature"], out["motion"], out.get("latents"))

    @staticmethod
    def _crop(x_hat: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return x_hat[..., :h, :w].clamp(0.0, 1.0).float()

    def _check_quality(self, quality: torch.Tensor, batch: int) -> torch.Tensor:
        quality = torch.as_tensor(quality, dtype=torch.int64).reshape(-1)
        if quality.shape[0] != batch or quality.min() < 0 or quality.max() >= self.cfg.qualities:
            raise InputError(f"quality must be {batch} index(es) in 0..{self.cfg.qualities - 1}, "
                             f"got {quality.tolist()}")
        return quality


# ---------------------------------------------------------------------------------------------- latent coders
class LatentCoder(Protocol):
    """What :meth:`InterModel._code` does with each latent, in the stream's order (z_mv, y_mv, z, y):
    :class:`TrainCoder`, :class:`EncodeCoder` or :class:`DecodeCoder`.

    ``z(name, z or None, shape, bottleneck) -> z_hat`` and ``y(name, y or None, mu, sigma) -> y_hat``; the value
    is None on the decoder, which takes it from the stream."""

    def z(self, name: str, z: torch.Tensor | None, shape: tuple[int, ...], eb: EntropyBottleneck,
          ) -> torch.Tensor: ...

    def y(self, name: str, y: torch.Tensor | None, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


class TrainCoder:
    """Training / evaluation: noise (or rounding) for the likelihoods; for the decoder, straight-through rounding
    (``decoder="ste"``) or noise (``"noise"``: the latent's value reaches the decoder even while it is smaller than
    the rounding step, which otherwise zeroes it; ``"frame-noise"``: noise for the frame latent ``y`` and its
    slices, straight-through rounding for the motion latent ``y_mv``); rounding in eval mode."""

    DECODER_MODES = ("ste", "noise", "frame-noise")

    def __init__(self, gaussian: GaussianConditional, training: bool, decoder: str = "ste") -> None:
        if decoder not in self.DECODER_MODES:
            raise InputError(f"decoder quantization is one of {', '.join(self.DECODER_MODES)}, not {decoder!r}")
        self.gaussian, self.training, self.decoder = gaussian, training, decoder
        self.likelihoods: dict[str, torch.Tensor] = {}

    def z(self, name: str, z: torch.Tensor | None, shape: tuple[int, ...], eb: EntropyBottleneck) -> torch.Tensor:
        z_hat, self.likelihoods[name] = eb(z)
        return z_hat

    def y(self, name: str, y: torch.Tensor | None, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        mode = "noise" if self.training else "round"
        self.likelihoods[name] = self.gaussian.likelihood(quantize(y, mode, mu), sigma, mu)
        noisy = self.decoder == "noise" or (self.decoder == "frame-noise" and not name.startswith("y_mv"))
        return quantize(y, ("noise" if noisy else "ste") if self.training else "round", mu)


class EncodeCoder:
    """The encoder: rounds, collects the ANS segments, sums the continuous-likelihood estimate of the coded bits,
    and counts the non-zero symbols of each conditional latent (``symbol_counts[name] = [non-zero, all]``: a
    P model whose latents are all zero codes nothing beyond its hyper-latents)."""

    def __init__(self, gaussian: GaussianConditional) -> None:
        self.gaussian = gaussian
        self.segments: list = []
        self.estimated_bits = 0.0
        self.symbol_counts: dict[str, list[int]] = {}

    def fork(self) -> EncodeCoder:
        """A copy that codes on from this coder's state (the encoder's trials of one picture's frame latent)."""
        other = EncodeCoder(self.gaussian)
        other.segments, other.estimated_bits = list(self.segments), self.estimated_bits
        other.symbol_counts = {k: list(v) for k, v in self.symbol_counts.items()}
        return other

    def z(self, name: str, z: torch.Tensor | None, shape: tuple[int, ...], eb: EntropyBottleneck) -> torch.Tensor:
        medians = eb.medians.view(1, -1, 1, 1)
        sym = to_symbols(z, medians)
        z_hat = dequantize(sym, medians)
        self.segments += indexed_segments(sym.numpy(), eb.indexes(sym.shape), eb.tables)
        self.estimated_bits -= float(torch.log2(eb.likelihood(z_hat)).sum())
        return z_hat

    def y(self, name: str, y: torch.Tensor | None, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sym = to_symbols(y.to(mu.dtype), mu)
        y_hat = dequantize(sym, mu, mu.dtype)
        counts = self.symbol_counts.setdefault(name, [0, 0])
        counts[0] += int((sym != 0).sum())
        counts[1] += sym.numel()
        self.segments += indexed_segments(sym.numpy(), self.gaussian.scale_table.index(sigma), self.gaussian.tables)
        self.estimated_bits -= float(torch.log2(self.gaussian.likelihood(y_hat, sigma, mu)).sum())
        return y_hat


class SkippedFrameCoder:
    """The frame latent of a skipped P picture (mode byte :data:`FRAME_SKIPPED`), the same on both sides: nothing
    is coded, every symbol is 0, so ``z_hat`` is the factorized prior's medians and each ``y_hat`` its predicted
    mean ``mu``.  Where the trained frame latent codes nothing (all symbols 0, mlvc-v3 on real frames), the
    skipped picture differs from the coded one only through z (its medians instead of its coded values, which
    move ``mu`` a little) and costs no hyper-latent bits (BENCHMARKS.md, "Frame-latent skip")."""

    def z(self, name: str, z: torch.Tensor | None, shape: tuple[int, ...], eb: EntropyBottleneck) -> torch.Tensor:
        return dequantize(torch.zeros(shape, dtype=torch.int64), eb.medians.view(1, -1, 1, 1))

    def y(self, name: str, y: torch.Tensor | None, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return dequantize(torch.zeros(mu.shape, dtype=torch.int64), mu, mu.dtype)


class DecodeCoder:
    """The decoder: pops each latent from the stream with the tables the encoder used."""

    def __init__(self, dec: SegmentDecoder, gaussian: GaussianConditional) -> None:
        self.dec, self.gaussian = dec, gaussian

    def z(self, name: str, z: torch.Tensor | None, shape: tuple[int, ...], eb: EntropyBottleneck) -> torch.Tensor:
        sym = torch.from_numpy(decode_indexed_part(self.dec, eb.indexes(shape), eb.tables))
        return dequantize(sym, eb.medians.view(1, -1, 1, 1))

    def y(self, name: str, y: torch.Tensor | None, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        indexes = self.gaussian.scale_table.index(sigma)
        sym = torch.from_numpy(decode_indexed_part(self.dec, indexes, self.gaussian.tables))
        return dequantize(sym, mu, mu.dtype)


# ---------------------------------------------------------------------------------------------- helpers


def _check_padded(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % PAD_MULTIPLE or x.shape[-1] % PAD_MULTIPLE:
        raise InputError(f"inter model trains on (B, 3, H, W) with H, W multiples of {PAD_MULTIPLE}, "
                         f"got {tuple(x.shape)}")
