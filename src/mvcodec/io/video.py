"""Reader of one video file (mp4, mkv, avi, webm, y4m, ...) through PyAV, as a 1-view lazy source.

Frames are decoded in a stream: consecutive ``read_frames`` calls continue where the last one stopped,
a target a little ahead is reached by decoding forward, and a target further away (or behind) by seeking
to the keyframe before it.  Seeking uses an index of packet timestamps made by demuxing (not decoding)
the file once, the first time a seek is needed; files whose packets carry no timestamps are re-decoded
from the start instead.

Frame count: the container's when it states one (mp4/mov, avi), else counted by demuxing packets.
A video that decodes to fewer frames than counted raises :class:`InputError` when the missing frame is read.

Colour: 8-bit 4:2:0 limited-range frames tagged BT.709 or untagged go through the project's own
:func:`~mvcodec.io.colour.yuv420_to_rgb`, so a video written with :func:`~mvcodec.io.colour.rgb_to_yuv420`
reads back exactly as that conversion predicts; every other pixel format (RGB, 4:4:4, 10-bit, full range,
frames tagged BT.601) is converted to RGB by libswscale.  Rotation metadata is not applied.
"""

from __future__ import annotations

import bisect
import os
from typing import Iterator

import av
import numpy as np

from mvcodec.errors import InputError
from mvcodec.io._files import DEFAULT_FPS, existing_file
from mvcodec.io.clip import ClipInfo, check_range, to_rgb
from mvcodec.io.colour import yuv420_to_rgb

_BT709_OR_UNTAGGED = (1, 2)  # AVCOL_SPC_BT709, AVCOL_SPC_UNSPECIFIED
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)


def _plane(plane: "av.video.plane.VideoPlane") -> np.ndarray:
    rows = np.frombuffer(plane, np.uint8, count=plane.height * plane.line_size)
    return rows.reshape(plane.height, plane.line_size)[:, : plane.width]


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded PyAV frame as uint8 RGB (H, W, 3), with the colour rules of this module's docstring."""
    fmt = frame.format.name
    if fmt == "yuv420p" and frame.color_range != _FULL_RANGE and frame.colorspace in _BT709_OR_UNTAGGED:
        return yuv420_to_rgb(*(_plane(p) for p in frame.planes))
    if fmt in ("gray", "gray8"):
        return to_rgb(_plane(frame.planes[0]))
    return frame.to_ndarray(format="rgb24")


class VideoSource:
    """One video file as a 1-view :class:`~mvcodec.io.clip.ClipSource`; holds the file open until :meth:`close`."""

    FORWARD_LIMIT = 48
    """Decode forward rather than seek when the target frame is at most this many frames ahead."""

    def __init__(self, path: str | os.PathLike, fps: float | None = None, name: str | None = None) -> None:
        self.path = existing_file(path, "video file")
        self._container: av.container.InputContainer | None = None
        self._index: tuple[list[int], list[int]] | bool | None = None  # None: not scanned, False: unusable
        self.decoded = 0
        """Frames decoded so far, skipped ones included (shows how much work seeking saved)."""
        self._open()
        try:
            self.info = self._probe(fps, name)
        except BaseException:
            self.close()
            raise

    def _probe(self, fps: float | None, name: str | None) -> ClipInfo:
        stream = self._stream
        width, height = stream.codec_context.width, stream.codec_context.height
        if width < 1 or height < 1:
            raise InputError(f"{self.path}: the video stream has no frame size")
        rate = fps or float(stream.average_rate or stream.guessed_rate or 0) or DEFAULT_FPS
        count = stream.frames if stream.frames > 0 else self._scan()
        if count < 1:
            raise InputError(f"{self.path}: the video has no frames")
        return ClipInfo(1, count, height, width, rate, (name or self.path.stem,))

    # -- container state -------------------------------------------------------------------------------
    def _open(self) -> None:
        self.close()
        try:
            self._container = av.open(str(self.path), "r")
        except _AV_ERRORS as exc:
            raise InputError(f"{self.path}: cannot open as a video ({exc})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._frames: Iterator[av.VideoFrame] = self._container.decode(self._stream)
        self._pending: av.VideoFrame | None = None
        self._pos = 0  # index of the frame the next _next() returns

    def close(self) -> None:
        """Release the file; a later read reopens it."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def _scan(self) -> int:
        """Demux (no decoding) the whole file: count its packets and index their timestamps for seeking."""
        pts: list[int | None] = []
        keys: list[int] = []
        try:
            with av.open(str(self.path), "r") as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    pts.append(packet.pts)
                    if packet.is_keyframe and packet.pts is not None:
                        keys.append(packet.pts)
        except _AV_ERRORS as exc:
            raise InputError(f"{self.path}: corrupt video ({exc})") from None
        usable = None not in pts and len(set(pts)) == len(pts) and keys
        self._index = (sorted(pts), sorted(keys)) if usable else False  # type: ignore[arg-type]
        return len(pts)

    # -- decoding --------------------------------------------------------------------------------------
    def _next(self) -> av.VideoFrame:
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            try:
                frame = next(self._frames)
            except StopIteration:
                raise InputError(f"{self.path}: the video ends after {self._pos} frames but has "
                                 f"{self.info.frames} by its container") from None
            except _AV_ERRORS as exc:
                raise InputError(f"{self.path}: corrupt video at frame {self._pos} ({exc})") from None
            self.decoded += 1
        self._pos += 1
        return frame

    def _can_seek(self) -> bool:
        if self._index is None:
            self._scan()
        return bool(self._index) and len(self._index[0]) == self.info.frames

    def _seek(self, target: int) -> bool:
        """Position the decoder on frame ``target`` from the keyframe before it; False if that fails."""
        pts, keys = self._index
        target_pts = pts[target]
        k = bisect.bisect_right(keys, target_pts) - 1
        if k < 0:
            return False
        try:
            self._container.seek(keys[k], stream=self._stream, backward=True, any_frame=False)
            self._frames = self._container.decode(self._stream)
            self._pending = None
            for frame in self._frames:
                self.decoded += 1
                if frame.pts is None or frame.pts > target_pts:
                    return False
                if frame.pts == target_pts:
                    self._pending, self._pos = frame, target
                    return True
        except _AV_ERRORS:
            return False
        return False

    def _goto(self, target: int) -> None:
        """Make ``target`` the next frame ``_next`` returns."""
        if self._container is None:
            self._open()
        if not self._pos <= target <= self._pos + self.FORWARD_LIMIT:
            if self._can_seek():
                if not self._seek(target):
                    self._open()  # decode from the start instead
            elif target < self._pos:
                self._open()
        while self._pos < target:
            self._next()

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` (the only view is 0), uint8 RGB (stop - start, H, W, 3)."""
        check_range(self.info, view, start, stop)
        self._goto(start)
        out = np.empty((stop - start, self.info.height, self.info.width, 3), np.uint8)
        for i in range(stop - start):
            rgb = frame_to_rgb(self._next())
            if rgb.shape != out.shape[1:]:
                raise InputError(f"{self.path}: frame {start + i} is {rgb.shape[1]}x{rgb.shape[0]}, not "
                                 f"{self.info.width}x{self.info.height} (the size changes mid-stream)")
            out[i] = rgb
        return out
