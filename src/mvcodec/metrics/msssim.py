"""MS-SSIM on RGB with ``pytorch_msssim``'s definition (data_range 255), for frames of any size.

The library's ``ms_ssim`` needs a smaller side above (win - 1) x 2^4 = 160 px for its 5 scales and asserts
otherwise.  mvcodec's rule, by the smaller side ``s`` of the frame (window 11, sigma 1.5 throughout):

    s >= 161          5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) as given (they sum to 1.0001):
                      the library's ``ms_ssim``
    21 <= s <= 160    L < 5 scales, L the largest with s > 10 x 2^(L-1) (the library's own bound for L scales),
                      weights = the first L standard weights renormalized to sum 1
    11 <= s <= 20     1 scale: plain SSIM (weight 1)
    s <= 10           1 scale with the Gaussian window shrunk to the largest odd size <= s, sigma 1.5 x size/11

Fewer scales were chosen over padding because padding invents content that both frames then share (or that
copies their edges), which biases the structure terms; dropping the coarse scales keeps every term computed on
real pixels.  Values from frames under 161 px are therefore "MS-SSIM with L scales" and are comparable only
between frames of the same size.  As in the library, the score is the mean over R, G, B of each channel's
MS-SSIM.

Why this is hand-written.  The evaluation computes MS-SSIM of every decoded frame at every rate point, and the
library is slow on CPU: its separable Gaussian is a grouped 1 x 11 ``conv2d``, which took 0.43-0.54 s per
540 x 960 RGB frame (0.16-0.25 s per 752 x 480) on the shared 2-core development machine, most of a benchmark
run.  This module computes the same thing with OpenCV and numpy in float32 in 0.06 s per 540 x 960 frame
(0.035-0.045 s per 752 x 480; best of several runs, same machine and load), step for step as
``pytorch_msssim`` 1.0.0 (pinned) does it:

* the window is the library's own float32 1-D kernel (``pytorch_msssim.ssim._fspecial_gauss_1d``), applied
  along H then W with no padding ('valid'): ``cv2.sepFilter2D`` on the planes stacked one above the other,
  then the (size - 1) / 2 border rows and columns of every plane are cropped, which removes exactly the outputs
  that saw a neighbouring plane or the border extension (the taps must be the library's: its float32 kernel
  sums to 1 - 3e-8, and a recomputed one moves results by up to 4e-6 through the cancellation in sigma^2);
* sigma^2 = G(x^2) - G(x)^2 etc., C1 = (0.01 x 255)^2, C2 = (0.03 x 255)^2, cs and ssim maps averaged per
  channel;
* between scales ``avg_pool2d(kernel 2, padding s % 2)`` with zero padding counted in the divisor: an odd side
  gets one zero row/column in front (the one at the back is never reached) and every output is a 2 x 2 sum / 4;
* relu on each scale's cs and on the last scale's ssim, product of their weighted powers, mean over R, G, B.

The library stays the oracle: the tests check this module against ``pytorch_msssim.ms_ssim`` (5 scales, random
and smooth frames) and against :func:`_reference_ms_ssim`, the previous torch implementation of the
reduced-scale rule built on the library's per-scale kernel, to 1e-5 absolute (largest deviation observed:
1.1e-6).  Results are deterministic: every output sample is computed by the same operations whatever OpenCV's
thread count (checked in the tests).
"""

from __future__ import annotations

import functools
import importlib

import cv2
import numpy as np

