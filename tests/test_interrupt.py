"""Killing ``mvcodec encode`` or ``decode`` at any moment leaves no output that looks complete.

The processes are killed with SIGKILL (no clean-up code runs) at several moments; whatever state the disk is
left in, the output name either does not exist or holds a complete, valid result (a process killed just after
its rename has finished its output)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_clip

from mvcodec.api import decode_file, encode_file
from mvcodec.bitstream import MvcReader
from mvcodec.codecs import EncodeSettings
from mvcodec.io import write_png_folder

DELAYS = (0.0, 0.05, 0.3)  # seconds after the partial output appeared on disk


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return write_png_folder(synthetic_clip(views=2, frames=24, height=96, width=128, seed=5),
                            tmp_path_factory.mktemp("kill") / "clip")


def run_and_kill(argv: list[str], partial: Path, delay: float) -> int:
    """Start ``mvcodec argv``, wait until it has begun writing ``partial``, then SIGKILL it ``delay`` later."""
    proc = subprocess.Popen([sys.executable, "-m", "mvcodec", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


@pytest.mark.parametrize("delay", DELAYS)
def test_killed_encode_leaves_no_complete_looking_file(clip_dir, tmp_path, delay):
    out = tmp_path / "k.mvc"
    status = run_and_kill(["encode", str(clip_dir), "-o", str(out), "--codec", "x265", "--gop", "8"],
                          tmp_path / ".k.mvc.partial", delay)
    assert status in (0, -signal.SIGKILL)
    if out.exists():  # renamed into place before the kill (the process may die after that): then it is whole
        with MvcReader(out) as r:
            assert len(r.entries) == 6
    else:
        assert status == -signal.SIGKILL
        assert all(p.name.startswith(".") for p in tmp_path.iterdir())  # only hidden .partial files


@pytest.mark.parametrize("delay", DELAYS)
def test_killed_decode_leaves_no_complete_looking_folder(clip_dir, tmp_path, delay):
    mvc = tmp_path / "d.mvc"
    encode_file(synthetic_clip(views=2, frames=24, height=96, width=128, seed=5), "x265",
                EncodeSettings(quality=30, structure="ra", gop=8), mvc)
    out = tmp_path / "decoded"
    status = run_and_kill(["decode", str(mvc), "-o", str(out)], tmp_path / ".decoded.partial", delay)
    assert status in (0, -signal.SIGKILL)
    if out.exists():  # renamed into place before the kill: then every frame is there
        assert len(list(out.glob("v*_f*.png"))) == 48 and (out / "meta.json").is_file()
    else:
        assert status == -signal.SIGKILL
    expected = np.stack([f.rgb for f in decode_file(mvc)])  # the file itself is untouched by the kill
    assert expected.shape == (48, 96, 128, 3)
