"""The learned intra codec: a hyperprior codec with ELIC's context model and per-quality gains.

::

    x (B,3,H,W) --replicate-pad to 64k--> g_a (x16) --* gain[q]--> y (B,M,H/16,W/16)
    y --h_a (x4)--> z (B,Z,H/64,W/64) --EntropyBottleneck--> z_hat --h_s--> hyper (B,M,H/16,W/16)
    y, split in channel groups [16, 16, 32, 64, M-128] (ELIC, He et al. CVPR 2022):
        group k:  channel ctx = cc_k(y_hat of groups < k)
                  anchors:      (mu, sigma) = ep_k(hyper, channel ctx, 0)               --> y_hat anchors
                  non-anchors:  (mu, sigma) = ep_k(hyper, channel ctx, sp_k(anchors))   --> y_hat non-anchors
                  (GaussianConditional: round(y - mu) coded with the ScaleTable row of sigma)
    y_hat --* inv_gain[q]--> g_s (x16) --crop--> x_hat (B,3,H,W)

Transforms (ELIC's layout, made lighter for CPUs: no attention blocks, 1 residual bottleneck per stage, the full-
and half-resolution stages at N/2 channels): g_a = [conv5x5/2 -> RB] x3 (N/2, N, N) + conv5x5/2 -> M;
g_s = [deconv5x5*2 -> RB] x3 (N, N, N/2) + deconv5x5*2 -> 3; h_a = conv3x3, conv3x3/2, conv3x3/2 (Z);
h_s = deconv3x3*2 (Z), deconv3x3*2 (M), conv1x1 (M).  cc_k: two 3x3 convs; sp_k: 5x5 checkerboard conv; ep_k:
three 1x1 convs.  Defaults (N, M, Z) = (96, 160, 96): 3.35 M parameters, 13.5 MB of float32 weights.

Variable rate in one model (DCVC-HEM's learned gain vectors, digest dcvc_b_tcm.md "q-step"): quality ``q``
scales the latent by ``gain[q] (M,)`` before quantization and by ``inv_gain[q]`` after, so a small gain means
coarse quantization.  Training draws ``q`` per sample.

Real coding runs the decoder-side networks (h_s, the contexts, the parameter nets, g_s) in float64 on the exact
fixed-point face of :mod:`mvcodec.layers.blocks`, so the scale indexes and the reconstruction are bit-identical
for any thread count; the encoder runs the very same function as the decoder (``_code_latent``), hence
``compress`` returns the decoder's reconstruction.  One ANS stream holds z then every (group, half) in decoding
order (:func:`indexed_segments`).  Coding runs on the CPU (the model and ``x`` on the CPU; training on any device).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from mvcodec.entropy import EntropyBottleneck, GaussianConditional, PmfTables, dequantize, quantize, to_symbols
from mvcodec.entropy.coder import (
    SegmentDecoder,
    decode_indexed_part,
    encode_segments,
    estimate_indexed_bits,
    indexed_segments,
)
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.layers.blocks import ExactOverflowError, analysis_stage, conv, deconv, synthesis_stage
from mvcodec.layers.checkerboard import CheckerboardContext, anchor_mask, merge, select
from mvcodec.layers.gain import quality_gains
from mvcodec.layers.padding import padded, replicate_pad
from mvcodec.models.config_json import config_from_json

PAD_MULTIPLE = 64  # y at 1/16, z at 1/64
# Peak memory of coding one picture with the default config, measured (about 0.9 kB per pixel, mostly the float64
# im2col buffers of g_s); pictures that would need more than MAX_CODING_BYTES are refused (a 3840x2160 one fits).
CODING_BYTES_PER_PIXEL = 1000
MAX_CODING_BYTES = 8 << 30


def check_coding_size(height: int, width: int) -> None:
    """Raise :class:`InputError` for a picture size that cannot be coded (empty, or too large for memory)."""
    if height < 1 or width < 1:
        raise InputError(f"intra picture size {width}x{height} is empty")
    need = padded(height, PAD_MULTIPLE) * padded(width, PAD_MULTIPLE) * CODING_BYTES_PER_PIXEL
    if need > MAX_CODING_BYTES:
        raise InputError(f"coding a {width}x{height} intra picture would need about {need / 2**30:.0f} GiB "
                         f"(at most {MAX_CODING_BYTES / 2**30:.0f} GiB)")


@dataclass(frozen=True)
class IntraConfig:
    """Sizes of the intra model.  ``N``: transform channels; ``M``: latent channels; ``Z``: hyper-latent
    channels; ``groups``: ELIC's uneven channel groups, the last taking the rest ``M - sum(groups)``;
    ``qualities``: gain vectors (the quality ladder); ``blocks``: residual blocks per transform stage;
    ``context``: hidden channels of the channel-context and parameter nets."""

    N: int = 96
    M: int = 160
    Z: int = 96
    groups: tuple[int, ...] = (16, 16, 32, 64)
    qualities: int = 6
    blocks: int = 1
    context: int = 96

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(int(g) for g in self.groups))
        sizes = (self.N, self.M, self.Z, self.qualities, self.context)
        if min(sizes) < 1 or self.blocks < 0 or min(self.groups, default=1) < 1 or sum(self.groups) >= self.M:
            raise InputError(f"bad intra model config {self}: sizes must be positive and sum(groups) < M")

    @property
    def channel_groups(self) -> tuple[int, ...]:
        return (*self.groups, self.M - sum(self.groups))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (lists, not tuples: what a header or a YAML file gives back)."""
        return {**asdict(self), "groups": list(self.groups)}

    @classmethod
    def from_json(cls, data: Any) -> IntraConfig:
        """From :meth:`to_json`'s dict (or a JSON string); anything else is an :class:`InputError`."""
        return config_from_json(cls, data, "intra model")


