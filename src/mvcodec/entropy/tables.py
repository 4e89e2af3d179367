"""Integer probability tables: the one place where model parameters become what the coder sees.

Encoder and decoder never hand a float from a network to the entropy coder.  They go through the functions of
this module, which both sides call with the same arguments:

* :meth:`ScaleTable.index` maps each predicted scale to the index of a fixed, log-spaced table entry with
  float32 comparisons only (a pure function of the float32 scale);
* :func:`quantize_pmf` turns float64 probabilities into integer counts summing to ``2**precision``;
* :func:`conditional_tables` builds, for every table scale, the integer PMF of the residual ``round(y - mean)``
  from the table *index* alone (numpy/scipy float64), so the tables are bit-identical on both sides.

A :class:`PmfTables` row ``t`` covers the values ``offsets[t] .. offsets[t] + lengths[t] - 1`` (columns
``0 .. lengths[t] - 1``) and holds, in column ``lengths[t]``, the count of the *escape* symbol that announces a
value outside that range (see :mod:`mvcodec.entropy.coder`)::

    value:   offset  offset+1  ...  offset+length-1 | escape
    column:    0        1      ...     length-1     | length
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mvcodec.entropy.distributions import Distribution

PRECISION = 16  # bits of every integer table: counts sum to 2**PRECISION
MAX_PRECISION = 20  # constriction's ANS works at 24 bits; tables must stay well below it


def quantize_pmf(probs: np.ndarray, precision: int = PRECISION, keep_zeros: bool = False) -> np.ndarray:
    """Integer counts summing to ``2**precision`` proportional to ``probs`` (any non-negative float64 weights).

    Every count is at least 1 (``keep_zeros=True``: entries whose weight is exactly 0 stay 0).  Each count is
    ``1 + floor(p * free)``; the leftover units go to the largest fractional parts, ties to the lower index.
    Only IEEE-exact operations on the float64 input are used, so equal inputs give equal counts everywhere.

    Args:
        probs: ``(n,)`` weights, finite, non-negative, not all zero.
    Returns:
        ``(n,)`` int64 counts.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
        raise ValueError("quantize_pmf needs a non-empty vector of finite, non-negative weights, not all zero")
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be 1..{MAX_PRECISION} bits, got {precision}")
    live = p > 0 if keep_zeros else np.ones(p.shape, dtype=bool)
    total = 1 << precision
    free = total - int(live.sum())
    if free < 0:
        raise ValueError(f"{int(live.sum())} symbols do not fit in {precision}-bit counts")
    scaled = p / p.sum() * free
    base = np.floor(scaled)
    counts = base.astype(np.int64) + live
    frac = np.where(live, scaled - base, -1.0)  # dead (zero) entries never receive a unit
    leftover = total - int(counts.sum())
    if leftover > 0:
        counts[np.argsort(-frac, kind="stable")[:leftover]] += 1
    while leftover < 0:  # only reachable through float rounding of ``scaled``: take units back from the largest
        counts[int(np.argmax(counts))] -= 1
        leftover += 1
    return counts


@dataclass(frozen=True)
class ScaleTable:
    """``num_scales`` log-spaced scales from ``scale_min`` to ``scale_max`` and the map ``scale -> index``."""

    scale_min: float = 0.11
    scale_max: float = 256.0
    num_scales: int = 64

    def __post_init__(self) -> None:
        if not (0 < self.scale_min < self.scale_max and self.num_scales >= 2):
            raise ValueError(f"bad scale table {self}")

    @functools.cached_property
    def scales(self) -> np.ndarray:
        """``(num_scales,)`` float64 table scales (Python scalar ``math.exp``, one per entry)."""
        lo, hi, n = math.log(self.scale_min), math.log(self.scale_max), self.num_scales
        return np.array([math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)], dtype=np.float64)

    @functools.cached_property
    def boundaries(self) -> np.ndarray:
        """``(num_scales - 1,)`` float32 geometric midpoints between neighbouring scales."""
        s = self.scales
        return np.array([math.sqrt(a * b) for a, b in zip(s[:-1], s[1:])], dtype=np.float32)

    def index(self, scales: torch.Tensor | np.ndarray) -> np.ndarray:
        """THE shared scale quantizer: the table index nearest (in log) to each scale, as int64, same shape.

        Scales are cast to float32 and compared with the float32 boundaries; below ``scale_min`` maps to 0,
        above ``scale_max`` (and NaN) to the last entry.  Encoder and decoder both call this.
        """
        s = scales.detach().cpu().numpy() if isinstance(scales, torch.Tensor) else np.asarray(scales)
        s = s.astype(np.float32)
        idx = np.searchsorted(self.boundaries, s, side="right").astype(np.int64)
        idx[np.isnan(s)] = self.num_scales - 1
        return idx


