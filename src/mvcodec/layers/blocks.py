"""Convolutions that decode identically everywhere, and the residual blocks of the learned transforms.

Float convolutions are not reproducible across thread counts: the CPU kernels (oneDNN, MKL GEMM) split their
sums differently with 1 or 2 threads, and a last-bit difference in a predicted scale moves it across a
:class:`~mvcodec.entropy.ScaleTable` boundary and desynchronises the entropy decoder.  :class:`Conv2d` and
:class:`ConvTranspose2d` therefore have two faces, chosen by the input's dtype::

    float32 input (training, g_a, h_a):  the ordinary torch convolution
    float64 input (the coding path):     fixed point, exact
        x_int = round(x * 2**FRAC_BITS)                       activations on a 2**-12 grid
        w_int = round(w_c * 2**s_c), |w_int| <= 2**13          per output channel c, power-of-two scale s_c
        acc   = conv(x_int, w_int) in float64                   integers below 2**53: every sum is exact,
                                                                so the order of summation cannot matter
        out   = acc * 2**-(FRAC_BITS + s_c) + bias             one IEEE multiply by a power of two, one add

Everything else on the coding path is an element-wise IEEE operation (LeakyReLU's multiply, additions, the
gains), which gives the same bits on every thread count and every IEEE machine.  A sum that could reach
``2**53`` (a corrupt payload decoding to huge latents) raises :class:`ExactOverflowError` instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FRAC_BITS = 12  # fractional bits of activations on the exact path (part of the bitstream format)
WEIGHT_BITS = 14  # bits (sign included) of every integer weight on the exact path (part of the format)
_EXACT_LIMIT = float(2**53)


class ExactOverflowError(ArithmeticError):
    """A fixed-point convolution whose integer sums could leave float64's exact range."""


def integer_weight(weight: torch.Tensor, out_axis: int, bits: int = WEIGHT_BITS) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w_int, shift)``: float64 integers ``round(w * 2**shift_c)`` with ``|w_int| <= 2**(bits - 1)``.

    ``shift`` (float64, one per output channel along ``out_axis``) is chosen from the exponent of each channel's
    largest weight (``torch.frexp``, exact), so ``w ~= w_int * 2**-shift``.
    """
    w = weight.detach().to(torch.float64)
    dims = [d for d in range(w.dim()) if d != out_axis]
    _, exponent = torch.frexp(w.abs().amax(dim=dims))
    shift = (bits - 1 - exponent).to(torch.float64)
    view = [1] * w.dim()
    view[out_axis] = -1
    return torch.round(w * torch.pow(2.0, shift).view(view)), shift


def _exact(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out_axis: int, op) -> torch.Tensor:
    """The fixed-point face of a convolution (see the module docstring); ``op(x_int, w_int) -> acc``."""
    x_int = (x * float(2**FRAC_BITS)).round_()
    w_int, shift = integer_weight(weight, out_axis)
    dims = [d for d in range(w_int.dim()) if d != out_axis]
    worst = float(x_int.abs().max()) * float(w_int.abs().sum(dim=dims).max()) if x_int.numel() else 0.0
    if not worst < _EXACT_LIMIT:
        raise ExactOverflowError(f"fixed-point convolution input too large (|x| up to {float(x.abs().max()):.3g})")
    out = op(x_int, w_int).mul_(torch.pow(2.0, -(shift + FRAC_BITS)).view(1, -1, 1, 1))  # in place: one pass each
    return out if bias is None else out.add_(bias.detach().to(torch.float64).view(1, -1, 1, 1))


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose float64 face is exact fixed point (module docstring).  ``(B, C, H, W)`` in and out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float64:
            return super().forward(x)
        return _exact(x, self.weight, self.bias, 0, lambda xi, wi: F.conv2d(
            xi, wi, None, self.stride, self.padding, self.dilation, self.groups))


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose float64 face is exact fixed point (module docstring)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.dtype != torch.float64:
            return super().forward(x, output_size)
        if self.groups != 1 or output_size is not None:
            raise NotImplementedError("exact ConvTranspose2d supports groups=1 and no output_size")
        return _exact(x, self.weight, self.bias, 1, lambda xi, wi: F.conv_transpose2d(
            xi, wi, None, self.stride, self.padding, self.output_padding, 1, self.dilation))


def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> Conv2d:
    """A ``kernel`` x ``kernel`` convolution with "same" padding; ``stride`` 2 halves H and W."""
    return Conv2d(cin, cout, kernel, stride, kernel // 2)


def deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> ConvTranspose2d:
    """A transposed convolution that multiplies H and W by ``stride`` exactly (Balle et al.'s synthesis step)."""
    return ConvTranspose2d(cin, cout, kernel, stride, kernel // 2, output_padding=stride - 1)


class ResidualBottleneck(nn.Module):
    """ELIC's residual bottleneck block (He et al. 2022, fig. 5): ``x + 1x1(act(3x3(act(1x1(x)))))``, the middle
    at half width.  ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.body = nn.Sequential(conv(channels, mid, 1), nn.LeakyReLU(inplace=True), conv(mid, mid, 3),
                                  nn.LeakyReLU(inplace=True), conv(mid, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def analysis_stage(cin: int, cout: int, blocks: int, kernel: int = 5) -> nn.Sequential:
    """Down-sampling stage of an analysis transform: strided conv (H, W halved), then ``blocks`` residual blocks."""
    return nn.Sequential(conv(cin, cout, kernel, 2), *[ResidualBottleneck(cout) for _ in range(blocks)])


def synthesis_stage(cin: int, cout: int, blocks: int, kernel: int = 5) -> nn.Sequential:
    """Up-sampling stage of a synthesis transform: transposed conv (H, W doubled), then ``blocks`` residual blocks."""
    return nn.Sequential(deconv(cin, cout, kernel, 2), *[ResidualBottleneck(cout) for _ in range(blocks)])
