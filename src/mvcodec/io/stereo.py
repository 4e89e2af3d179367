"""Splitting a single stereo video (side by side or top-bottom) into two views.

``layout="sbs"``: view 0 is the left half, view 1 the right half; ``layout="tb"``: view 0 is the top half,
view 1 the bottom half.  With an odd width (sbs) or height (tb) each view gets floor(size / 2) and the
middle column (row) is dropped, so both views keep one size.  Reading both views of one frame range decodes
it once: the last range read from the packed video is kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io._files import close_source
from mvcodec.io.clip import ClipInfo, ClipSource, check_range

Layout = Literal["sbs", "tb"]
LAYOUTS: dict[str, tuple[str, str]] = {"sbs": ("left", "right"), "tb": ("top", "bottom")}


class StereoSource:
    """Two views cut from every frame of a 1-view source holding packed stereo frames."""

    def __init__(self, packed: ClipSource, layout: Layout) -> None:
        if layout not in LAYOUTS:
            raise InputError(f"stereo layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        p = packed.info
        if p.views != 1:
            raise InputError(f"a stereo layout splits one packed view, the input has {p.views}")
        self.packed, self.layout = packed, layout
        height, width = (p.height, p.width // 2) if layout == "sbs" else (p.height // 2, p.width)
        if height < 1 or width < 1:
            raise InputError(f"a {p.width}x{p.height} frame is too small to split as {layout}")
        self.info = ClipInfo(2, p.frames, height, width, p.fps, LAYOUTS[layout])
        self._cache: tuple[int, int, np.ndarray] | None = None

    def _packed(self, start: int, stop: int) -> np.ndarray:
        c = self._cache
        if c is not None and c[0] <= start and stop <= c[1]:
            return c[2][start - c[0]: stop - c[0]]
        frames = self.packed.read_frames(0, start, stop)
        self._cache = (start, stop, frames)
        return frames

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of view 0 (left/top) or 1 (right/bottom), uint8 RGB (n, H, W, 3)."""
        check_range(self.info, view, start, stop)
        frames = self._packed(start, stop)
        H, W = self.info.height, self.info.width
        if self.layout == "sbs":
            part = frames[:, :, :W] if view == 0 else frames[:, :, frames.shape[2] - W:]
        else:
            part = frames[:, :H] if view == 0 else frames[:, frames.shape[1] - H:]
        return part.copy()

    def close(self) -> None:
        self._cache = None
        close_source(self.packed)
