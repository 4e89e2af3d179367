"""Readers of the standard training-set layouts, each giving a list of lazy clips (:class:`~mvcodec.io.ClipSource`).

::

    kind        root holds                                                         views  split
    ----------  -----------------------------------------------------------------  -----  ---------------------------
    vimeo90k    sequences/XXXXX/YYYY/im1..im7.png, sep_trainlist.txt, sep_testlist    1  train/val -> the two lists
    kitti       [training|testing/]image_2|image_3/NNNNNN_KK.png (2012: colored_0/1)  2  train -> training, val ->
                                                                                           testing (if present)
    cityscapes  leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit  2  train -> train, val -> val
                .png and rightImg8bit_sequence/... (left only: 1 view)
    yuv         one multi-view sequence per folder (root or its sub-folders), one      V  none (see datasets)
                yuv420p file per view, views in natural name order; the size comes
                from the caller or a WxH in the file names (Nagoya/MPEG style)
    png         a PNG folder v{view}_f{frame:03d}.png, or a folder of them             V  none

A clip is one run of consecutive frames of every view: a Vimeo-90K septuplet, a KITTI scene's contiguous frames, a
Cityscapes snippet.  Nothing is decoded when listing: PNG sizes are read from one header per clip on first use, and
frames are decoded on ``read_frames`` (:func:`mvcodec.io.png_folder.decode_png`).  A missing or malformed layout is
an :class:`~mvcodec.errors.InputError` with one line.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io import ClipInfo, ClipSource, PngFolderSource, RawYuvSource, StackedSource
from mvcodec.io.clip import check_range
from mvcodec.io.png_folder import FRAME_NAME, decode_png, png_size

Split = Literal["train", "val"]


class FrameFilesSource:
    """A clip whose frames are image files, ``files[view][frame]``; all frames must share one size.

    The size is read from the first file's header on first use of ``info``; ``read_frames`` decodes only the files
    asked for and checks their size.
    """

    def __init__(self, files: Sequence[Sequence[Path]], name: str, view_names: Sequence[str],
                 fps: float = 30.0) -> None:
        if not files or not files[0] or any(len(f) != len(files[0]) for f in files):
            raise InputError(f"{name}: every view needs the same non-zero number of frames")
        self.files = [list(f) for f in files]
        self.name, self.view_names, self.fps = name, tuple(view_names), fps

    @cached_property
    def info(self) -> ClipInfo:
        width, height = png_size(self.files[0][0])
        return ClipInfo(len(self.files), len(self.files[0]), height, width, self.fps, self.view_names)

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of ``view``, uint8 RGB (stop - start, H, W, 3)."""
        check_range(self.info, view, start, stop)
        out = np.empty((stop - start, self.info.height, self.info.width, 3), np.uint8)
        for i, path in enumerate(self.files[view][start:stop]):
            frame = decode_png(path)
            if frame.shape != out.shape[1:]:
                raise InputError(f"{path}: is {frame.shape[1]}x{frame.shape[0]} but the clip {self.name} is "
                                 f"{self.info.width}x{self.info.height}")
            out[i] = frame
        return out


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise InputError(f"{path}: no such folder ({what})")
    return path


