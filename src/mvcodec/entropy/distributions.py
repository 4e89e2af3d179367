"""Zero-centred, scale-parametrised distributions of a latent residual ``r = y - mean``.

Each distribution has two faces that must describe the same law:

* a torch face for training, :meth:`Distribution.likelihood` (differentiable, float32), and
* a numpy float64 face for the coding tables, :meth:`Distribution.cdf` and :meth:`Distribution.tail_bound`,
  evaluated only at the fixed table scales (see :mod:`mvcodec.entropy.tables`), never at a network output.

``scale`` is the standard deviation of the Gaussian and the diversity ``b`` of the Laplace
(density ``exp(-|x|/b) / 2b``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy import special

DistributionName = Literal["gaussian", "laplace"]


@dataclass(frozen=True)
class Distribution:
    """A symmetric, zero-centred continuous law with a scale parameter."""

    name: DistributionName

    def likelihood(self, r: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """P(round(r) = r) for integer-spaced ``r``: ``F(r + 1/2) - F(r - 1/2)``, any shape, differentiable.

        Evaluated on ``-|r|`` (the lower tail) where both CDF values are small, which keeps float32 precise.
        """
        a = -r.abs()
        return self._cdf_torch(a + 0.5, scale) - self._cdf_torch(a - 0.5, scale)

    def _cdf_torch(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        if self.name == "gaussian":
            return 0.5 * torch.erfc(-x / (scale * math.sqrt(2.0)))
        t = x / scale  # laplace: F(x) = exp(x/b)/2 for x <= 0, 1 - exp(-x/b)/2 above
        return torch.where(t <= 0, 0.5 * torch.exp(t.clamp(max=0)), 1.0 - 0.5 * torch.exp(-t.clamp(min=0)))

    def cdf(self, x: np.ndarray, scale: float) -> np.ndarray:
        """The CDF at ``x`` (float64), with scipy's scalar C routines (no SIMD-dependent paths)."""
        x = np.asarray(x, dtype=np.float64)
        if self.name == "gaussian":
            return special.ndtr(x / scale)
        lower = 0.5 + 0.5 * special.expm1(np.minimum(x, 0.0) / scale)  # exp(x/b)/2 for x <= 0
        upper = 0.5 - 0.5 * special.expm1(-np.maximum(x, 0.0) / scale)  # 1 - exp(-x/b)/2 for x > 0
        return np.where(x <= 0, lower, upper)

    def tail_bound(self, scale: float, tail_mass: float) -> float:
        """The ``x >= 0`` with ``P(|X| > x) = tail_mass``."""
        if self.name == "gaussian":
            return -scale * float(special.ndtri(tail_mass / 2))
        return scale * math.log(1.0 / tail_mass)


GAUSSIAN = Distribution("gaussian")
LAPLACE = Distribution("laplace")
