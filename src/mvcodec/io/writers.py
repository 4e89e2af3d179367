"""Writers: PNG folders, Y4M and lossless FFV1 MKV per view, all streaming and atomic.

Each writer takes frames one at a time (``write``), as uint8 RGB (H, W, 3) (greyscale (H, W) becomes
R = G = B), and ``close()`` puts the result in place; used as a context manager, an exception discards
everything.  Files are written under ``.NAME.partial`` and renamed on close, a PNG folder is built as
``.NAME.partial/`` and renamed, so an interrupted write never leaves a complete-looking output.

- :class:`Y4mWriter`: 4:2:0 ``C420`` with the project's BT.709 limited-range conversion and the tag
  ``XCOLORRANGE=LIMITED`` (Y4M has no tag for the matrix).  Lossy by exactly that conversion.
- :class:`MkvWriter`: FFV1 (intra only) in ``bgr0``: exactly lossless for RGB.
- :class:`PngFolderWriter`: ``v{view}_f{frame:03d}.png`` plus ``meta.json`` (readable by :func:`open_clip`).
- :func:`write_views`: one Y4M or MKV per view plus a ``manifest.json`` that :func:`open_clip` reads back.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Literal, Sequence

import av
import numpy as np
from PIL import Image

from mvcodec.atomic import AtomicFile, CloseOnSuccess, write_atomic
from mvcodec.errors import InputError
from mvcodec.io._files import DEFAULT_FPS, positive_fps
from mvcodec.io.clip import Camera, ClipSource, MultiViewClip, fps_fraction, to_rgb
from mvcodec.io.colour import pack_i420, rgb_to_yuv420

Frames = Iterable[np.ndarray] | np.ndarray
"""Frames of one view: an iterable of (H, W, 3) arrays or one (T, H, W, 3) array, uint8 RGB."""


def as_rgb_frame(frame: np.ndarray, where: str) -> np.ndarray:
    """``frame`` as uint8 RGB (H, W, 3); :class:`InputError` for another dtype or shape."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3)):
        raise InputError(f"{where}: a frame must be uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
    return to_rgb(frame)


class _StreamWriter(CloseOnSuccess):
    """One file written frame by frame: the first frame fixes the size; atomic on :meth:`close`."""

    def __init__(self, path: str | os.PathLike, fps: float = DEFAULT_FPS) -> None:
        self.file = AtomicFile(path)
        self.path = self.file.path
        self.fps = positive_fps(fps, str(self.path))
        self.size: tuple[int, int] | None = None  # (H, W)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one frame, uint8 RGB (H, W, 3)."""
        frame = as_rgb_frame(frame, str(self.path))
        if self.size is None:
            self.size = frame.shape[:2]
            self._start(*self.size)
        elif frame.shape[:2] != self.size:
            raise InputError(f"{self.path}: frame {self.count} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"the first was {self.size[1]}x{self.size[0]}")
        self._put(frame)
        self.count += 1

    def close(self) -> int:
        """Finish the file and rename it into place; returns the number of frames written."""
        if self.count == 0:
            self.abort()
            raise InputError(f"{self.path}: no frames to write")
        self._finish()
        self.file.commit()
        return self.count

    def abort(self) -> None:
        """Discard the partial file."""
        try:
            self._finish(complete=False)
        finally:
            self.file.abort()

    def _start(self, height: int, width: int) -> None:
        raise NotImplementedError

    def _put(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self, complete: bool = True) -> None:
        """Flush (when ``complete``) and close the temporary file, if it was opened."""
        raise NotImplementedError


class Y4mWriter(_StreamWriter):
    """Frames -> one ``.y4m``: 4:2:0 ``C420``, BT.709 limited range (:func:`~mvcodec.io.colour.rgb_to_yuv420`)."""

    _f = None

    def _start(self, height: int, width: int) -> None:
        rate = fps_fraction(self.fps)
        self._f = open(self.file.tmp, "wb")
        self._f.write(f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 C420 "
                      "XCOLORRANGE=LIMITED\n".encode("ascii"))

    def _put(self, frame: np.ndarray) -> None:
        self._f.write(b"FRAME\n" + pack_i420(*rgb_to_yuv420(frame)))

    def _finish(self, complete: bool = True) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class MkvWriter(_StreamWriter):
    """Frames -> one lossless ``.mkv``: FFV1 version 3, intra only, pixel format ``bgr0`` (exact RGB)."""

    _container = None

    def _start(self, height: int, width: int) -> None:
        rate = fps_fraction(self.fps)
        self._container = av.open(str(self.file.tmp), "w", format="matroska")
        self._stream = self._container.add_stream("ffv1", rate=rate, options={"level": "3", "g": "1",
                                                                             "slicecrc": "1"})
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "bgr0"
        self._stream.codec_context.time_base = 1 / rate

    def _put(self, frame: np.ndarray) -> None:
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0")
        vf.pts = self.count
        self._container.mux(self._stream.encode(vf))

    def _finish(self, complete: bool = True) -> None:
        if self._container is not None:
            container, self._container = self._container, None
            try:
                if complete:
                    container.mux(self._stream.encode(None))
            finally:
                container.close()


def _write_all(writer: _StreamWriter, frames: Frames) -> int:
    with writer:
        for frame in frames:
            writer.write(frame)
    return writer.count


def write_y4m(path: str | os.PathLike, frames: Frames, fps: float = DEFAULT_FPS) -> int:
    """Write one view's frames to a Y4M file (see :class:`Y4mWriter`); returns the frame count."""
    return _write_all(Y4mWriter(path, fps), frames)


def write_mkv(path: str | os.PathLike, frames: Frames, fps: float = DEFAULT_FPS) -> int:
    """Write one view's frames to a lossless FFV1 MKV (see :class:`MkvWriter`); returns the frame count."""
    return _write_all(MkvWriter(path, fps), frames)


class PngFolderWriter(CloseOnSuccess):
    """Frames of ``views`` views -> ``folder/v{view}_f{frame:03d}.png`` + ``meta.json``, built aside and renamed.

    ``folder`` must not exist or be empty, unless ``overwrite`` (then it is replaced as a whole on close).
    """

    def __init__(self, folder: str | os.PathLike, views: int, fps: float = DEFAULT_FPS,
                 view_names: Sequence[str] | None = None, cameras: Sequence[Camera] | None = None,
                 overwrite: bool = False, compress_level: int = 3, first_frame: int = 0,
                 view_ids: Sequence[int] | None = None) -> None:
        """``first_frame`` and ``view_ids`` only change the file names (a decoded window of frames 10:12 of
        view 1 is ``v1_f010.png, v1_f011.png``); ``write(view, ...)`` still takes indices 0..views-1."""
        self.folder = Path(folder)
        self.first_frame = first_frame
        self.view_ids = list(range(views)) if view_ids is None else list(view_ids)
        if self.folder.exists() and not overwrite and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise InputError(f"{self.folder}: exists and is not an empty folder (pass overwrite=True to replace it)")
        if not self.folder.parent.is_dir():
            raise InputError(f"{self.folder}: the folder {self.folder.parent} does not exist")
        if views < 1:
            raise InputError(f"{self.folder}: a clip needs at least one view, got {views}")
        self.views, self.overwrite, self.compress_level = views, overwrite, compress_level
        self.fps = positive_fps(fps, str(self.folder))
        self.view_names = [f"v{v}" for v in range(views)] if view_names is None else [str(n) for n in view_names]
        self.cameras = None if cameras is None else list(cameras)
        if len(self.view_names) != views or (self.cameras is not None and len(self.cameras) != views):
            raise InputError(f"{self.folder}: view names or cameras do not match the {views} views")
        self.counts = [0] * views
        self.skipped: list[dict] = []  # gaps: {"view", "frames": [first, stop), "reason"} in file numbers
        self.size: tuple[int, int] | None = None
        self.staging = self.folder.with_name(f".{self.folder.name}.partial")
        shutil.rmtree(self.staging, ignore_errors=True)  # left by an interrupted write
        self.staging.mkdir()

    def write(self, view: int, frame: np.ndarray) -> None:
        """Append the next frame of ``view``, uint8 RGB (H, W, 3)."""
        if not 0 <= view < self.views:
            raise InputError(f"{self.folder}: view {view} does not exist ({self.views} views)")
        frame = as_rgb_frame(frame, str(self.folder))
        if self.size is None:
            self.size = frame.shape[:2]
        elif frame.shape[:2] != self.size:
            raise InputError(f"{self.folder}: a {frame.shape[1]}x{frame.shape[0]} frame after "
                             f"{self.size[1]}x{self.size[0]} ones")
        name = self.staging / f"v{self.view_ids[view]}_f{self.first_frame + self.counts[view]:03d}.png"
        Image.fromarray(frame).save(name, format="PNG", compress_level=self.compress_level)
        self.counts[view] += 1

    def skip(self, view: int, count: int, reason: str) -> None:
        """Leave a gap of ``count`` frames in ``view`` (frames that could not be decoded); no PNG files are
        written for them and ``meta.json`` lists them under ``skipped`` with ``reason``."""
        if not 0 <= view < self.views:
            raise InputError(f"{self.folder}: view {view} does not exist ({self.views} views)")
        first = self.first_frame + self.counts[view]
        self.skipped.append({"view": self.view_ids[view], "frames": [first, first + count], "reason": reason})
        self.counts[view] += count

    def write_step(self, frames: np.ndarray) -> None:
        """Append one frame of every view: (V, H, W, 3)."""
        if len(frames) != self.views:
            raise InputError(f"{self.folder}: {len(frames)} frames for a time step of {self.views} views")
        for v, frame in enumerate(frames):
            self.write(v, frame)

    def close(self) -> Path:
        """Write ``meta.json`` and rename the folder into place; returns the folder."""
        if len(set(self.counts)) != 1 or self.counts[0] == 0 or self.size is None:
            self.abort()
            raise InputError(f"{self.folder}: views got different or zero frame counts {self.counts}"
                             + (" (every frame was skipped)" if self.size is None and self.counts[0] else ""))
        H, W = self.size
        meta = {"views": self.views, "frames": self.counts[0], "width": W, "height": H, "fps": self.fps,
                "view_names": self.view_names}
        if self.skipped:  # a folder with gaps: these files are absent on purpose
            meta["skipped"] = self.skipped
        if self.first_frame or self.view_ids != list(range(self.views)):
            meta.update(first_frame=self.first_frame, view_ids=self.view_ids)
        if self.cameras is not None:
            meta["cameras"] = [c.to_json() for c in self.cameras]
        old = self.folder.with_name(f".{self.folder.name}.old")
        try:
            write_atomic(self.staging / "meta.json", json.dumps(meta, indent=1).encode())
            if self.folder.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.folder, old)
            os.replace(self.staging, self.folder)
        except BaseException:
            if old.exists() and not self.folder.exists():
                os.replace(old, self.folder)  # put the previous folder back
            self.abort()
            raise
        shutil.rmtree(old, ignore_errors=True)
        return self.folder

    def abort(self) -> None:
        """Discard everything written."""
        shutil.rmtree(self.staging, ignore_errors=True)


def _as_source(clip: ClipSource | np.ndarray, fps: float | None) -> ClipSource:
    return MultiViewClip(clip, fps=fps or DEFAULT_FPS) if isinstance(clip, np.ndarray) else clip


def _view_frames(source: ClipSource, view: int, chunk: int) -> Iterable[np.ndarray]:
    for start in range(0, source.info.frames, chunk):
        yield from source.read_frames(view, start, min(start + chunk, source.info.frames))


def write_png_folder(clip: ClipSource | np.ndarray | Iterable[np.ndarray], folder: str | os.PathLike,
                     fps: float | None = None, view_names: Sequence[str] | None = None,
                     cameras: Sequence[Camera] | None = None, overwrite: bool = False, chunk: int = 16) -> Path:
    """Write a clip as a PNG folder; returns the folder.

    ``clip``: a :class:`~mvcodec.io.clip.ClipSource` (read ``chunk`` frames at a time; its fps, names and
    cameras are used unless given), a (V, T, H, W, 3) array, or an iterable of time steps (V, H, W, 3).
    """
    if isinstance(clip, (np.ndarray, ClipSource)):
        source = _as_source(clip, fps)
        info = source.info
        with PngFolderWriter(folder, info.views, fps or info.fps, view_names or info.view_names,
                             cameras if cameras is not None else info.cameras, overwrite) as w:
            for v in range(info.views):
                for frame in _view_frames(source, v, chunk):
                    w.write(v, frame)
        return w.folder
    steps = iter(clip)
    first = next(steps, None)
    if first is None:
        raise InputError(f"{folder}: no frames to write")
    with PngFolderWriter(folder, len(first), fps or DEFAULT_FPS, view_names, cameras, overwrite) as w:
        w.write_step(first)
        for step in steps:
            w.write_step(step)
    return w.folder


def write_views(clip: ClipSource | np.ndarray, folder: str | os.PathLike, fmt: Literal["mkv", "y4m"] = "mkv",
                fps: float | None = None, chunk: int = 16) -> Path:
    """Write each view to ``folder/v{view}.{fmt}`` and a ``manifest.json`` naming them; returns the manifest.

    ``folder`` is created if missing; the manifest is written last, so it exists only when every view does.
    """
    if fmt not in ("mkv", "y4m"):
        raise InputError(f"per-view format must be 'mkv' or 'y4m', got {fmt!r}")
    source = _as_source(clip, fps)
    info = source.info
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    writer = MkvWriter if fmt == "mkv" else Y4mWriter
    entries = []
    for v in range(info.views):
        name = f"v{v}.{fmt}"
        _write_all(writer(out / name, fps or info.fps), _view_frames(source, v, chunk))
        entries.append({"name": info.view_names[v], "path": name})
    manifest: dict = {"fps": fps or info.fps, "views": entries}
    if info.cameras is not None:
        manifest["cameras"] = [c.to_json() for c in info.cameras]
    path = out / "manifest.json"
    write_atomic(path, json.dumps(manifest, indent=1).encode())
    return path
