"""PSNR-RGB of one view of coded files, frame by frame: how a chain drifts.  Each file is decoded (its codec from
its header, weights found as ``mvcodec decode`` finds them) and measured against the clip it was coded from.

    .venv/bin/python benchmarks/view_psnr_per_frame.py CLIP FILE [FILE ...] [--crop 320x192] [--view 1] [--every 4]

Prints a markdown table: a row per file, a column per measured frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clips import clip_window

from mvcodec.api import decode_file
from mvcodec.bitstream import MvcReader
from mvcodec.metrics.psnr import psnr_rgb


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip")
    p.add_argument("files", nargs="+")
    p.add_argument("--crop", help="the centre WxH the files were coded from, e.g. 320x192")
    p.add_argument("--view", type=int, default=1)
    p.add_argument("--every", type=int, default=4, help="print every N-th frame")
    args = p.parse_args()
    with MvcReader(args.files[0]) as reader:
        frames = reader.header.frames
    source = clip_window(args.clip, frames, args.crop)
    shown = range(0, frames, args.every)
    print("| file | " + " | ".join(f"frame {t}" for t in shown) + " |\n|---|" + "---|" * len(shown))
    for path in args.files:
        decoded = {f.frame: f.rgb for f in decode_file(path, views=[args.view], frames=range(0, frames))}
        values = [psnr_rgb(source.read_frames(args.view, t, t + 1)[0], decoded[t]) for t in shown]
        print(f"| {Path(path).parent.parent.name}/{Path(path).name} | " + " | ".join(f"{v:.2f}" for v in values)
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
