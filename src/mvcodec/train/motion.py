"""The explicit motion mask of MV-MGINR: Farneback optical flow magnitude per view, normalised to [0, 1].

::

    view v: gray(t-1), gray(t) --cv2.calcOpticalFlowFarneback--> |flow| (H, W)   (frame 0 uses the flow 0 -> 1)
    M[v] = |flow| / max(1 px, max over the view's frames)   (a static view stays near 0: sub-pixel flow noise
                                                           is not blown up to 1)

Computed once per clip on the original frames, before fitting; an encoder-only training aid, never transmitted.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_PEAK = 1.0  # pixels: the flow that maps to mask 1 at least
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def motion_mask(frames: np.ndarray) -> np.ndarray:
    """``frames``: (V, T, H, W, 3) uint8 RGB -> (V, T, H, W) float32 mask in [0, 1]."""
    v_count, t_count, h, w, _ = frames.shape
    out = np.zeros((v_count, t_count, h, w), np.float32)
    if t_count < 2:
        return out
    levels = max(1, min(FARNEBACK["levels"], int(np.log2(max(2, min(h, w) // 8)))))
    params = {**FARNEBACK, "levels": levels, "winsize": max(3, min(FARNEBACK["winsize"], min(h, w) | 1))}
    for v in range(v_count):
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[v]]
        for t in range(t_count):
            a, b = (gray[0], gray[1]) if t == 0 else (gray[t - 1], gray[t])
            flow = cv2.calcOpticalFlowFarneback(a, b, None, **params)
            out[v, t] = np.sqrt((flow.astype(np.float32) ** 2).sum(-1))
        out[v] /= max(MIN_PEAK, float(out[v].max()))
    return out
