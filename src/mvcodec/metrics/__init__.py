"""Quality and rate metrics: PSNR-RGB (primary), PSNR-Y / YUV-PSNR on BT.709 4:2:0, MS-SSIM, bpp, BD-rate.

::

    psnr.py        per-frame PSNR-RGB, PSNR-Y/U/V, YUV-PSNR = (6Y + U + V) / 8; capped at 100 dB
    msssim.py      per-frame MS-SSIM on RGB (OpenCV, checked against pytorch_msssim; fewer scales below 161 px)
    evaluate.py    MetricAccumulator (streaming, frames then views) and evaluate_clips
    rate.py        bpp = 8 x file bytes / (V x T x H x W)
    bjontegaard.py BD-rate / BD-PSNR, pchip, over the overlapping range
"""

from mvcodec.metrics.bjontegaard import BDResult, bd_psnr, bd_rate, bjontegaard
from mvcodec.metrics.evaluate import ClipMetrics, MetricAccumulator, evaluate_clips
from mvcodec.metrics.msssim import ms_ssim_rgb, ms_ssim_rgb_batch, ms_ssim_scales
from mvcodec.metrics.psnr import PSNR_CAP_DB, mse, psnr_from_mse, psnr_rgb, psnr_yuv420, yuv_psnr
from mvcodec.metrics.rate import bpp

__all__ = [
    "BDResult", "ClipMetrics", "MetricAccumulator", "PSNR_CAP_DB", "bd_psnr", "bd_rate", "bjontegaard", "bpp",
    "evaluate_clips", "ms_ssim_rgb", "ms_ssim_rgb_batch", "ms_ssim_scales", "mse", "psnr_from_mse", "psnr_rgb",
    "psnr_yuv420", "yuv_psnr",
]
