"""Reader of YUV4MPEG2 (``.y4m``) files: a small parser that seeks straight to any frame by its byte offset.

A Y4M file is one text header line (``YUV4MPEG2 W.. H.. F num:den C420 ...``) followed by frames, each a
``FRAME`` line and the raw planes.  8-bit 4:2:0 (``C420``, ``C420jpeg``, ``C420mpeg2``, ``C420paldv``, or no C
tag) in limited range is converted with the project's BT.709 :func:`~mvcodec.io.colour.yuv420_to_rgb`
(chroma siting variants are all treated as centred); ``Cmono`` is full-range grey, R = G = B.  Anything else
(4:2:2, 4:4:4, high bit depth, ``XCOLORRANGE=FULL``, frame lines with parameters) goes through PyAV's demuxer
(:class:`~mvcodec.io.video.VideoSource`).  Y4M has no tag for the colour matrix; BT.709 is assumed.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io._files import DEFAULT_FPS, existing_file
from mvcodec.io.clip import ClipInfo, ClipSource, check_range, to_rgb
from mvcodec.io.colour import unpack_i420, yuv420_frame_bytes, yuv420_to_rgb
from mvcodec.io.video import VideoSource

MAGIC = b"YUV4MPEG2"
_MAX_HEADER = 4096
_OWN_CHROMA = {"420", "420jpeg", "420mpeg2", "420paldv", "mono"}


def parse_header(line: bytes, path: Path) -> dict[str, str]:
    """The fields of a Y4M stream header line (no newline): {"W": "64", "C": "420", "XCOLORRANGE": "LIMITED"}."""
    tokens = line.split(b" ")
    if tokens[0] != MAGIC:
        raise InputError(f"{path}: not a Y4M file (no YUV4MPEG2 signature)")
    fields: dict[str, str] = {}
    for tok in tokens[1:]:
        text = tok.decode("ascii", "replace")
        if text.startswith("X"):
            key, _, value = text.partition("=")
            fields[key] = value
        elif text:
            fields[text[0]] = text[1:]
    return fields


class Y4mSource:
    """An 8-bit 4:2:0 or mono Y4M file as a 1-view :class:`~mvcodec.io.clip.ClipSource`, read by offset."""

    def __init__(self, path: str | os.PathLike, fps: float | None = None, name: str | None = None,
                 fields: dict[str, str] | None = None, header_len: int | None = None) -> None:
        self.path = existing_file(path, "Y4M file")
        if fields is None or header_len is None:
            fields, header_len = read_header(self.path)
        try:
            width, height = int(fields["W"]), int(fields["H"])
        except (KeyError, ValueError):
            raise InputError(f"{self.path}: Y4M header lacks a valid W and H") from None
        self.mono = fields.get("C", "420jpeg") == "mono"
        self.frame_bytes = width * height if self.mono else yuv420_frame_bytes(height, width)
        self.offset = header_len
        with open(self.path, "rb") as f:
            f.seek(header_len)
            frame_line = f.readline(_MAX_HEADER)
        if frame_line != b"FRAME\n":
            raise InputError(f"{self.path}: Y4M data does not start with a FRAME line")
        self.stride = len(frame_line) + self.frame_bytes
        data = self.path.stat().st_size - header_len
        count, rest = divmod(data, self.stride)
        if rest:
            raise InputError(f"{self.path}: Y4M data is not a whole number of {width}x{height} frames "
                             f"({count} frames and {rest} bytes; truncated?)")
        rate = fps or _fps(fields.get("F"), self.path) or DEFAULT_FPS
        self.info = ClipInfo(1, count, height, width, rate, (name or self.path.stem,))

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` (the only view is 0), uint8 RGB (stop - start, H, W, 3)."""
        check_range(self.info, view, start, stop)
        H, W = self.info.height, self.info.width
        out = np.empty((stop - start, H, W, 3), np.uint8)
        with open(self.path, "rb") as f:
            f.seek(self.offset + start * self.stride)
            for i in range(stop - start):
                chunk = f.read(self.stride)
                if len(chunk) != self.stride or not chunk.startswith(b"FRAME"):
                    raise InputError(f"{self.path}: frame {start + i} is missing or corrupt")
                planes = memoryview(chunk)[self.stride - self.frame_bytes:]
                if self.mono:
                    out[i] = to_rgb(np.frombuffer(planes, np.uint8).reshape(H, W))
                else:
                    out[i] = yuv420_to_rgb(*unpack_i420(planes, H, W))
        return out


def read_header(path: Path) -> tuple[dict[str, str], int]:
    """(header fields, header length in bytes including its newline) of a Y4M file."""
    with open(path, "rb") as f:
        line = f.readline(_MAX_HEADER)
    if not line.endswith(b"\n"):
        raise InputError(f"{path}: not a Y4M file (no header line)")
    return parse_header(line[:-1], path), len(line)


def _fps(value: str | None, path: Path) -> float | None:
    if not value:
        return None
    try:
        num, den = value.split(":")
        fps = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{path}: Y4M frame rate F{value} is malformed") from None
    return float(fps) if fps > 0 else None


def open_y4m(path: str | os.PathLike, fps: float | None = None, name: str | None = None) -> ClipSource:
    """A Y4M file as a 1-view source: :class:`Y4mSource` when it can, PyAV otherwise (see module docstring)."""
    p = existing_file(path, "Y4M file")
    fields, header_len = read_header(p)
    with open(p, "rb") as f:
        f.seek(header_len)
        frame_line = f.read(6)
    plain_frames = not frame_line.startswith(b"FRAME") or frame_line == b"FRAME\n"
    if fields.get("C", "420jpeg") in _OWN_CHROMA and fields.get("XCOLORRANGE") != "FULL" and plain_frames:
        return Y4mSource(p, fps, name, fields, header_len)
    return VideoSource(p, fps, name)
