"""What each picture of a dependent view costs in each of lmvc's codings: the file's packet size, PSNR-RGB and the
encoder's mode-decision cost (``lambda_q * MSE + bpp``, :func:`mvcodec.codecs.learned_structure.rd_cost`), per
picture, for every value of the option ``dependent_picture`` (or ``key_picture``).  Every file is encoded, decoded
back and measured against the source; the packets are read from the file.

    .venv/bin/python benchmarks/lmvc_picture_costs.py CLIP [--weights-file W] [--frames 8] [--crop 320x192]
                     [--rung 0] [--view 1] [--option dependent_picture] [--modes interview,temporal] [--threads 1]

Prints one markdown table: a row per picture of ``--view``, a column group per mode.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from clips import clip_window

from mvcodec.api import decode_file, encode_file
from mvcodec.bitstream import MvcReader
from mvcodec.codecs import EncodeSettings
from mvcodec.codecs.learned_multiview import PACKET_NAMES, LmvcCodec
from mvcodec.codecs.learned_structure import rd_cost
from mvcodec.metrics.psnr import psnr_rgb


def picture_costs(source, codec: LmvcCodec, rung: int, view: int, path: Path) -> list[tuple[str, int, float, float]]:
    """(kind name, packet bits, PSNR-RGB, rd cost) of each picture of ``view``, low delay, one intra period."""
    encode_file(source, codec, EncodeSettings(rung, "ld", gop=source.info.frames), path)
    decoded = {f.frame: f.rgb for f in decode_file(path, views=[view], codec=codec)}
    with MvcReader(path) as reader:
        packets = {e.first_frame: (e.kind, 8 * len(reader.read_packet(e))) for e in reader.select(view=view)}
    rows = []
    for t in range(source.info.frames):
        x, x_hat = source.read_frames(view, t, t + 1)[0], decoded[t]
        kind, bits = packets[t]
        cost = rd_cost(*(torch.from_numpy(a.astype(np.float64)).permute(2, 0, 1)[None] / 255 for a in (x, x_hat)),
                       bits, rung)
        rows.append((PACKET_NAMES[kind], bits, psnr_rgb(x, x_hat), float(cost)))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip")
    p.add_argument("--weights-file", help="lmvc weights (default: the shipped default)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--crop", default="320x192")
    p.add_argument("--rung", type=int, default=0)
    p.add_argument("--view", type=int, default=1)
    p.add_argument("--option", default="dependent_picture", choices=("dependent_picture", "key_picture"))
    p.add_argument("--modes", default="interview,temporal")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    source = clip_window(args.clip, args.frames, args.crop)
    modes = args.modes.split(",")
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            options = {args.option: mode, **({"weights_file": args.weights_file} if args.weights_file else {})}
            table[mode] = picture_costs(source, LmvcCodec(**options), args.rung, args.view, Path(tmp) / f"{mode}.mvc")
    print(f"{Path(args.clip).name}, centre {args.crop}, {source.info.frames} frames, rung {args.rung}, low delay, view "
          f"{args.view}, {args.option} = each mode; weights {args.weights_file or 'shipped default'}\n")
    print("| picture | " + " | ".join(f"{m}: kind | bits | PSNR-RGB | cost" for m in modes) + " |")
    print("|---|" + "---|---|---|---|" * len(modes))
    for t in range(source.info.frames):
        cells = " | ".join(f"{k} | {b:,} | {q:.2f} | {c:.4f}" for k, b, q, c in (table[m][t] for m in modes))
        print(f"| {t} | {cells} |")
    sums = " | ".join(f"sum | {sum(r[1] for r in table[m]):,} | {np.mean([r[2] for r in table[m]]):.2f} (mean) | "
                      f"{sum(r[3] for r in table[m]):.4f}" for m in modes)
    print(f"| all | {sums} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
