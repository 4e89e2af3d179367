"""Deterministic decoding: the same file decodes to identical pixels with 1, 2 and 4 threads.

Each decode runs in a fresh process running the CLI (``mvcodec.cli.main.main``) with ``OMP_NUM_THREADS`` /
``MKL_NUM_THREADS`` set and ``torch.set_num_threads(n)`` called first: torch caps the environment variables at the
machine's core count, and the test must reach 4 threads on a 2-core machine too (the launcher checks that torch runs
with exactly ``n`` threads). Covered: every learned codec in the registry (codecs not driven by an external binary)
and one conventional codec. What is guaranteed across machines (e.g. CPU encode, GPU decode) is not tested here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_clip
from PIL import Image

from mvcodec.api import encode_file
from mvcodec.codecs import EncodeSettings, codec_ids, get_codec
from mvcodec.codecs.mvhevc import MvHevcCodec
from mvcodec.codecs.simulcast import FfmpegSimulcastCodec

THREADS = (1, 2, 4)
OPTIONS = {"mv-mginr": dict(fit_epochs=2, qat_epochs=1)}
QUALITY = {"mv-mginr": 2, "x265": 32, "mvc-intra": 2, "mlvc": 2, "lmvc": 2}  # learned codecs: rungs 0..5


def learned_codecs() -> list[str]:
    return [c for c in codec_ids() if not isinstance(get_codec(c, **OPTIONS.get(c, {})),
                                                     (FfmpegSimulcastCodec, MvHevcCodec))]


def thread_env(n: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}


def decoded_digest(folder: Path) -> str:
    """SHA-256 over the pixels of every PNG in ``folder`` (by name), not over the PNG bytes."""
    h = hashlib.sha256()
    files = sorted(folder.glob("*.png"))
    assert files
    for f in files:
        h.update(f.name.encode())
        h.update(np.ascontiguousarray(np.asarray(Image.open(f).convert("RGB"))).tobytes())
    return h.hexdigest()


LAUNCHER = """
import os, sys, torch
n = int(os.environ["OMP_NUM_THREADS"])
torch.set_num_threads(n)
assert torch.get_num_threads() == n, torch.get_num_threads()
from mvcodec.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_launcher_sets_the_thread_count() -> None:
    for n in (1, 4):
        out = subprocess.run([sys.executable, "-c", LAUNCHER.replace("from mvcodec", "print(torch.get_num_threads())"
                                                                     "\nfrom mvcodec"), "--version"],
                             env=thread_env(n), capture_output=True, text=True, timeout=120)
        assert out.stdout.splitlines()[0] == str(n), out


@pytest.mark.parametrize("codec_id", learned_codecs() + ["x265"])
def test_decode_is_identical_across_thread_counts(codec_id: str, tmp_path: Path) -> None:
    codec = get_codec(codec_id, **OPTIONS.get(codec_id, {}))
    if codec.unavailable_reason():
        pytest.skip(codec.unavailable_reason())
    path = tmp_path / f"{codec_id}.mvc"
    # large enough that torch actually splits the work across threads (its grain is 32768 elements)
    encode_file(synthetic_clip(views=2, frames=3, height=72, width=128), codec,
                EncodeSettings(QUALITY.get(codec_id, 32), "ld", gop=3), path)
    digests = {}
    for n in THREADS:
        out = tmp_path / f"out{n}"
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, "decode", str(path), "-o", str(out)],
                              env=thread_env(n), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        digests[n] = decoded_digest(out)
    assert len(set(digests.values())) == 1, digests
