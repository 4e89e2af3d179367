"""Bjontegaard delta rate and delta PSNR with piecewise cubic Hermite (pchip) interpolation.

This is the pchip variant of VCEG-M33 used by the JCT-VC / JVET common-test-condition spreadsheets
(JCTVC-L1100, JVET-T2010) and by the ``bjontegaard`` package (FAU-LMS) with ``method="pchip"``::

    BD-rate:  log10(rate) as a pchip function of PSNR, one per curve; integrate both over the PSNR
              interval where the curves overlap; mean difference d = (int_test - int_anchor) / width;
              BD-rate = (10^d - 1) x 100 %   (negative: the test needs fewer bits for the same PSNR)
    BD-PSNR:  PSNR as a pchip function of log10(rate); mean of test - anchor over the overlapping
              log-rate interval, in dB  (positive: the test is better at the same rate)

Points of each curve are sorted (by PSNR for BD-rate, by rate for BD-PSNR), so the order given does not
matter and a non-monotonic curve still yields a function of each axis; a repeated PSNR (or rate) within one
curve has no such function and is an :class:`InputError`.  Four or more points per curve are recommended
(two is the minimum; with two the interpolant is a straight line).  The overlap used is reported with the
result, and ``small_overlap`` warns when it covers less than half of the two curves' joint span on either
axis, where BD figures extrapolate the comparison from a narrow band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from mvcodec.errors import InputError

SMALL_OVERLAP = 0.5
"""``small_overlap`` is set when an overlap is narrower than this fraction of the curves' joint span."""


@dataclass(frozen=True)
class BDResult:
    """BD-rate (percent) and BD-PSNR (dB) of a test curve against an anchor, and the ranges they cover.

    ``psnr_low``/``psnr_high``: the PSNR interval BD-rate integrates over (dB); ``rate_low``/``rate_high``:
    the rate interval BD-PSNR integrates over (in the caller's rate unit, e.g. bpp).  Where the curves do
    not overlap on one axis, the metric of that axis and its interval are NaN.  ``overlap_fraction`` is the
    smaller over both axes of overlap / joint span (log-rate for rates).
    """

    bd_rate_percent: float
    bd_psnr_db: float
    psnr_low: float
    psnr_high: float
    rate_low: float
    rate_high: float
    overlap_fraction: float
    small_overlap: bool


def bjontegaard(rate_anchor: Sequence[float], psnr_anchor: Sequence[float],
                rate_test: Sequence[float], psnr_test: Sequence[float]) -> BDResult:
    """BD-rate and BD-PSNR of (rate_test, psnr_test) against (rate_anchor, psnr_anchor), 1-D, >= 2 points each.

    Rates must be positive (any unit, the same for both curves), PSNRs in dB; all values finite.
    Raises :class:`InputError` on malformed curves or when the curves overlap on neither axis.
    """
    la, pa = _curve(rate_anchor, psnr_anchor, "anchor")
    lt, pt = _curve(rate_test, psnr_test, "test")
    bd_rate, p_lo, p_hi, p_frac = _mean_gap(pa, la, pt, lt)
    bd_psnr, r_lo, r_hi, r_frac = _mean_gap(la, pa, lt, pt)
    if math.isnan(bd_rate) and math.isnan(bd_psnr):
        raise InputError(f"the curves do not overlap: anchor PSNR {pa.min():.3f}..{pa.max():.3f} dB and "
                         f"rate {10 ** la.min():.6g}..{10 ** la.max():.6g}, test PSNR {pt.min():.3f}.."
                         f"{pt.max():.3f} dB and rate {10 ** lt.min():.6g}..{10 ** lt.max():.6g}")
    fraction = min(p_frac, r_frac)
    return BDResult(bd_rate_percent=(10.0 ** bd_rate - 1.0) * 100.0, bd_psnr_db=bd_psnr,
                    psnr_low=p_lo, psnr_high=p_hi, rate_low=10.0 ** r_lo, rate_high=10.0 ** r_hi,
                    overlap_fraction=fraction, small_overlap=fraction < SMALL_OVERLAP)


def bd_rate(rate_anchor: Sequence[float], psnr_anchor: Sequence[float],
            rate_test: Sequence[float], psnr_test: Sequence[float]) -> float:
    """BD-rate in percent (see :func:`bjontegaard`); NaN when the PSNR ranges do not overlap."""
    return bjontegaard(rate_anchor, psnr_anchor, rate_test, psnr_test).bd_rate_percent


def bd_psnr(rate_anchor: Sequence[float], psnr_anchor: Sequence[float],
            rate_test: Sequence[float], psnr_test: Sequence[float]) -> float:
    """BD-PSNR in dB (see :func:`bjontegaard`); NaN when the rate ranges do not overlap."""
    return bjontegaard(rate_anchor, psnr_anchor, rate_test, psnr_test).bd_psnr_db


def _curve(rate: Sequence[float], psnr: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated (log10 rate, psnr), float64 (n,), in the order given."""
    try:
        r, p = np.asarray(rate, dtype=np.float64), np.asarray(psnr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} curve: rates and PSNRs must be numbers ({exc})") from None
    if r.ndim != 1 or p.ndim != 1 or len(r) != len(p):
        raise InputError(f"{name} curve: rates {r.shape} and PSNRs {p.shape} must be 1-D of equal length")
    if len(r) < 2:
        raise InputError(f"{name} curve: at least 2 rate-distortion points are needed (4 recommended), "
                         f"got {len(r)}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p))):
        raise InputError(f"{name} curve: rates and PSNRs must be finite")
    if np.any(r <= 0):
        raise InputError(f"{name} curve: rates must be positive, got {r.tolist()}")
    for label, values in (("PSNR", p), ("rate", r)):
        if len(np.unique(values)) != len(values):
            raise InputError(f"{name} curve: repeated {label} values {values.tolist()}; a BD curve needs "
                             f"distinct {label}s")
    return np.log10(r), p


def _mean_gap(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray,
              yt: np.ndarray) -> tuple[float, float, float, float]:
    """Mean of pchip(xt->yt) - pchip(xa->ya) over the overlap of the x ranges: (gap, low, high, fraction).

    All NaN but fraction 0 when the x ranges do not overlap.
    """
    lo, hi = max(xa.min(), xt.min()), min(xa.max(), xt.max())
    span = max(xa.max(), xt.max()) - min(xa.min(), xt.min())
    if not hi > lo:
        return math.nan, math.nan, math.nan, 0.0
    fa, ft = _pchip(xa, ya), _pchip(xt, yt)
    gap = (ft.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo)
    return float(gap), float(lo), float(hi), float((hi - lo) / span)


def _pchip(x: np.ndarray, y: np.ndarray) -> PchipInterpolator:
    """y as a pchip function of x, the points sorted by x (x distinct)."""
    order = np.argsort(x)
    return PchipInterpolator(x[order], y[order])
