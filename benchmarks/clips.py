"""The clip window the benchmark scripts code: the first frames of some views of a clip, optionally its centre
crop (the conditions the BENCHMARKS.md tables name: "centre 320x192 of the first 32 frames")."""

from __future__ import annotations

from mvcodec.io import open_clip
from mvcodec.io.clip import ClipSource, SubsetSource
from mvcodec.io.manifest import CropSource


def clip_window(path: str, frames: int, crop: str | None = None, views: list[int] | None = None) -> ClipSource:
    """Frames ``0 .. frames-1`` (at most the clip's) of ``views`` (default: all, in camera order) of the clip at
    ``path``, cropped to the centre ``crop`` ("WxH") when given."""
    clip = open_clip(path)
    source = SubsetSource(clip, views or list(range(clip.info.views)), 0, min(frames, clip.info.frames))
    return CropSource.centre(source, crop) if crop else source
