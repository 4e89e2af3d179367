"""The in-memory multi-view clip and the lazy source protocol every reader implements.

A multi-view clip is ``frames[view, frame, y, x, channel]``: uint8 RGB, shape (V, T, H, W, 3).
Readers return a :class:`ClipSource` that reads any (view, frame range) on demand, so a long clip is never
loaded whole; :class:`MultiViewClip` implements the same protocol for clips already in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from mvcodec.errors import InputError


@dataclass(frozen=True)
class Camera:
    """Optional pinhole camera parameters of one view: intrinsics K (3x3), rotation R (3x3), translation t (3)."""

    K: tuple[tuple[float, ...], ...]
    R: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    t: tuple[float, ...] = (0.0, 0.0, 0.0)

    def to_json(self) -> dict:
        return {"K": [list(r) for r in self.K], "R": [list(r) for r in self.R], "t": list(self.t)}

    @staticmethod
    def from_json(data: dict) -> "Camera":
        try:
            K = tuple(tuple(float(v) for v in row) for row in data["K"])
            R = tuple(tuple(float(v) for v in row) for row in data.get("R", np.eye(3).tolist()))
            t = tuple(float(v) for v in data.get("t", [0.0, 0.0, 0.0]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"camera parameters are malformed: {exc}") from None
        if len(K) != 3 or any(len(r) != 3 for r in K) or len(R) != 3 or len(t) != 3:
            raise InputError("camera parameters must have a 3x3 K, a 3x3 R and a 3-vector t")
        return Camera(K=K, R=R, t=t)


@dataclass(frozen=True)
class ClipInfo:
    """What a source holds, known before any pixel is decoded."""

    views: int
    frames: int
    height: int
    width: int
    fps: float
    view_names: tuple[str, ...]
    cameras: tuple[Camera, ...] | None = None

    def __post_init__(self) -> None:
        if self.views < 1 or self.frames < 1 or self.height < 1 or self.width < 1:
            raise InputError(
                f"empty clip: {self.views} views x {self.frames} frames of {self.width}x{self.height}"
            )
        if len(self.view_names) != self.views:
            raise InputError(f"{len(self.view_names)} view names for {self.views} views")
        if not self.fps > 0:
            raise InputError(f"frame rate must be positive, got {self.fps}")


@runtime_checkable
class ClipSource(Protocol):
    """Anything that can hand out frames of one view on demand."""

    info: ClipInfo

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of ``view`` as uint8 RGB, shape (stop - start, H, W, 3)."""
        ...


@dataclass
class MultiViewClip:
    """A multi-view clip in memory: ``frames`` has shape (V, T, H, W, 3), dtype uint8, RGB."""

    frames: np.ndarray
    fps: float = 30.0
    view_names: tuple[str, ...] = ()
    cameras: tuple[Camera, ...] | None = None
    info: ClipInfo = field(init=False, repr=False)

    def __post_init__(self) -> None:
        f = self.frames
        if not isinstance(f, np.ndarray) or f.ndim != 5 or f.shape[-1] != 3 or f.dtype != np.uint8:
            shape = getattr(f, "shape", None)
            raise InputError(f"a clip must be a uint8 array of shape (V, T, H, W, 3), got {shape}")
        if not self.view_names:
            self.view_names = tuple(f"view{v}" for v in range(f.shape[0]))
        self.view_names = tuple(self.view_names)
        if self.cameras is not None and len(self.cameras) != f.shape[0]:
            raise InputError(f"{len(self.cameras)} cameras for {f.shape[0]} views")
        V, T, H, W, _ = f.shape
        self.info = ClipInfo(V, T, H, W, float(self.fps), self.view_names, self.cameras)

    @property
    def views(self) -> int:
        return self.info.views

    @property
    def num_frames(self) -> int:
        return self.info.frames

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def width(self) -> int:
        return self.info.width

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        check_range(self.info, view, start, stop)
        return self.frames[view, start:stop]


