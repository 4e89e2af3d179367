"""Shared fixtures: small synthetic multi-view clips (no external data needed), and the real clips when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mvcodec.bitstream import MvcReader
from mvcodec.io import MultiViewClip, write_png_folder

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def synthetic_clip(views: int = 2, frames: int = 6, height: int = 48, width: int = 64, seed: int = 0,
                   ) -> MultiViewClip:
    """A smooth textured scene with a square moving in time and shifted between views (a disparity)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([128 + 60 * np.sin(xx / 7.0 + c) * np.cos(yy / 9.0 - c) for c in range(3)], axis=-1)
    out = np.empty((views, frames, height, width, 3), np.uint8)
    for v in range(views):
        for t in range(frames):
            img = np.roll(base, shift=t - 2 * v, axis=1) + rng.normal(0, 2, base.shape)
            x0, y0 = 8 + 2 * t + 3 * v, 10 + t
            img[y0:y0 + 12, x0:x0 + 12] = [220, 40, 60]
            out[v, t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return MultiViewClip(out, fps=25.0, view_names=tuple(f"cam{v}" for v in range(views)))


def static_clip(views: int = 2, frames: int = 4, height: int = 32, width: int = 64, seed: int = 0) -> MultiViewClip:
    """:func:`synthetic_clip`'s first instant held still: every frame of a view equals its frame 0."""
    first = synthetic_clip(views, 1, height, width, seed).frames
    return MultiViewClip(np.repeat(first, frames, axis=1), fps=25.0,
                         view_names=tuple(f"cam{v}" for v in range(views)))


@pytest.fixture
def small_clip() -> MultiViewClip:
    return synthetic_clip()


@pytest.fixture
def png_clip(tmp_path: Path, small_clip: MultiViewClip) -> Path:
    """``small_clip`` written as a PNG folder with meta.json."""
    return write_png_folder(small_clip, tmp_path / "clip")


def shared_clip(name: str) -> Path:
    """A real clip under ../shared/data, or skip when this machine has none (a user's fresh checkout)."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real clip {name} not available ({SHARED_DATA} absent)")
    return path


def damage_packet(src: Path, dst: Path, view: int, frame: int, flip: int = 0x40) -> Path:
    """Copy ``src`` to ``dst`` with one byte in the middle of the payload of packet (view, first frame ``frame``)
    XORed with ``flip``: that packet's CRC fails, every other packet is intact.  Returns ``dst``."""
    data = bytearray(src.read_bytes())
    with MvcReader(src) as reader:
        (entry,) = [e for e in reader.entries if e.view == view and e.first_frame == frame]
    data[entry.offset + entry.length // 2] ^= flip
    dst.write_bytes(bytes(data))
    return dst


def in_table_latents(model: torch.nn.Module, factor: float = 4.0) -> torch.nn.Module:
    """An untrained P model (mlvc's inter model, lmvc's dependent model) whose latents mostly stay inside its
    coding tables: the gain vectors divided by ``factor``.  Its analysis transforms start near the rounding step
    (models.inter.ANALYSIS_INIT_GAIN) while an untrained prior predicts tiny scales, so without this many
    symbols go through the coder's escape, where the -log2 p estimate says little about the real bits."""
    with torch.no_grad():
        model.gain.div_(factor)
        model.mv_gain.div_(factor)
    return model
