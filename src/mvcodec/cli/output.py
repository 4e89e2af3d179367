"""Where ``mvcodec decode`` puts decoded frames: a PNG folder or one Y4M per view, written atomically."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from mvcodec.errors import InputError


class DecodedOutput:
    """Collects decoded frames into ``folder``.  Frames go to ``folder.partial`` first; the folder is renamed into
    place when every frame is written, so an interrupted decode never leaves a complete-looking folder."""

    def __init__(self, folder: str | os.PathLike, fmt: str, fps: float, view_names: Sequence[str]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise InputError(f"output {self.folder} exists and is not an empty folder")
        if not self.folder.parent.exists():
            raise InputError(f"output folder's parent {self.folder.parent} does not exist")
        self.tmp = self.folder.with_name(self.folder.name + ".partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.fmt, self.fps, self.view_names = fmt, fps, list(view_names)
        self._y4m: dict[int, object] = {}

    def write(self, view: int, frame: int, rgb: np.ndarray) -> None:
        from mvcodec.io import Y4MWriter, write_png

        if self.fmt == "png":
            write_png(self.tmp / f"v{view}_f{frame:03d}.png", rgb)
            return
        if view not in self._y4m:
            self._y4m[view] = Y4MWriter(self.tmp / f"v{view}.y4m", rgb.shape[1], rgb.shape[0], self.fps)
        self._y4m[view].write(rgb)

    def __enter__(self) -> "DecodedOutput":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for w in self._y4m.values():
            w.close() if exc_type is None else w.abort()
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.folder.exists():
            self.folder.rmdir()
        os.replace(self.tmp, self.folder)
