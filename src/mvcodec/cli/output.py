"""Where ``mvcodec decode`` puts decoded frames: a PNG folder or one Y4M per view, written atomically.

PNG: ``OUTDIR/v{view}_f{frame:03d}.png`` with the file's own view and frame numbers, built in a staging folder and
renamed into place when complete (:class:`mvcodec.io.PngFolderWriter`); frames skipped because of a damaged packet
(``decode --skip-damaged``) have no file and are listed under ``skipped`` in ``meta.json``. Y4M:
``OUTDIR/v{view}.y4m``, each file written under a temporary name and renamed when its last frame is in
(:class:`mvcodec.io.Y4mWriter`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io import PngFolderWriter, Y4mWriter


class DecodedOutput:
    """Receives decoded frames of ``view_ids`` (file view numbers), starting at ``first_frame``."""

    def __init__(self, folder: str | os.PathLike, fmt: str, fps: float, view_ids: Sequence[int],
                 view_names: Sequence[str], first_frame: int) -> None:
        self.folder = Path(folder)
        self.slot = {v: i for i, v in enumerate(view_ids)}
        if fmt == "png":
            self.png: PngFolderWriter | None = PngFolderWriter(
                self.folder, len(view_ids), fps, view_names, first_frame=first_frame, view_ids=view_ids)
            self.y4m: dict[int, Y4mWriter] = {}
            return
        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise InputError(f"output {self.folder} exists and is not an empty folder")
        if not self.folder.parent.is_dir():
            raise InputError(f"output folder's parent {self.folder.parent} does not exist")
        self.folder.mkdir(exist_ok=True)
        self.png = None
        self.y4m = {v: Y4mWriter(self.folder / f"v{v}.y4m", fps) for v in view_ids}

    def write(self, view: int, rgb: np.ndarray) -> None:
        """The next frame of file view ``view``, uint8 RGB (H, W, 3)."""
        if self.png is not None:
            self.png.write(self.slot[view], rgb)
        else:
            self.y4m[view].write(rgb)

    def skip(self, view: int, count: int, reason: str) -> None:
        """``count`` frames of file view ``view`` that could not be decoded: a gap listed in ``meta.json`` (PNG
        only; a Y4M stream cannot hold a gap)."""
        if self.png is None:
            raise InputError("a Y4M output cannot hold skipped frames: decode with --format png")
        self.png.skip(self.slot[view], count, reason)

    def __enter__(self) -> "DecodedOutput":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        writers = [self.png] if self.png is not None else list(self.y4m.values())
        for w in writers:
            if exc_type is None:
                w.close()
            else:
                w.abort()