def _runs(numbers: Sequence[int]) -> list[list[int]]:
    """Sorted integers split into runs of consecutive values: [1, 2, 3, 7, 8] -> [[1, 2, 3], [7, 8]]."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def vimeo90k(root: str | os.PathLike, split: Split) -> list[ClipSource]:
    """Vimeo-90K septuplets listed in ``sep_trainlist.txt`` (train) or ``sep_testlist.txt`` (val); 1 view each."""
    root = _folder(Path(root), "Vimeo-90K root")
    listing = root / ("sep_trainlist.txt" if split == "train" else "sep_testlist.txt")
    if not listing.is_file():
        raise InputError(f"{listing}: missing (a Vimeo-90K septuplet root has sep_trainlist.txt and sep_testlist.txt)")
    names = [line.strip() for line in listing.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise InputError(f"{listing}: lists no sequence")
    clips: list[ClipSource] = []
    for name in names:
        folder = root / "sequences" / name
        files = [folder / f"im{i}.png" for i in range(1, 8)]
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", name) or not all(f.is_file() for f in files):
            raise InputError(f"{listing}: sequence {name!r} has no im1..im7.png under {root / 'sequences'}")
        clips.append(FrameFilesSource([files], name, ("v0",)))
    return clips


KITTI_VIEWS = (("image_2", "image_3"), ("colored_0", "colored_1"))
KITTI_NAME = re.compile(r"(\d{6})_(\d{2})\.png")


def kitti(root: str | os.PathLike, split: Split) -> list[ClipSource]:
    """KITTI 2012/2015 multi-view scenes, 2 views (left ``image_2``/``colored_0``, right ``image_3``/``colored_1``).

    ``root`` holds ``training``/``testing`` (train reads training, val reads testing) or the view folders directly
    (both splits read them).  Every scene's contiguous run of frames ``NNNNNN_KK.png`` is one clip (KITTI's
    multi-view extension has frames 00..20; the flow pairs 10, 11).
    """
    root = _folder(Path(root), "KITTI root")
    sub = root / ("training" if split == "train" else "testing")
    base = sub if sub.is_dir() else root
    pair = next((p for p in KITTI_VIEWS if (base / p[0]).is_dir()), None)
    if pair is None:
        raise InputError(f"{base}: no image_2/image_3 (or colored_0/colored_1) folders of a KITTI layout")
    if not (base / pair[1]).is_dir():
        raise InputError(f"{base / pair[1]}: missing (the right view of the KITTI layout)")
    scenes: dict[str, list[int]] = defaultdict(list)
    for entry in os.scandir(base / pair[0]):
        m = KITTI_NAME.fullmatch(entry.name)
        if m:
            scenes[m.group(1)].append(int(m.group(2)))
    if not scenes:
        raise InputError(f"{base / pair[0]}: no frames named NNNNNN_KK.png")
    clips: list[ClipSource] = []
    for scene in sorted(scenes):
        for run in _runs(scenes[scene]):
            files = [[base / view / f"{scene}_{k:02d}.png" for k in run] for view in pair]
            missing = next((f for f in files[1] if not f.is_file()), None)
            if missing is not None:
                raise InputError(f"{missing}: missing (the right view of {files[0][0].name})")
            clips.append(FrameFilesSource(files, f"{scene}_{run[0]:02d}", pair, fps=10.0))
    return clips


CITYSCAPES_NAME = re.compile(r"(.+)_(\d+)_(\d+)_leftImg8bit\.png")


def cityscapes(root: str | os.PathLike, split: Split) -> list[ClipSource]:
    """Cityscapes sequence snippets: ``leftImg8bit_sequence/<split>/<city>/`` (+ the right view if present).

    Each (city, sequence) run of consecutive frame numbers is a clip of 2 views, or of 1 view when the root has no
    ``rightImg8bit_sequence`` folder.  A right folder that lacks a left frame's counterpart is an error.
    """
    root = Path(root)
    left = _folder(root / "leftImg8bit_sequence" / split, "Cityscapes leftImg8bit_sequence/<split>")
    right = root / "rightImg8bit_sequence" / split
    stereo = (root / "rightImg8bit_sequence").is_dir()
    snippets: dict[tuple[str, str], list[int]] = defaultdict(list)
    width: dict[tuple[str, str], int] = {}
    for city in sorted(p for p in left.iterdir() if p.is_dir()):
        for entry in os.scandir(city):
            m = CITYSCAPES_NAME.fullmatch(entry.name)
            if m and m.group(1) == city.name:
                snippets[(city.name, m.group(2))].append(int(m.group(3)))
                width[(city.name, m.group(2))] = len(m.group(3))
    if not snippets:
        raise InputError(f"{left}: no <city>/<city>_<seq>_<frame>_leftImg8bit.png frames")
    clips: list[ClipSource] = []
    for (city, seq), numbers in sorted(snippets.items()):
        digits = width[(city, seq)]
        for run in _runs(numbers):
            stems = [f"{city}_{seq}_{k:0{digits}d}" for k in run]
            files = [[left / city / f"{s}_leftImg8bit.png" for s in stems]]
            if stereo:
                files.append([right / city / f"{s}_rightImg8bit.png" for s in stems])
                missing = next((f for f in files[1] if not f.is_file()), None)
                if missing is not None:
                    raise InputError(f"{missing}: missing (the right view of {files[0][0].name})")
            clips.append(FrameFilesSource(files, stems[0], ("left", "right")[:len(files)], fps=17.0))
    return clips


SIZE_IN_NAME = re.compile(r"(\d+)x(\d+)")


def _natural_key(path: Path) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name)]


def yuv(root: str | os.PathLike, width: int | None = None, height: int | None = None,
        fps: float = 30.0) -> list[ClipSource]:
    """Raw yuv420p multi-view sequences: every folder (``root`` or its sub-folders) with ``.yuv`` files is one
    sequence, one file per view in natural name order (``Kendo_1.yuv`` before ``Kendo_3.yuv``).  Width and height
    come from the arguments or from a ``WxH`` in the file name; views are cut to the shortest one's frame count.
    """
    root = _folder(Path(root), "raw YUV root")
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    clips: list[ClipSource] = []
    for folder in folders:
        files = sorted((p for p in folder.glob("*.yuv") if p.is_file()), key=_natural_key)
        if not files:
            continue
        sources = []
        for f in files:
            w, h = width, height
            m = SIZE_IN_NAME.search(f.name)
            if (w is None or h is None) and m is None:
                raise InputError(f"{f}: the frame size is neither given nor in the file name (as WxH)")
            w, h = (w or int(m.group(1))), (h or int(m.group(2)))
            sources.append(RawYuvSource(f, w, h, fps, name=f.stem))
        first = sources[0].info
        for f, s in zip(files, sources):
            if (s.info.width, s.info.height) != (first.width, first.height):
                raise InputError(f"{f}: is {s.info.width}x{s.info.height} but {files[0].name} is "
                                 f"{first.width}x{first.height} (views of one sequence share a size)")
        frames = min(s.info.frames for s in sources)
        info = ClipInfo(len(sources), frames, first.height, first.width, fps, tuple(f.stem for f in files))
        clips.append(StackedSource(sources, info))
    if not clips:
        raise InputError(f"{root}: no .yuv files in it or its sub-folders")
    return clips


def png(root: str | os.PathLike) -> list[ClipSource]:
    """The project's PNG-folder layout: ``root`` is one ``v{view}_f{frame:03d}.png`` folder, or holds several."""
    root = _folder(Path(root), "PNG-folder root")
    if any(FRAME_NAME.fullmatch(e.name) for e in os.scandir(root)):
        return [PngFolderSource(root)]
    clips: list[ClipSource] = [PngFolderSource(p) for p in sorted(root.iterdir())
                               if p.is_dir() and any(FRAME_NAME.fullmatch(e.name) for e in os.scandir(p))]
    if not clips:
        raise InputError(f"{root}: no v{{view}}_f{{frame}}.png frames in it or its sub-folders")
    return clips


LAYOUTS: dict[str, Callable[..., list[ClipSource]]] = {
    "vimeo90k": vimeo90k, "kitti": kitti, "cityscapes": cityscapes, "yuv": yuv, "png": png}
"""Layout readers by the ``kind`` of a data config (``synthetic`` is generated, not read)."""


def open_layout(kind: str, root: str | os.PathLike, split: Split, **options) -> list[ClipSource]:
    """The clips of a ``kind`` layout under ``root`` for ``split``; ``options`` (width, height, fps) go to ``yuv``."""
    if kind not in LAYOUTS:
        raise InputError(f"unknown data layout {kind!r}; known: {', '.join(LAYOUTS)}")
    if root is None or not str(root):
        raise InputError(f"the {kind} layout needs a root folder")
    if options and kind != "yuv":
        raise InputError(f"options {', '.join(sorted(options))} apply to the yuv layout only, not {kind}")
    if kind in ("yuv", "png"):
        return LAYOUTS[kind](root, **options)
    return LAYOUTS[kind](root, split)