def build_intra(cfg: IntraConfig = IntraConfig()) -> IntraModel:
    """The one builder of intra models."""
    return IntraModel(cfg)


@dataclass
class _Part:
    """One coded part of the stream: integers, their table rows, and the tables."""

    values: np.ndarray
    indexes: np.ndarray
    tables: PmfTables = field(repr=False)


@dataclass(frozen=True)
class IntraCoded:
    """What :meth:`IntraModel.encode` returns: the payload, the decoder's reconstruction ``(1,3,H,W)`` and two
    estimates to report beside ``8 * len(payload)``: the training rate (continuous likelihoods) and the exact
    cost under the integer tables."""

    payload: bytes
    x_hat: torch.Tensor
    estimated_bits: float
    table_bits: float  # -log2 p under the integer tables the coder used (escapes included): payload minus ANS overhead


class IntraModel(nn.Module):
    """ELIC-style hyperprior intra codec with per-quality gains (module docstring).  See :func:`build_intra`."""

    def __init__(self, cfg: IntraConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n, m, z, b, c = cfg.N, cfg.M, cfg.Z, cfg.blocks, cfg.context
        half = max(n // 2, 1)  # the full- and half-resolution stages are narrower (CPU cost)
        self.g_a = nn.Sequential(analysis_stage(3, half, b), analysis_stage(half, n, b), analysis_stage(n, n, b),
                                 conv(n, m, 5, 2))
        self.g_s = nn.Sequential(synthesis_stage(m, n, b), synthesis_stage(n, n, b), synthesis_stage(n, half, b),
                                 deconv(half, 3))
        self.h_a = nn.Sequential(conv(m, z, 3), nn.LeakyReLU(inplace=True), conv(z, z, 3, 2),
                                 nn.LeakyReLU(inplace=True), conv(z, z, 3, 2))
        self.h_s = nn.Sequential(deconv(z, z, 3), nn.LeakyReLU(inplace=True), deconv(z, m, 3),
                                 nn.LeakyReLU(inplace=True), conv(m, m, 1))
        groups = cfg.channel_groups
        self.cc = nn.ModuleList(
            [nn.Identity()] + [nn.Sequential(conv(sum(groups[:k]), c, 3), nn.LeakyReLU(inplace=True),
                                             conv(c, 2 * g, 3)) for k, g in enumerate(groups) if k])
        self.sp = nn.ModuleList([CheckerboardContext(g, 2 * g) for g in groups])
        self.ep = nn.ModuleList(
            [nn.Sequential(conv(m + (4 if k else 2) * g, 2 * c, 1), nn.LeakyReLU(inplace=True), conv(2 * c, c, 1),
                           nn.LeakyReLU(inplace=True), conv(c, 2 * g, 1)) for k, g in enumerate(groups)])
        self.gain, self.inv_gain = quality_gains(cfg.qualities, m)  # (Q, M): top quality starts at gain 1
        self.entropy_bottleneck = EntropyBottleneck(z)
        self.gaussian = GaussianConditional()

    # ------------------------------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict[str, Any]:
        """``x (B,3,H,W)`` in [0, 1], ``quality (B,)`` int64 -> ``{"x_hat" (B,3,H,W), "likelihoods": {"y", "z"},
        "bits" (B,)}``.  Training: additive noise for the rates, straight-through rounding for what the decoder
        and the contexts see; eval mode: rounding everywhere (the estimate reported beside the real bits)."""
        quality = self._check_quality(quality, x.shape[0])
        h, w = x.shape[-2:]
        y = self.g_a(replicate_pad(x, PAD_MULTIPLE)) * self.gain[quality].view(*quality.shape, -1, 1, 1)
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(y))
        mode = "noise" if self.training else "round"

        def step(k: int, mu: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            y_k = self._group(y, k)
            y_hat = quantize(y_k, "ste" if self.training else "round", mu)
            return y_hat, self.gaussian.likelihood(quantize(y_k, mode, mu), sigma, mu)

        y_hat, y_lik = self._code_latent(self.h_s(z_hat), step)
        x_hat = self.g_s(y_hat * self.inv_gain[quality].view(*quality.shape, -1, 1, 1))[..., :h, :w]
        bits = -(torch.log2(y_lik).flatten(1).sum(1) + torch.log2(z_lik).flatten(1).sum(1))
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}, "bits": bits}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """The I picture a training cascade starts from: ``x (B,3,H,W)`` in [0, 1] through :meth:`forward` at the
        rungs ``quality (B,)``, clamped to this model's ladder (an inter ladder may be longer) -> ``(B,3,H,W)`` in
        [0, 1], no gradient (the intra model is frozen there)."""
        return self(x, quality.clamp(max=self.cfg.qualities - 1))["x_hat"].clamp(0, 1)

    def update(self) -> None:
        """Integer tables of the factorized prior (after training, before :meth:`compress`)."""
        self.entropy_bottleneck.update()

    # ------------------------------------------------------------------------------------------ coding
    def compress(self, x: torch.Tensor, quality: int) -> tuple[bytes, torch.Tensor]:
        """``x (1,3,H,W)`` in [0, 1] -> (payload, the decoder's reconstruction ``(1,3,H,W)`` float32)."""
        coded = self.encode(x, quality)
        return coded.payload, coded.x_hat

    @torch.no_grad()
    def encode(self, x: torch.Tensor, quality: int) -> IntraCoded:
        """:meth:`compress` plus the estimated bits of what it coded (``-log2`` of the continuous likelihoods the
        training rate uses, at the coded values and the coding path's parameters)."""
        if x.dim() != 4 or x.shape[:2] != (1, 3):
            raise InputError(f"intra compress takes one RGB picture (1, 3, H, W), got {tuple(x.shape)}")
        q = int(self._check_quality(torch.tensor([quality]), 1)[0])
        h, w = x.shape[-2:]
        check_coding_size(h, w)
        y = self.g_a(replicate_pad(x.float(), PAD_MULTIPLE)) * self.gain[q].view(1, -1, 1, 1)
        z = self.h_a(y)
        eb = self.entropy_bottleneck
        medians = eb.medians.view(1, -1, 1, 1)
        z_sym = to_symbols(z, medians)
        z_hat = dequantize(z_sym, medians)
        parts = [_Part(z_sym.numpy(), eb.indexes(z.shape), eb.tables)]
        bits = [-float(torch.log2(eb.likelihood(z_hat)).sum())]
        y64 = y.double()

        def step(k: int, mu: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, None]:
            q_k = to_symbols(self._group(y64, k), mu)
            y_hat = dequantize(q_k, mu, torch.float64)
            parts.append(_Part(select(q_k, mask).numpy(), self.gaussian.scale_table.index(select(sigma, mask)),
                               self.gaussian.tables))
            bits.append(-float(torch.log2(select(self.gaussian.likelihood(y_hat, sigma, mu), mask)).sum()))
            return y_hat, None

        try:
            x_hat = self._synthesize(z_hat, q, h, w, step)
        except ExactOverflowError as exc:
            raise CodecError(f"intra encoder: {exc}") from None
        segments = [s for p in parts for s in indexed_segments(p.values, p.indexes, p.tables)]
        table_bits = sum(estimate_indexed_bits(p.values, p.indexes, p.tables) for p in parts)
        return IntraCoded(encode_segments(segments), x_hat, sum(bits), table_bits)

    @torch.no_grad()
    def decompress(self, payload: bytes, height: int, width: int, quality: int) -> torch.Tensor:
        """The picture ``(1,3,height,width)`` float32 in [0, 1] from :meth:`compress`'s payload; a payload that
        does not decode is a :class:`BitstreamError`."""
        check_coding_size(height, width)
        q = int(self._check_quality(torch.tensor([quality]), 1)[0])
        if not payload:
            raise BitstreamError("intra payload is empty")
        eb = self.entropy_bottleneck
        ph, pw = padded(height, PAD_MULTIPLE), padded(width, PAD_MULTIPLE)
        shape = (1, self.cfg.Z, ph // 64, pw // 64)
        dec = SegmentDecoder(payload)
        z_sym = torch.from_numpy(decode_indexed_part(dec, eb.indexes(shape), eb.tables))

        def step(k: int, mu: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, None]:
            q_k = torch.zeros(mu.shape, dtype=torch.int64)
            indexes = self.gaussian.scale_table.index(select(sigma, mask))
            q_k[mask.expand_as(q_k)] = torch.from_numpy(decode_indexed_part(dec, indexes, self.gaussian.tables))
            return dequantize(q_k, mu, torch.float64), None

        try:
            x_hat = self._synthesize(dequantize(z_sym, eb.medians.view(1, -1, 1, 1)), q, height, width, step)
        except ExactOverflowError as exc:
            raise BitstreamError(f"intra payload decodes to out-of-range latents (corrupt): {exc}") from None
        dec.finish()
        return x_hat

    def _synthesize(self, z_hat: torch.Tensor, q: int, h: int, w: int, step: Callable) -> torch.Tensor:
        """The decoder's path shared by both sides: z_hat -> hyper -> y_hat (through ``step``) -> x_hat, exact."""
        y_hat, _ = self._code_latent(self.h_s(z_hat.double()), step)
        x_hat = self.g_s(y_hat * self.inv_gain[q].double().view(1, -1, 1, 1))
        return x_hat[..., :h, :w].clamp(0.0, 1.0).float()

    # ------------------------------------------------------------------------------------------ the context model
    def _code_latent(self, hyper: torch.Tensor, step: Callable) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run ELIC's group-by-group, anchor-then-non-anchor loop.  ``hyper (B,M,h,w)``; ``step(k, mu, sigma,
        mask) -> (y_hat_k, likelihoods_k or None)`` quantizes (training), codes (encoder) or decodes (decoder) the
        elements of group ``k`` under ``mask``.  Returns ``y_hat (B,M,h,w)`` and the likelihoods (or None)."""
        mask = anchor_mask(hyper.shape[-2], hyper.shape[-1], hyper.device)
        y_hats: list[torch.Tensor] = []
        liks: list[torch.Tensor] = []
        for k, g in enumerate(self.cfg.channel_groups):
            base = [hyper] if k == 0 else [hyper, self.cc[k](torch.cat(y_hats, dim=1))]
            zeros = hyper.new_zeros(hyper.shape[0], 2 * g, *hyper.shape[-2:])
            mu, sigma = self.ep[k](torch.cat([*base, zeros], dim=1)).chunk(2, dim=1)
            y_a, lik_a = step(k, mu, sigma, mask)
            mu, sigma = self.ep[k](torch.cat([*base, self.sp[k](y_a)], dim=1)).chunk(2, dim=1)
            y_n, lik_n = step(k, mu, sigma, ~mask)
            y_hats.append(merge(y_a, y_n, mask))
            if lik_a is not None:
                liks.append(merge(lik_a, lik_n, mask))
        return torch.cat(y_hats, dim=1), (torch.cat(liks, dim=1) if liks else None)

    def _group(self, y: torch.Tensor, k: int) -> torch.Tensor:
        start = sum(self.cfg.channel_groups[:k])
        return y[:, start:start + self.cfg.channel_groups[k]]

    def _check_quality(self, quality: torch.Tensor, batch: int) -> torch.Tensor:
        quality = torch.as_tensor(quality, dtype=torch.int64).reshape(-1)
        if quality.shape[0] != batch or quality.numel() == 0 or quality.min() < 0 \
                or quality.max() >= self.cfg.qualities:
            raise InputError(f"quality must be {batch} index(es) in 0..{self.cfg.qualities - 1}, "
                             f"got {quality.tolist()}")
        return quality


# ---------------------------------------------------------------------------------------------- helpers
