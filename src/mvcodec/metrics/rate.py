"""Rate in bits per pixel."""

from __future__ import annotations

from mvcodec.errors import InputError


def bpp(file_bytes: int, views: int, frames: int, height: int, width: int) -> float:
    """bpp = 8 x file_bytes / (views x frames x H x W).

    ``file_bytes`` is the whole file's size, header and index included (DESIGN.md); the pixels are those of
    the coded clip at its original size (V views x T frames of H x W), counted once for all three channels.
    """
    if file_bytes < 0:
        raise InputError(f"file size must not be negative, got {file_bytes}")
    if min(views, frames, height, width) < 1:
        raise InputError(f"empty clip: {views} views x {frames} frames of {width}x{height}")
    return 8.0 * file_bytes / (views * frames * height * width)