from mvcodec.metrics.psnr import check_pair

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE, WIN_SIGMA, K = 11, 1.5, (0.01, 0.03)
DATA_RANGE = 255.0
_C1 = (K[0] * DATA_RANGE) ** 2
_C2 = (K[1] * DATA_RANGE) ** 2
_STRIP_SAMPLES = 1 << 16


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of scales used for an (H, W) frame: 5 from 161 px on the smaller side, fewer below."""
    side, scales = min(height, width), 1
    while scales < len(WEIGHTS) and side > (WIN_SIZE - 1) * 2 ** scales:
        scales += 1
    return scales


def ms_ssim_rgb(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """MS-SSIM of one frame: uint8 RGB (H, W, 3) each -> float in [0, 1], 1 for identical frames."""
    check_pair(reference, reconstruction)
    return float(ms_ssim_rgb_batch(reference[None], reconstruction[None])[0])


def ms_ssim_rgb_batch(reference: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """MS-SSIM per frame: uint8 RGB (N, H, W, 3) each -> float64 (N,)."""
    check_pair(reference, reconstruction, ndim=4)
    n, h, w, _ = reference.shape
    scales = ms_ssim_scales(h, w)
    size, sigma = _window_params(h, w)
    window = _window(size, sigma)
    weights = np.asarray(WEIGHTS[:scales], dtype=np.float32)
    if scales < len(WEIGHTS):
        weights = weights / weights.sum()
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        x = np.ascontiguousarray(reference[i].transpose(2, 0, 1), dtype=np.float32)  # (3, H, W) in [0, 255]
        y = np.ascontiguousarray(reconstruction[i].transpose(2, 0, 1), dtype=np.float32)
        out[i] = _ms_ssim_planes(x, y, window, weights)
    return out


def _window_params(height: int, width: int) -> tuple[int, float]:
    """Gaussian window (size, sigma): 11 and 1.5, shrunk to the largest odd size <= the smaller side below 11."""
    side = min(height, width)
    if side >= WIN_SIZE:
        return WIN_SIZE, WIN_SIGMA
    size = side if side % 2 else side - 1
    return size, WIN_SIGMA * size / WIN_SIZE


@functools.lru_cache(maxsize=None)
def _window(size: int, sigma: float) -> np.ndarray:
    """The library's float32 1-D Gaussian, as an OpenCV kernel (size, 1)."""
    lib = importlib.import_module("pytorch_msssim.ssim")  # the module, not the function the package re-exports
    kernel = lib._fspecial_gauss_1d(size, sigma).reshape(size, 1).numpy().astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def _ms_ssim_planes(x: np.ndarray, y: np.ndarray, window: np.ndarray, weights: np.ndarray) -> float:
    """MS-SSIM of one frame given as float32 planes (C, H, W) x 2, over len(weights) scales."""
    scales = len(weights)
    terms = []
    for level in range(scales):
        ssim_per_channel, cs = _ssim_planes(x, y, window)
        if level < scales - 1:
            terms.append(np.maximum(cs, 0.0))
            x, y = _avg_pool(x), _avg_pool(y)
    terms.append(np.maximum(ssim_per_channel, 0.0))
    stacked = np.stack(terms).astype(np.float32)  # (scales, C)
    return float(np.prod(stacked ** weights[:, None], axis=0, dtype=np.float32).mean(dtype=np.float64))


