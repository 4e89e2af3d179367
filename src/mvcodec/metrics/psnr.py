"""PSNR on RGB (the primary metric) and on BT.709 limited-range 4:2:0 planes, one frame at a time.

Per frame::

    PSNR-RGB = 10 log10(255^2 / MSE),  MSE over every pixel of all three RGB channels
    PSNR-Y/U/V on the planes of ``mvcodec.io.colour.rgb_to_yuv420`` of both frames (peak 255, 8-bit)
    YUV-PSNR = (6 PSNR-Y + PSNR-U + PSNR-V) / 8

Clip figures average the per-frame values over frames, then over views (``mvcodec.metrics.clip``).
Every PSNR is capped at :data:`PSNR_CAP_DB` (100 dB): identical frames (MSE 0) give exactly the cap instead
of ``inf``, and near-identical large frames never exceed it, so averages stay finite and comparable.
"""

from __future__ import annotations

import math

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io.colour import rgb_to_yuv420

PSNR_CAP_DB = 100.0
"""Upper bound of every PSNR reported by mvcodec; the value for identical frames."""

PEAK = 255.0


def mse(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Mean squared error of two uint8 arrays of equal shape (any shape), computed exactly in integers."""
    check_pair(reference, reconstruction, ndim=None)
    d = reference.astype(np.int32) - reconstruction.astype(np.int32)
    return float(np.sum(d * d, dtype=np.int64)) / d.size


def psnr_from_mse(value: float, peak: float = PEAK) -> float:
    """10 log10(peak^2 / mse) in dB, capped at :data:`PSNR_CAP_DB` (so MSE 0 gives the cap)."""
    if value <= 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(peak * peak / value))


def psnr_rgb(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """PSNR-RGB of one frame: uint8 (H, W, 3) each; MSE over all H x W x 3 samples, peak 255, capped."""
    check_pair(reference, reconstruction)
    return psnr_from_mse(mse(reference, reconstruction))


def psnr_yuv420(reference: np.ndarray, reconstruction: np.ndarray) -> tuple[float, float, float]:
    """(PSNR-Y, PSNR-U, PSNR-V) of one frame: uint8 RGB (H, W, 3) each, both converted with ``rgb_to_yuv420``.

    Y is (H, W); U and V are (ceil(H/2), ceil(W/2)).  Peak 255 on every plane (8-bit, as in the HM/VTM
    reports), capped at :data:`PSNR_CAP_DB`.
    """
    check_pair(reference, reconstruction)
    planes = zip(rgb_to_yuv420(reference), rgb_to_yuv420(reconstruction))
    y, u, v = (psnr_from_mse(mse(a, b)) for a, b in planes)
    return y, u, v


def yuv_psnr(psnr_y: float, psnr_u: float, psnr_v: float) -> float:
    """YUV-PSNR = (6 PSNR-Y + PSNR-U + PSNR-V) / 8, the common 4:2:0 weighting."""
    return (6.0 * psnr_y + psnr_u + psnr_v) / 8.0


def check_pair(reference: np.ndarray, reconstruction: np.ndarray, ndim: int | None = 3) -> None:
    """Raise :class:`InputError` unless both are uint8 arrays of one shape ((H, W, 3) when ``ndim`` is 3)."""
    for name, a in (("reference", reference), ("reconstruction", reconstruction)):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8:
            raise InputError(f"the {name} must be a uint8 array, got {getattr(a, 'dtype', type(a).__name__)}")
    if reference.shape != reconstruction.shape:
        raise InputError(f"reference {reference.shape} and reconstruction {reconstruction.shape} differ in shape")
    if ndim is not None and (reference.ndim != ndim or reference.shape[-1] != 3 or reference.size == 0):
        raise InputError(f"a frame must be non-empty RGB of shape (H, W, 3), got {reference.shape}")
