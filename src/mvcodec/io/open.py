"""The entry points: :func:`open_clip` picks the reader for a path, :func:`read_clip` loads (part of) it.

=====================================  =========================================================
``path`` is                            reader
=====================================  =========================================================
a folder                               PNG frames ``v{view}_f{frame}.png`` (+ ``meta.json``)
``*.json`` / ``*.yaml`` / ``*.yml``    a manifest naming one file per view
``*.yuv`` (needs width, height)        raw yuv420p, one view
``*.y4m``                              YUV4MPEG2, one view
any other file                         a video through PyAV, one view
=====================================  =========================================================

With ``layout="sbs"`` or ``"tb"`` a single file holds packed stereo frames and becomes two views.
"""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Sequence

from mvcodec.errors import InputError
from mvcodec.io._files import close_source, positive_fps
from mvcodec.io.clip import ClipSource, MultiViewClip, SubsetSource, load
from mvcodec.io.manifest import MANIFEST_SUFFIXES, open_manifest
from mvcodec.io.png_folder import PngFolderSource
from mvcodec.io.single import open_single
from mvcodec.io.stereo import Layout, StereoSource


def open_clip(path: str | os.PathLike, layout: Layout | None = None, width: int | None = None,
              height: int | None = None, fps: float | None = None) -> ClipSource:
    """A lazy source for ``path`` (see the module table); nothing is decoded yet.

    ``width``/``height`` are needed for raw ``.yuv`` (elsewhere they must match the file); ``fps`` overrides
    the input's frame rate.  Sources holding files open have a ``close()`` method.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    fps = positive_fps(fps, str(p))
    is_multi = p.is_dir() or p.suffix.lower() in MANIFEST_SUFFIXES
    if is_multi and (layout is not None or width is not None or height is not None):
        raise InputError(f"{p}: layout, width and height apply to a single video file, not a folder or manifest")
    if p.is_dir():
        return PngFolderSource(p, fps)
    if p.suffix.lower() in MANIFEST_SUFFIXES:
        return open_manifest(p, fps)
    source = open_single(p, width, height, fps)
    if layout is None:
        return source
    try:
        return StereoSource(source, layout)
    except InputError:
        close_source(source)
        raise


def frame_window(frames: range | tuple[int, int | None] | None, total: int) -> tuple[int, int | None]:
    """``frames`` (None, a step-1 range, or (start, stop) with stop None for the end) as (first, count)."""
    if frames is None:
        return 0, None
    if isinstance(frames, range):
        if frames.step != 1:
            raise InputError(f"frame range {frames} must have step 1")
        start, stop = frames.start, frames.stop
    else:
        try:
            start, stop = frames
        except (TypeError, ValueError):
            raise InputError(f"frames must be a range or (start, stop), got {frames!r}") from None
    try:
        start, stop = operator.index(start), total if stop is None else operator.index(stop)
    except TypeError:
        raise InputError(f"frames {frames!r} must be integers") from None
    if not 0 <= start < stop:
        raise InputError(f"frames {start}:{stop} are not a valid non-empty range")
    return start, stop - start


def read_clip(path: str | os.PathLike, views: Sequence[int] | None = None,
              frames: range | tuple[int, int | None] | None = None, **kw) -> MultiViewClip:
    """Read ``views`` (indices, default all) x ``frames`` of ``path`` into memory, (V, T, H, W, 3) uint8.

    Only the requested views and frames are decoded.  A window running past the end is cut at the end
    (as :class:`~mvcodec.io.clip.SubsetSource` does).  ``kw`` goes to :func:`open_clip`.
    """
    source = open_clip(path, **kw)
    try:
        first, count = frame_window(frames, source.info.frames)
        return load(SubsetSource(source, views, first, count))
    finally:
        close_source(source)
