"""Reader of raw planar YUV files (``.yuv``): 8-bit 4:2:0 (I420, ffmpeg's ``yuv420p``), BT.709 limited range.

The file holds frames back to back with no header, so width and height must be given; the frame count is
the file size over the frame size, which must divide it exactly.  A frame range is read by seeking to its
byte offset.  Odd sizes are allowed (chroma planes are ceil(H/2) x ceil(W/2)).
"""

from __future__ import annotations

import os

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io._files import DEFAULT_FPS, existing_file
from mvcodec.io.clip import ClipInfo, check_range
from mvcodec.io.colour import unpack_i420, yuv420_frame_bytes, yuv420_to_rgb

RAW_FORMATS = ("yuv420p", "i420")


class RawYuvSource:
    """A raw yuv420p file as a 1-view :class:`~mvcodec.io.clip.ClipSource`."""

    def __init__(self, path: str | os.PathLike, width: int | None, height: int | None, fps: float | None = None,
                 pix_fmt: str = "yuv420p", name: str | None = None) -> None:
        self.path = existing_file(path, "raw YUV file")
        if width is None or height is None:
            raise InputError(f"{self.path}: a raw .yuv file needs its width and height")
        if not (isinstance(width, int) and isinstance(height, int)) or width < 1 or height < 1:
            raise InputError(f"{self.path}: width and height must be positive integers, got {width}x{height}")
        if str(pix_fmt).lower() not in RAW_FORMATS:
            raise InputError(f"{self.path}: raw format {pix_fmt!r} is not supported (only yuv420p)")
        self.frame_bytes = yuv420_frame_bytes(height, width)
        count, rest = divmod(self.path.stat().st_size, self.frame_bytes)
        if rest or count == 0:
            raise InputError(f"{self.path}: size {self.path.stat().st_size} bytes is not a whole number of "
                             f"{width}x{height} yuv420p frames ({self.frame_bytes} bytes each)")
        self.info = ClipInfo(1, count, height, width, fps or DEFAULT_FPS, (name or self.path.stem,))

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` (the only view is 0), uint8 RGB (stop - start, H, W, 3)."""
        check_range(self.info, view, start, stop)
        H, W = self.info.height, self.info.width
        out = np.empty((stop - start, H, W, 3), np.uint8)
        with open(self.path, "rb") as f:
            f.seek(start * self.frame_bytes)
            for i in range(stop - start):
                buf = f.read(self.frame_bytes)
                if len(buf) != self.frame_bytes:
                    raise InputError(f"{self.path}: frame {start + i} is truncated")
                out[i] = yuv420_to_rgb(*unpack_i420(buf, H, W))
        return out
