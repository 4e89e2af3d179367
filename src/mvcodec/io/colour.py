"""The one RGB <-> BT.709 limited-range 4:2:0 conversion pair every codec and metric uses.

Forward: full-range RGB -> Y'CbCr with the BT.709 matrix (Kr=0.2126, Kb=0.0722), Y in [16, 235],
Cb/Cr in [16, 240]; chroma is subsampled by averaging each 2x2 block (centre siting).  Odd widths or
heights are replicate-padded to even before subsampling, so planes are (H, W), (ceil(H/2), ceil(W/2)) x 2.
Inverse: chroma upsampled bilinearly (centre-aligned, matching the box filter), then the inverse matrix,
rounded and clipped to uint8.  All arithmetic is float64 with round-half-to-even, so results are exact and
identical on every machine.
"""

from __future__ import annotations

import cv2
import numpy as np

KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB

_RGB_TO_YUV = np.array([
    [KR, KG, KB],
    [-KR / (2 * (1 - KB)), -KG / (2 * (1 - KB)), 0.5],
    [0.5, -KG / (2 * (1 - KR)), -KB / (2 * (1 - KR))],
])
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)


def _pad_even(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    return np.pad(a, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (a.ndim - 2), mode="edge")


def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 RGB (H, W, 3) -> uint8 planes Y (H, W), U and V (ceil(H/2), ceil(W/2)), BT.709 limited range."""
    ycc = rgb.astype(np.float64) / 255.0 @ _RGB_TO_YUV.T
    y = np.rint(16.0 + 219.0 * ycc[..., 0])
    c = _pad_even(ycc[..., 1:])
    h2, w2 = c.shape[0] // 2, c.shape[1] // 2
    c = c.reshape(h2, 2, w2, 2, 2).mean(axis=(1, 3))
    c = np.rint(128.0 + 224.0 * c)
    to8 = lambda p: np.clip(p, 0, 255).astype(np.uint8)  # noqa: E731
    return to8(y), to8(c[..., 0]), to8(c[..., 1])


def yuv420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """uint8 BT.709 limited-range planes (Y (H, W), U/V (ceil(H/2), ceil(W/2))) -> uint8 RGB (H, W, 3)."""
    h, w = y.shape
    he, we = h + h % 2, w + w % 2
    chroma = np.stack([u, v], axis=-1).astype(np.float32)
    chroma = cv2.resize(chroma, (we, he), interpolation=cv2.INTER_LINEAR)[:h, :w].astype(np.float64)
    ycc = np.empty((h, w, 3), np.float64)
    ycc[..., 0] = (y.astype(np.float64) - 16.0) / 219.0
    ycc[..., 1:] = (chroma - 128.0) / 224.0
    rgb = ycc @ _YUV_TO_RGB.T
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def yuv420_frame_bytes(height: int, width: int) -> int:
    """Bytes of one planar yuv420p frame (I420) of the given size."""
    return height * width + 2 * ((height + 1) // 2) * ((width + 1) // 2)


def pack_i420(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> bytes:
    """Planes -> one planar I420 frame, the layout of ffmpeg's ``yuv420p`` raw video and of Y4M."""
    return y.tobytes() + u.tobytes() + v.tobytes()


def unpack_i420(buf: bytes | memoryview, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One planar I420 frame -> Y (H, W), U, V (ceil(H/2), ceil(W/2)) uint8 planes."""
    hc, wc = (height + 1) // 2, (width + 1) // 2
    a = np.frombuffer(buf, np.uint8, count=yuv420_frame_bytes(height, width))
    y = a[: height * width].reshape(height, width)
    u = a[height * width: height * width + hc * wc].reshape(hc, wc)
    v = a[height * width + hc * wc:].reshape(hc, wc)
    return y, u, v
