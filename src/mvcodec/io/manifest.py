"""Reader of a manifest (JSON or YAML) naming one file per view, and the source that stacks those views.

Example (paths are relative to the manifest; keys other than these are ignored)::

    fps: 30                      # optional: else the first view's own rate (raw YUV: 30)
    truncate: false              # optional: true cuts every view to the shortest instead of an error
    cameras: [{K: [[...]], R: [[...]], t: [...]}, ...]   # optional, one per view
    views:
      - {name: left, path: left.mp4}
      - {name: right, path: right.yuv, width: 640, height: 360, format: yuv420p}
      - {name: third, path: c.mp4, crop: [0, 4, 1080, 1920]}   # optional [left, top, width, height]

Every view must have the same frame size (after its crop); views with different frame counts are an error unless
``truncate`` is true.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from mvcodec.errors import InputError
from mvcodec.io._files import close_source, existing_file, parse_cameras, positive_fps
from mvcodec.io.clip import ClipInfo, ClipSource, check_range
from mvcodec.io.single import open_single

MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")


class StackedSource:
    """Several 1-view sources of one size side by side as the views of one clip (first ``frames`` of each)."""

    def __init__(self, sources: Sequence[ClipSource], info: ClipInfo) -> None:
        self.sources = list(sources)
        self.info = info

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of ``view``, uint8 RGB (stop - start, H, W, 3)."""
        check_range(self.info, view, start, stop)
        return self.sources[view].read_frames(0, start, stop)

    def close(self) -> None:
        for s in self.sources:
            close_source(s)


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest's contents as a dict with a non-empty ``views`` list; :class:`InputError` otherwise."""
    p = existing_file(path, "manifest")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "YAML"
        detail = str(exc).replace("\n", " ")
        raise InputError(f"{p}: not valid {kind} ({detail})") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: a manifest must be a mapping with a 'views' list")
    views = data.get("views")
    if not isinstance(views, list) or not views:
        raise InputError(f"{p}: a manifest needs a non-empty 'views' list")
    for i, v in enumerate(views):
        if not isinstance(v, dict) or not isinstance(v.get("path"), str) or not v["path"]:
            raise InputError(f"{p}: view {i} needs a 'path' (a file name relative to the manifest)")
    return data


def _size(view: dict, key: str, where: str) -> int | None:
    value = view.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InputError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def _crop(value: object, info: ClipInfo, where: str) -> tuple[int, int, int, int]:
    """A view's ``crop: [left, top, width, height]``, checked against the view's size."""
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in value)):
        raise InputError(f"{where}: 'crop' must be [left, top, width, height] in pixels, got {value!r}")
    x, y, w, h = value
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > info.width or y + h > info.height:
        raise InputError(f"{where}: crop {value} does not fit the {info.width}x{info.height} picture")
    return x, y, w, h


class CropSource:
    """A rectangle ``(left, top, width, height)`` of every frame of another source."""

    def __init__(self, parent: ClipSource, rect: tuple[int, int, int, int]) -> None:
        self.parent, self.rect = parent, rect
        pi = parent.info
        self.info = ClipInfo(pi.views, pi.frames, rect[3], rect[2], pi.fps, pi.view_names, pi.cameras)

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        x, y, w, h = self.rect
        return np.ascontiguousarray(self.parent.read_frames(view, start, stop)[:, y:y + h, x:x + w])

    def close(self) -> None:
        close_source(self.parent)

    @classmethod
    def centre(cls, parent: ClipSource, size: str) -> CropSource:
        """The centre ``"WxH"`` rectangle of every frame (e.g. "640x360"); larger than the clip: InputError."""
        try:
            w, h = (int(x) for x in size.lower().split("x"))
        except ValueError:
            raise InputError(f"crop {size!r}: expected WxH, e.g. 640x360") from None
        info = parent.info
        if not (0 < w <= info.width and 0 < h <= info.height):
            raise InputError(f"crop {size} does not fit in the {info.width}x{info.height} clip")
        return cls(parent, ((info.width - w) // 2, (info.height - h) // 2, w, h))


def open_manifest(path: str | os.PathLike, fps: float | None = None) -> StackedSource:
    """The clip a manifest describes; every view file is opened (headers only) and checked against the first."""
    p = Path(path)
    data = read_manifest(p)
    rate = fps or positive_fps(data.get("fps"), str(p))
    sources: list[ClipSource] = []
    try:
        for i, v in enumerate(data["views"]):
            where = f"{p}: view {i}"
            source = open_single(p.parent / v["path"], _size(v, "width", where), _size(v, "height", where),
                                 rate, str(v.get("format", "yuv420p")), v.get("name"))
            sources.append(source)
            if "crop" in v:
                sources[-1] = CropSource(source, _crop(v["crop"], source.info, where))
        return StackedSource(sources, _stacked_info(p, data, sources, rate))
    except BaseException:
        for s in sources:
            close_source(s)
        raise


def _stacked_info(p: Path, data: dict, sources: list[ClipSource], rate: float | None) -> ClipInfo:
    first = sources[0].info
    names = [str(v.get("name") or s.info.view_names[0]) for v, s in zip(data["views"], sources)]
    for v, s in zip(data["views"], sources):
        if (s.info.width, s.info.height) != (first.width, first.height):
            raise InputError(f"{p}: view {v['path']} is {s.info.width}x{s.info.height} but "
                             f"{data['views'][0]['path']} is {first.width}x{first.height}")
    counts = [s.info.frames for s in sources]
    truncate = data.get("truncate", False)
    if not isinstance(truncate, bool):
        raise InputError(f"{p}: 'truncate' must be true or false, got {truncate!r}")
    if len(set(counts)) > 1 and not truncate:
        listing = ", ".join(f"{v['path']}: {n}" for v, n in zip(data["views"], counts))
        raise InputError(f"{p}: views have different frame counts ({listing}); set 'truncate: true' to cut "
                         "them to the shortest")
    cameras = data.get("cameras")
    if cameras is None and any("camera" in v for v in data["views"]):
        cameras = [v.get("camera") for v in data["views"]]
    return ClipInfo(len(sources), min(counts), first.height, first.width, rate or first.fps, tuple(names),
                    parse_cameras(cameras, len(sources), str(p)))