def _ssim_planes(x: np.ndarray, y: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (ssim, cs) means of float32 planes (C, H, W) x 2 with 'valid' Gaussian filtering."""
    c, h, w = x.shape
    moments = np.empty((5, c, h, w), dtype=np.float32)
    moments[0], moments[1] = x, y
    np.multiply(x, x, out=moments[2])
    np.multiply(y, y, out=moments[3])
    np.multiply(x, y, out=moments[4])
    # All 5 x C planes stacked vertically and filtered in one call; outputs within r of a plane's edge mixed in
    # a neighbour or the border extension and are cropped, leaving exactly the 'valid' convolution.
    filtered = cv2.sepFilter2D(moments.reshape(5 * c * h, w), cv2.CV_32F, window, window,
                               borderType=cv2.BORDER_REPLICATE)
    r = window.shape[0] // 2
    valid = filtered.reshape(5, c, h, w)[:, :, r:h - r, r:w - r]
    vh, vw = valid.shape[-2:]
    # The maps are built in row strips of about 64k samples so that the dozen elementwise passes stay in cache.
    rows = max(1, min(vh, _STRIP_SAMPLES // vw))
    buf = np.empty((6, rows, vw), dtype=np.float32)
    ssim_sum, cs_sum = np.zeros(c), np.zeros(c)
    for ch in range(c):
        for top in range(0, vh, rows):
            mu1, mu2, xx, yy, xy = valid[:, ch, top:top + rows]
            n = mu1.shape[0]
            mu1_sq, mu2_sq, mu1_mu2, cs_map, den, tmp = buf[:, :n]
            np.multiply(mu1, mu1, out=mu1_sq)
            np.multiply(mu2, mu2, out=mu2_sq)
            np.multiply(mu1, mu2, out=mu1_mu2)
            np.subtract(xy, mu1_mu2, out=cs_map)  # sigma12
            cs_map *= 2.0
            cs_map += _C2
            np.subtract(xx, mu1_sq, out=den)  # sigma1^2
            np.subtract(yy, mu2_sq, out=tmp)  # sigma2^2
            den += tmp
            den += _C2
            cs_map /= den
            ssim_map = mu1_mu2
            ssim_map *= 2.0
            ssim_map += _C1
            den = mu1_sq
            den += mu2_sq
            den += _C1
            ssim_map /= den
            ssim_map *= cs_map
            cs_sum[ch] += cs_map.sum(dtype=np.float64)
            ssim_sum[ch] += ssim_map.sum(dtype=np.float64)
    return ssim_sum / (vh * vw), cs_sum / (vh * vw)


def _avg_pool(planes: np.ndarray) -> np.ndarray:
    """``F.avg_pool2d(kernel_size=2, padding=[s % 2 for s in (H, W)])`` on float32 planes (C, H, W)."""
    _, h, w = planes.shape
    if h % 2 or w % 2:
        planes = np.pad(planes, ((0, 0), (h % 2, 0), (w % 2, 0)))
    pooled = planes[:, 0::2, 0::2] + planes[:, 0::2, 1::2]
    pooled += planes[:, 1::2, 0::2]
    pooled += planes[:, 1::2, 1::2]
    pooled *= 0.25
    return pooled


def _reference_ms_ssim(reference: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """The previous torch implementation (the test oracle for every scale count): (N, H, W, 3) x 2 -> (N,).

    5 scales: the library's ``ms_ssim``.  Fewer: the library's MS-SSIM loop with its per-scale kernel
    ``pytorch_msssim.ssim._ssim``, ``ms_ssim_scales`` levels and renormalized weights.
    """
    import torch
    import torch.nn.functional as F
    from pytorch_msssim import ms_ssim

    lib = importlib.import_module("pytorch_msssim.ssim")
    x, y = (torch.from_numpy(np.ascontiguousarray(f.transpose(0, 3, 1, 2))).float()
            for f in (reference, reconstruction))
    h, w = x.shape[-2:]
    scales = ms_ssim_scales(h, w)
    with torch.no_grad():
        if scales == len(WEIGHTS):
            out = ms_ssim(x, y, data_range=DATA_RANGE, size_average=False, win_size=WIN_SIZE,
                          win_sigma=WIN_SIGMA, weights=list(WEIGHTS), K=K)
            return out.double().numpy()
        size, sigma = _window_params(h, w)
        win = lib._fspecial_gauss_1d(size, sigma).repeat([x.shape[1], 1, 1, 1])
        weights = torch.tensor(WEIGHTS[:scales], dtype=x.dtype)
        weights = weights / weights.sum()
        mcs = []
        for level in range(scales):
            ssim_per_channel, cs = lib._ssim(x, y, data_range=DATA_RANGE, win=win, size_average=False, K=K)
            if level < scales - 1:
                mcs.append(torch.relu(cs))
                padding = [s % 2 for s in x.shape[2:]]
                x = F.avg_pool2d(x, kernel_size=2, padding=padding)
                y = F.avg_pool2d(y, kernel_size=2, padding=padding)
        stacked = torch.stack(mcs + [torch.relu(ssim_per_channel)], dim=0)  # (scales, N, C)
        return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(dim=1).double().numpy()
