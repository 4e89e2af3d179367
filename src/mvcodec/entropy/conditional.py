"""Conditional entropy models of latents ``y`` given predicted ``scales`` and ``means`` (Balle 2018, Minnen 2018).

One class, :class:`IndexedConditional`, parametrised by the distribution; :class:`GaussianConditional` and
:class:`LaplaceConditional` only fix it.  The coded integers are the mean-shifted residuals::

    q = round(y - means)                     encoder only
    t = scale_table.index(scales)            both sides: THE shared quantizer (float32 comparisons)
    bytes = ANS(q | row t of the integer tables built from t alone)
    y_hat = q + means                        both sides

``means`` never enter a probability model, so float noise in them cannot desynchronise the coder (it only moves
``y_hat`` by the same noise); ``scales`` enter only through their table index.

Training (``forward``) uses the continuous law at the predicted scale (lower-bounded to the table's minimum);
``estimate_bits`` gives ``-log2 p`` under the exact integer tables that ``compress`` uses.
"""

from __future__ import annotations

import torch
from torch import nn

from mvcodec.entropy.coder import decode_indexed, encode_indexed, estimate_indexed_bits
from mvcodec.entropy.distributions import GAUSSIAN, LAPLACE, Distribution
from mvcodec.entropy.quantize import QuantizeMode, at_least_float32, dequantize, lower_bound, quantize, to_symbols
from mvcodec.entropy.tables import PRECISION, PmfTables, ScaleTable, conditional_tables

LIKELIHOOD_BOUND = 1e-9  # training likelihoods are bounded below (gradient kept where it raises them)
TAIL_MASS = 2.0**-12  # probability left to the escape of each table row (see tables.residual_pmf)


class IndexedConditional(nn.Module):
    """Entropy model of ``y`` given per-element ``scales`` and ``means`` with a fixed table of scale bins.

    Args:
        distribution: the law of ``y - means`` at a given scale.
        scale_table: the fixed scale bins (64 log-spaced scales from 0.11 to 256 by default).
        tail_mass: the probability given to the escape symbol of each row.
        precision: bits of the integer tables.
    """

    distribution: Distribution

    def __init__(
        self,
        distribution: Distribution,
        scale_table: ScaleTable = ScaleTable(),
        tail_mass: float = TAIL_MASS,
        precision: int = PRECISION,
    ) -> None:
        super().__init__()
        self.distribution = distribution
        self.scale_table = scale_table
        self.tail_mass = tail_mass
        self.precision = precision

    @property
    def tables(self) -> PmfTables:
        """The integer tables (built once per configuration, from the table indexes only)."""
        return conditional_tables(self.distribution, self.scale_table, self.tail_mass, self.precision)

    def likelihood(self, y_hat: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        """P(y_hat) for quantized ``y_hat`` under the continuous law; ``(N, C, H, W)`` or any shape, in (0, 1].

        At least float32 arithmetic, under autocast too (a CDF difference in bfloat16 keeps 8 significant bits)."""
        with torch.autocast(y_hat.device.type, enabled=False):
            r = at_least_float32(y_hat if means is None else y_hat - means)
            scales = lower_bound(at_least_float32(scales), self.scale_table.scale_min)
            return lower_bound(self.distribution.likelihood(r, scales), LIKELIHOOD_BOUND)

    def forward(
        self,
        y: torch.Tensor,
        scales: torch.Tensor,
        means: torch.Tensor | None = None,
        mode: QuantizeMode | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y_hat, likelihoods)``, both shaped like ``y``; ``mode`` defaults to "noise" in training, else "round"."""
        mode = mode or ("noise" if self.training else "round")
        y_hat = quantize(at_least_float32(y), mode, None if means is None else at_least_float32(means))
        return y_hat, self.likelihood(y_hat, scales, means)

    def indexes(self, scales: torch.Tensor) -> torch.Tensor:
        """Table index of every scale (int64, same shape): the quantizer both sides share."""
        return torch.from_numpy(self.scale_table.index(scales))

    def compress(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None) -> bytes:
        """Bytes of ``round(y - means)``; ``y``, ``scales`` and ``means`` share one shape (any)."""
        _check_shapes(y, scales, means)
        return encode_indexed(to_symbols(y, means).cpu().numpy(), self.scale_table.index(scales), self.tables)

    def decompress(self, data: bytes, scales: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        """``y_hat = q + means`` (float32, shape and device of ``scales``) from the bytes of :meth:`compress`."""
        if means is not None and means.shape != scales.shape:
            raise ValueError(f"scales {tuple(scales.shape)} and means {tuple(means.shape)} must have one shape")
        q = decode_indexed(data, self.scale_table.index(scales), self.tables)
        return dequantize(torch.from_numpy(q).to(scales.device), means)

    def estimate_bits(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None) -> float:
        """``-log2 p`` of what :meth:`compress` codes, from the same integer tables (escapes included)."""
        _check_shapes(y, scales, means)
        return estimate_indexed_bits(to_symbols(y, means).cpu().numpy(), self.scale_table.index(scales), self.tables)

    def extra_repr(self) -> str:
        t = self.scale_table
        return (
            f"{self.distribution.name}, scales {t.scale_min}..{t.scale_max} x{t.num_scales}, "
            f"tail_mass={self.tail_mass:g}, precision={self.precision}"
        )


class GaussianConditional(IndexedConditional):
    """:class:`IndexedConditional` with a Gaussian of standard deviation ``scales``."""

    def __init__(self, scale_table: ScaleTable = ScaleTable(), tail_mass: float = TAIL_MASS,
                 precision: int = PRECISION) -> None:
        super().__init__(GAUSSIAN, scale_table, tail_mass, precision)


class LaplaceConditional(IndexedConditional):
    """:class:`IndexedConditional` with a Laplace of diversity ``b = scales``."""

    def __init__(self, scale_table: ScaleTable = ScaleTable(), tail_mass: float = TAIL_MASS,
                 precision: int = PRECISION) -> None:
        super().__init__(LAPLACE, scale_table, tail_mass, precision)


def _check_shapes(y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None) -> None:
    if y.shape != scales.shape or (means is not None and means.shape != y.shape):
        raise ValueError(
            f"y {tuple(y.shape)}, scales {tuple(scales.shape)} and means "
            f"{None if means is None else tuple(means.shape)} must have one shape"
        )