class FrameWindow:
    """Frames of a source read in aligned blocks of ``chunk`` frames of one view, the last ``blocks`` blocks kept:
    reading each frame once in display order, and a few times at most in a hierarchical coding order
    (0, 8, 4, 2, ..., 16, 12, ...) when ``chunk`` is at least the hierarchy's span."""

    def __init__(self, source: ClipSource, chunk: int = 16, blocks: int = 2) -> None:
        self.source, self.chunk, self.blocks = source, max(1, chunk), max(1, blocks)
        self._held: dict[tuple[int, int], np.ndarray] = {}

    def frame(self, view: int, index: int) -> np.ndarray:
        """Frame ``index`` of ``view``, (H, W, 3) uint8."""
        start = index - index % self.chunk
        key = (view, start)
        block = self._held.pop(key, None)
        if block is None:
            block = self.source.read_frames(view, start, min(start + self.chunk, self.source.info.frames))
        self._held[key] = block  # most recently used last
        while len(self._held) > self.blocks:
            del self._held[next(iter(self._held))]
        return block[index - start]


def check_range(info: ClipInfo, view: int, start: int, stop: int) -> None:
    """Raise :class:`InputError` unless ``view`` exists and ``0 <= start < stop <= frames``."""
    if not 0 <= view < info.views:
        raise InputError(f"view {view} does not exist (the clip has {info.views} views)")
    if not 0 <= start < stop <= info.frames:
        raise InputError(f"frames {start}:{stop} are outside the clip's 0:{info.frames}")


class SubsetSource:
    """A view subset and frame window of another source, without reading anything until asked.

    ``views`` are indices into the parent; frame ``i`` of the subset is frame ``first + i`` of the parent.
    """

    def __init__(self, parent: ClipSource, views: Sequence[int] | None = None,
                 first: int = 0, count: int | None = None) -> None:
        pinfo = parent.info
        self.parent = parent
        self.views = list(range(pinfo.views)) if views is None else list(views)
        for v in self.views:
            if not 0 <= v < pinfo.views:
                raise InputError(f"view {v} does not exist (the input has {pinfo.views} views)")
        if len(set(self.views)) != len(self.views) or not self.views:
            raise InputError(f"view list {self.views} is empty or repeats a view")
        if not 0 <= first < pinfo.frames:
            raise InputError(f"first frame {first} is outside the input's {pinfo.frames} frames")
        available = pinfo.frames - first
        count = available if count is None else count
        if count < 1:
            raise InputError(f"frame count must be at least 1, got {count}")
        self.first = first
        cams = None if pinfo.cameras is None else tuple(pinfo.cameras[v] for v in self.views)
        self.info = ClipInfo(len(self.views), min(count, available), pinfo.height, pinfo.width, pinfo.fps,
                             tuple(pinfo.view_names[v] for v in self.views), cams)

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        check_range(self.info, view, start, stop)
        return self.parent.read_frames(self.views[view], self.first + start, self.first + stop)


def load(source: ClipSource) -> MultiViewClip:
    """Read every frame of every view of ``source`` into memory."""
    info = source.info
    frames = np.stack([source.read_frames(v, 0, info.frames) for v in range(info.views)])
    return MultiViewClip(frames, fps=info.fps, view_names=info.view_names, cameras=info.cameras)


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as an exact fraction: exact small fractions first (25 -> 25/1, 12.5 -> 25/2), then the NTSC
    family (29.97 -> 30000/1001), else the closest fraction with denominator <= 1001."""
    simple = Fraction(fps).limit_denominator(16)
    if abs(float(simple) - fps) < 1e-9:
        return simple
    ntsc = round(fps * 1.001)
    if ntsc > 0 and abs(ntsc * 1000 / 1001 - fps) < 1e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """A decoded frame as uint8 RGB (H, W, 3); greyscale (H, W) or (H, W, 1) becomes R=G=B, RGBA drops alpha."""
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.ndim != 3:
        raise InputError(f"a frame must be 2-D or 3-D, got shape {frame.shape}")
    if frame.dtype == np.uint16:
        frame = (frame.astype(np.uint32) * 255 + 32767) // 65535
    frame = frame.astype(np.uint8, copy=False)
    channels = frame.shape[2]
    if channels == 1:
        return np.repeat(frame, 3, axis=2)
    if channels in (3, 4):
        return np.ascontiguousarray(frame[..., :3])
    if channels == 2:  # grey + alpha
        return np.repeat(frame[..., :1], 3, axis=2)
    raise InputError(f"a frame with {channels} channels is neither greyscale nor RGB")
