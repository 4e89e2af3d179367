"""Conventional anchors on the project's real clips: every simulcast codec, low delay and random access.

Runs ``mvcodec eval`` (the same harness users run) on the first 32 frames of every clip under ``../shared/data``
(or the folders given), and prints the markdown that goes into BENCHMARKS.md.

    .venv/bin/python benchmarks/conventional_anchors.py [--frames 32] [--codecs x265,x264,svtav1,vvenc]
        [--out benchmarks/results] [CLIP_DIR ...]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from mvcodec.cli.main import main as mvcodec_main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", nargs="*", help="PNG-folder clips (default: every folder of ../shared/data)")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--codecs", default="x265,x264,svtav1,vvenc")
    p.add_argument("--structures", default="ld,ra")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    clips = [Path(c) for c in args.clips] or sorted(d for d in SHARED.iterdir() if d.is_dir())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"python {platform.python_version()}")
    for clip in clips:
        out = Path(args.out) / clip.name
        start = time.perf_counter()
        cmd = ["eval", str(clip), "--codecs", args.codecs, "--structures", args.structures,
               "--frames", str(args.frames), "--out", str(out)]
        print(f"\n### {clip.name}\n\n`mvcodec {' '.join(cmd)}`\n")
        status = mvcodec_main(cmd)
        if status:
            return status
        print(f"(wall time {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
