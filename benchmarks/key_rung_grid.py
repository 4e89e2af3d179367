"""Which rung should a key picture take?  ``mlvc`` on view 0 of a clip at every pair (P/B rung, key offset): the
file's bytes and the PSNR-RGB decoded from it, low delay, intra period 32, options as ``mvcodec encode -O``
(default ``picture_copy=off``, so the key picture's rung is all that changes).  Prints markdown: one row per P/B
rung, one column per key offset (``top`` = the codec's default, the model's top rung).

    .venv/bin/python benchmarks/key_rung_grid.py CLIP [--frames 32] [--crop 320x192] [--rungs 0,2,4]
                     [--offsets 0,2,top] [--threads 1] [-O KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from clips import clip_window

from mvcodec.api import encode_file, measure_file
from mvcodec.cli.options import key_value
from mvcodec.codecs import EncodeSettings
from mvcodec.codecs.learned_inter import MlvcCodec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--crop", default="320x192")
    p.add_argument("--rungs", default="0,2,4")
    p.add_argument("--offsets", default="0,2,top")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-O", "--option", type=key_value, action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    source = clip_window(args.clip, args.frames, args.crop, [0])
    options = {"picture_copy": "off", **dict(args.option)}
    offsets = args.offsets.split(",")
    print(f"{Path(args.clip).name}, view 0, centre {args.crop}, {source.info.frames} frames, low delay, intra period "
          f"32, options {options}, {torch.get_num_threads()} thread(s)\n")
    print("| P/B rung | " + " | ".join(f"key offset {o}: bytes, PSNR-RGB" for o in offsets) + " |")
    print("|---|" + "---|" * len(offsets))
    with tempfile.TemporaryDirectory() as tmp:
        for rung in (int(r) for r in args.rungs.split(",")):
            cells = []
            for offset in offsets:
                codec = MlvcCodec(**options, key_offset=offset)
                path = Path(tmp) / f"q{rung}_{offset}.mvc"
                result = encode_file(source, codec, EncodeSettings(rung, "ld", gop=32), path)
                decoded = measure_file(source, path, codec=codec)  # decoded from the file
                cells.append(f"{result.bytes:,} B, {decoded.psnr_rgb:.2f} dB")
            print(f"| {rung} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
