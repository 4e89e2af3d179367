"""Clips in and out: the clip type, the readers behind :func:`open_clip`, the writers, colour conversion.

Readers return a lazy :class:`ClipSource` (frames decoded on demand, a view subset or frame range read
without the rest); :func:`read_clip` loads a window into a :class:`MultiViewClip` (V, T, H, W, 3) uint8 RGB.
"""

from mvcodec.io.clip import Camera, ClipInfo, ClipSource, MultiViewClip, SubsetSource, load, to_rgb
from mvcodec.io.manifest import StackedSource, open_manifest
from mvcodec.io.open import open_clip, read_clip
from mvcodec.io.png_folder import PngFolderSource
from mvcodec.io.rawyuv import RawYuvSource
from mvcodec.io.stereo import StereoSource
from mvcodec.io.video import VideoSource
from mvcodec.io.writers import (
    MkvWriter,
    PngFolderWriter,
    Y4mWriter,
    write_mkv,
    write_png_folder,
    write_views,
    write_y4m,
)
from mvcodec.io.y4m import Y4mSource, open_y4m

__all__ = [
    "Camera", "ClipInfo", "ClipSource", "MultiViewClip", "SubsetSource", "load", "to_rgb",
    "open_clip", "read_clip", "open_manifest",
    "PngFolderSource", "RawYuvSource", "StereoSource", "VideoSource", "Y4mSource", "StackedSource", "open_y4m",
    "MkvWriter", "PngFolderWriter", "Y4mWriter", "write_mkv", "write_png_folder", "write_views", "write_y4m",
]
