"""Reader of a folder of PNG frames ``v{view}_f{frame}.png`` with an optional ``meta.json``.

Layout::

    clip/
      meta.json          optional: {"fps", "view_names": [...], "cameras": [{"K","R","t"}...], ...}
      v0_f000.png        view 0, frame 0 (any number of digits: f1000 after f999)
      v0_f001.png
      ...
      v1_f000.png

Opening the folder lists it and reads the 24-byte header of every PNG (no pixel is decoded) to check that
views are numbered 0..V-1, every view has the same contiguous run of frame numbers, and all frames have
one size.  ``read_frames`` decodes only the files asked for.  Greyscale PNGs become R = G = B.
Fields of ``meta.json`` other than fps, view names and cameras are ignored; ``views``, ``frames``,
``width`` and ``height`` there, if present, must agree with the files.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from mvcodec.errors import InputError
from mvcodec.io._files import DEFAULT_FPS, parse_cameras, positive_fps
from mvcodec.io.clip import ClipInfo, check_range, to_rgb

FRAME_NAME = re.compile(r"v(\d+)_f(\d+)\.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG from its IHDR chunk, reading 24 bytes; :class:`InputError` if not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise InputError(f"{path}: is not a PNG file")
    return struct.unpack(">II", head[16:24])


def decode_png(path: Path) -> np.ndarray:
    """Decode one PNG to uint8 RGB (H, W, 3); greyscale becomes R = G = B, alpha is dropped."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "I;16B"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: cannot decode PNG ({exc})") from None
    return to_rgb(arr)


class PngFolderSource:
    """A :class:`~mvcodec.io.clip.ClipSource` over ``v{view}_f{frame}.png`` files, decoded on demand."""

    def __init__(self, folder: str | os.PathLike, fps: float | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: no such folder")
        self.files = self._list_files()  # files[view][frame]
        width, height = self._common_size()
        meta = self._read_meta()
        V, T = len(self.files), len(self.files[0])
        self._check_meta(meta, V, T, width, height)
        names = meta.get("view_names") or [f"v{v}" for v in range(V)]
        if not isinstance(names, list) or len(names) != V:
            raise InputError(f"{self.folder / 'meta.json'}: view_names must list {V} names")
        cameras = parse_cameras(meta.get("cameras"), V, str(self.folder / "meta.json"))
        rate = fps or positive_fps(meta.get("fps"), str(self.folder / "meta.json")) or DEFAULT_FPS
        self.info = ClipInfo(V, T, height, width, rate, tuple(str(n) for n in names), cameras)

    def _list_files(self) -> list[list[Path]]:
        found: dict[int, dict[int, Path]] = {}
        for entry in os.scandir(self.folder):
            m = FRAME_NAME.fullmatch(entry.name)
            if m is None:
                continue
            view, frame = int(m.group(1)), int(m.group(2))
            frames = found.setdefault(view, {})
            if frame in frames:
                raise InputError(f"{self.folder}: two files for view {view} frame {frame}: "
                                 f"{frames[frame].name} and {entry.name}")
            frames[frame] = Path(entry.path)
        if not found:
            raise InputError(f"{self.folder}: no frames named v{{view}}_f{{frame}}.png")
        views = sorted(found)
        if views != list(range(len(views))):
            raise InputError(f"{self.folder}: views must be numbered 0..{len(views) - 1}, found {views}")
        numbers = [sorted(found[v]) for v in views]
        first, count = numbers[0][0], len(numbers[0])
        for v, nums in zip(views, numbers):
            if nums != list(range(nums[0], nums[0] + len(nums))):
                gap = next(a + 1 for a, b in zip(nums, nums[1:]) if b != a + 1)
                raise InputError(f"{self.folder}: frames of view {v} are not contiguous (frame {gap} is missing)")
            if (nums[0], len(nums)) != (first, count):
                raise InputError(f"{self.folder}: view {v} has frames {nums[0]}..{nums[-1]} but view 0 has "
                                 f"{first}..{first + count - 1} (views must have the same frame count)")
        return [[found[v][f] for f in nums] for v, nums in zip(views, numbers)]

    def _common_size(self) -> tuple[int, int]:
        size = png_size(self.files[0][0])
        for view_files in self.files:
            for path in view_files:
                other = png_size(path)
                if other != size:
                    raise InputError(f"{path}: frame is {other[0]}x{other[1]} but {self.files[0][0].name} is "
                                     f"{size[0]}x{size[1]} (all frames must have one size)")
        return size

    def _read_meta(self) -> dict:
        path = self.folder / "meta.json"
        if not path.exists():
            return {}
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not readable JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{path}: must hold a JSON object")
        return meta

    def _check_meta(self, meta: dict, V: int, T: int, width: int, height: int) -> None:
        for key, actual in (("views", V), ("frames", T), ("width", width), ("height", height)):
            if key in meta and meta[key] != actual:
                raise InputError(f"{self.folder / 'meta.json'}: says {key} = {meta[key]} but the PNG files "
                                 f"give {actual}")

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of ``view``, uint8 RGB (stop - start, H, W, 3); decodes only those files."""
        check_range(self.info, view, start, stop)
        info = self.info
        out = np.empty((stop - start, info.height, info.width, 3), np.uint8)
        for i, path in enumerate(self.files[view][start:stop]):
            out[i] = decode_png(path)
        return out