@dataclass(frozen=True, eq=False)
class PmfTables:
    """A stack of integer PMFs with escape, one per row; see the module docstring for the layout.

    Attributes:
        counts: ``(T, L_max + 1)`` int64; row ``t`` uses columns ``0 .. lengths[t]`` (the last is the escape).
        offsets: ``(T,)`` int64, the value coded by column 0.
        lengths: ``(T,)`` int64, the number of in-range values.
        precision: every row sums to ``2**precision``.
    """

    counts: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    precision: int = PRECISION
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # coder models, per row

    def __post_init__(self) -> None:
        t = len(self.lengths)
        if self.counts.ndim != 2 or self.counts.shape[0] != t or self.offsets.shape != (t,):
            raise ValueError("PmfTables: counts (T, L), offsets (T,) and lengths (T,) disagree")
        if t and (self.lengths.min() < 1 or self.lengths.max() + 1 > self.counts.shape[1]):
            raise ValueError("PmfTables: every row needs 1..L-1 in-range values plus the escape")
        cols = np.arange(self.counts.shape[1])
        used = cols[None, :] <= self.lengths[:, None]
        if np.any(self.counts[used] < 1) or np.any(self.counts[~used] != 0):
            raise ValueError("PmfTables: used counts must be >= 1 and padding 0")
        if np.any(self.counts.sum(axis=1) != 1 << self.precision):
            raise ValueError(f"PmfTables: rows must sum to 2**{self.precision}")

    def row(self, t: int) -> np.ndarray:
        """``(lengths[t] + 1,)`` counts of row ``t``, escape last."""
        return self.counts[t, : int(self.lengths[t]) + 1]

    def digest(self) -> str:
        """SHA-256 of the integer content: equal digests mean identical coding models."""
        h = hashlib.sha256(np.int64(self.precision).tobytes())
        for a in (self.counts, self.offsets, self.lengths):
            h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
        return h.hexdigest()


def pack_rows(rows: list[np.ndarray], offsets: list[int], precision: int = PRECISION) -> PmfTables:
    """:class:`PmfTables` from per-row counts (escape last, each summing to ``2**precision``)."""
    width = max((len(r) for r in rows), default=2)
    counts = np.zeros((len(rows), width), dtype=np.int64)
    for t, r in enumerate(rows):
        counts[t, : len(r)] = r
    lengths = np.array([len(r) - 1 for r in rows], dtype=np.int64)
    return PmfTables(counts, np.array(offsets, dtype=np.int64), lengths, precision)


def residual_pmf(distribution: Distribution, scale: float, tail_mass: float) -> tuple[np.ndarray, int]:
    """Float64 probabilities of ``round(r)`` on ``-R .. R`` plus the escape mass, and ``-R`` (the offset).

    ``R = ceil(tail_bound(scale, tail_mass))``, at least 1; the escape carries ``P(|round(r)| > R)``.
    """
    radius = max(1, math.ceil(distribution.tail_bound(scale, tail_mass)))
    v = -np.abs(np.arange(-radius, radius + 1, dtype=np.float64))  # lower-tail evaluation, as in training
    pmf = distribution.cdf(v + 0.5, scale) - distribution.cdf(v - 0.5, scale)
    escape = 2.0 * distribution.cdf(np.array([-radius - 0.5]), scale)[0]
    return np.append(pmf, escape), -radius


@functools.lru_cache(maxsize=16)
def conditional_tables(
    distribution: Distribution, scale_table: ScaleTable, tail_mass: float = 1e-6, precision: int = PRECISION
) -> PmfTables:
    """The integer tables of a conditional model: row ``t`` codes ``round(y - mean)`` at ``scale_table.scales[t]``.

    Built from the table index only (cached per argument set), hence identical for encoder and decoder.
    """
    rows, offsets = [], []
    for s in scale_table.scales:
        probs, offset = residual_pmf(distribution, float(s), tail_mass)
        rows.append(quantize_pmf(probs, precision))
        offsets.append(offset)
    return pack_rows(rows, offsets, precision)
