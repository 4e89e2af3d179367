"""Rate-distortion loss helpers that every training task calls (the contract of ``mvcodec.train.task``).

::

    likelihoods (tensors (B, ...)) --likelihood_bits--> bits (B,)          = sum of -log2 p per sample
    x_hat, x (B, ..., 3, H, W) in [0, 1], bits (B,), lmbda (B,)
        --rd_loss--> loss = mean_b( lmbda_b * D_b + bits_b / pixels )      pixels = (... x H x W) per sample
                     D_b  = MSE_b                       distortion "mse"
                          = 1 - MS-SSIM_b               distortion "msssim"
    several frames (the cascaded inter loss)  --average_terms--> one dict, gradients kept across the frames

``lmbda`` is per sample, so one batch trains several rungs of the quality ladder at once (variable-rate models;
the engine draws them).  MSE is on pixels in [0, 1], so lambdas are on DCVC's scale (lambda x MSE, not
CompressAI's lambda x 255^2 x MSE).

MS-SSIM is the evaluation's definition (:mod:`mvcodec.metrics.msssim`) made differentiable: pytorch_msssim's
``ms_ssim`` (data range 1) from 161 px on the smaller side; below, the same per-scale kernel
(``pytorch_msssim.ssim._ssim``) over :func:`~mvcodec.metrics.msssim.ms_ssim_scales` scales with the standard
weights renormalised and the window shrunk on tiny frames, so training crops of 64 or 128 px optimise exactly
the score the evaluation reports at that size.
"""

from __future__ import annotations

import importlib
from typing import Iterable, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F

from mvcodec.entropy.quantize import at_least_float32
from mvcodec.metrics.msssim import WEIGHTS, K, _window_params, ms_ssim_scales
from mvcodec.metrics.psnr import PSNR_CAP_DB

Distortion = Literal["mse", "msssim"]


def likelihood_bits(likelihoods: torch.Tensor | Iterable[torch.Tensor] | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Estimated bits per sample: ``sum(-log2 p)`` over every non-batch axis of each (B, ...) tensor -> (B,)."""
    if isinstance(likelihoods, torch.Tensor):
        likelihoods = [likelihoods]
    elif isinstance(likelihoods, Mapping):
        likelihoods = list(likelihoods.values())
    total = None
    for p in likelihoods:
        bits = -torch.log2(p).flatten(1).sum(1)
        total = bits if total is None else total + bits
    if total is None:
        raise ValueError("likelihood_bits: no likelihood tensors")
    return total


def ms_ssim(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Differentiable MS-SSIM per image of (N, C, H, W) images in [0, 1] -> (N,) (mean over channels)."""
    lib = importlib.import_module("pytorch_msssim.ssim")  # the module, not the function the package re-exports
    h, w = x.shape[-2:]
    scales = ms_ssim_scales(h, w)
    if scales == len(WEIGHTS):
        return lib.ms_ssim(x_hat, x, data_range=1.0, size_average=False, weights=list(WEIGHTS), K=K)
    size, sigma = _window_params(h, w)
    win = lib._fspecial_gauss_1d(size, sigma).repeat([x.shape[1], 1, 1, 1]).to(x.device, x.dtype)
    weights = torch.tensor(WEIGHTS[:scales], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    a, b, terms = x_hat, x, []
    for level in range(scales):
        ssim_per_channel, cs = lib._ssim(a, b, data_range=1.0, win=win, size_average=False, K=K)
        if level < scales - 1:
            terms.append(torch.relu(cs))
            padding = [s % 2 for s in a.shape[2:]]
            a, b = F.avg_pool2d(a, kernel_size=2, padding=padding), F.avg_pool2d(b, kernel_size=2, padding=padding)
    stacked = torch.stack(terms + [torch.relu(ssim_per_channel)], dim=0)  # (scales, N, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(dim=1)


def rd_loss(x_hat: torch.Tensor, x: torch.Tensor, bits: torch.Tensor, lmbda: torch.Tensor,
            distortion: Distortion = "mse") -> dict[str, torch.Tensor]:
    """``mean_b(lmbda_b * D_b + bpp_b)`` and its detached terms for logs.

    Args:
        x_hat, x: (B, ..., 3, H, W) reconstruction and original in [0, 1] (any axes between B and the image).
        bits: (B,) estimated bits of each sample (:func:`likelihood_bits`).
        lmbda: (B,) lambda of each sample (or a scalar).
        distortion: "mse" or "msssim".

    Returns:
        ``{"loss": scalar with gradient, "bpp", "mse", "psnr"[, "msssim"]: detached scalars, batch means}``;
        psnr is 10 log10(1 / MSE) per sample, capped like the evaluation's, then averaged.
    """
    if x_hat.shape != x.shape or x.dim() < 4:
        raise ValueError(f"rd_loss: x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must be equal (B, ..., C, H, W)")
    x_hat, x, bits = (at_least_float32(t) for t in (x_hat, x, bits))  # a bf16 autocast's output too
    batch = x.shape[0]
    pixels = x[0].numel() // x.shape[-3]
    bpp = bits / pixels
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    terms = {"bpp": bpp, "mse": mse}
    if distortion == "mse":
        d = mse
    elif distortion == "msssim":
        score = ms_ssim(x_hat.flatten(0, -4), x.flatten(0, -4)).view(batch, -1).mean(1)
        terms["msssim"] = score
        d = 1 - score
    else:
        raise ValueError(f"rd_loss: unknown distortion {distortion!r}")
    loss = (lmbda * d + bpp).mean()
    out = {k: v.detach().mean() for k, v in terms.items()}
    return {"loss": loss, **out, "psnr": mean_psnr(mse)}


def mean_psnr(mse: torch.Tensor) -> torch.Tensor:
    """Detached mean of 10 log10(1 / MSE) over per-sample MSEs ``(B,)`` of pixels in [0, 1], each capped like the
    evaluation's PSNR (:data:`mvcodec.metrics.psnr.PSNR_CAP_DB`)."""
    return (10 * torch.log10(1 / mse.detach().clamp_min(10 ** (-PSNR_CAP_DB / 10)))).mean()


def average_terms(terms: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of several :func:`rd_loss` results (e.g. the frames of a cascaded inter loss), key by key;
    ``loss`` keeps its gradient through every frame."""
    if not terms:
        raise ValueError("average_terms: nothing to average")
    keys = [k for k in terms[0] if all(k in t for t in terms)]
    return {k: sum((t[k] for t in terms), torch.zeros((), device=terms[0][k].device)) / len(terms) for k in keys}

