"""Opening one file that holds one view: raw ``.yuv``, ``.y4m``, or any video PyAV can demux."""

from __future__ import annotations

import os

from mvcodec.errors import InputError
from mvcodec.io._files import close_source, existing_file
from mvcodec.io.clip import ClipSource
from mvcodec.io.rawyuv import RawYuvSource
from mvcodec.io.video import VideoSource
from mvcodec.io.y4m import open_y4m

RAW_SUFFIXES = (".yuv", ".i420")


def open_single(path: str | os.PathLike, width: int | None = None, height: int | None = None,
                fps: float | None = None, pix_fmt: str = "yuv420p", name: str | None = None) -> ClipSource:
    """A 1-view source for ``path``, chosen by its suffix: .yuv -> raw (needs width/height), .y4m -> Y4M,
    anything else -> PyAV.  For other than raw files, a given width/height must match the file's."""
    p = existing_file(path)
    if p.suffix.lower() in RAW_SUFFIXES:
        return RawYuvSource(p, width, height, fps, pix_fmt, name)
    source = open_y4m(p, fps, name) if p.suffix.lower() == ".y4m" else VideoSource(p, fps, name)
    info = source.info
    if (width is not None and width != info.width) or (height is not None and height != info.height):
        close_source(source)
        raise InputError(f"{p}: is {info.width}x{info.height}, not the "
                         f"{width or info.width}x{height or info.height} given")
    return source
