"""Small helpers shared by the readers and writers: path checks, defaults, closing sources."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from mvcodec.errors import InputError
from mvcodec.io.clip import Camera

DEFAULT_FPS = 30.0
"""Frame rate assumed where the input states none (raw YUV, a PNG folder without ``meta.json``)."""


def existing_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a :class:`Path` if it is a readable regular file, else :class:`InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such {what}")
    if not p.is_file():
        raise InputError(f"{p}: is not a {what}")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: {what} is not readable")
    return p


def positive_fps(fps: float | int | str | None, where: str) -> float | None:
    """A frame rate as a positive float (``None`` passes through), else :class:`InputError` naming ``where``."""
    if fps is None:
        return None
    try:
        value = float(Fraction(fps)) if isinstance(fps, str) else float(fps)
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f"{where}: frame rate {fps!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise InputError(f"{where}: frame rate must be positive, got {fps!r}")
    return value


def close_source(source: object) -> None:
    """Release the files a source holds open, if it has a ``close`` method."""
    close = getattr(source, "close", None)
    if callable(close):
        close()


def parse_cameras(value: object, views: int, where: str) -> tuple[Camera, ...] | None:
    """A JSON/YAML camera list (one ``{"K", "R", "t"}`` mapping per view) as Cameras; ``None`` passes through."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != views or not all(isinstance(c, dict) for c in value):
        raise InputError(f"{where}: 'cameras' must list one {{K, R, t}} mapping per view ({views})")
    try:
        return tuple(Camera.from_json(c) for c in value)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
