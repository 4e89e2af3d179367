"""``mvcodec decode IN.mvc -o OUTDIR [--views 0,1] [--frames A:B] [--format png|y4m] [--skip-damaged]``

Exit status: 0 when every requested frame was decoded; 2 (one line on stderr, no output) on any error.  With
``--skip-damaged`` a damaged packet is not an error: the frames that depend on it are skipped, each run of them
reported on stderr as one ``mvcodec: skipped ...`` line and listed under ``skipped`` in the output's
``meta.json`` (PNG only), and the exit status is 0 if at least one frame was decoded, else 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from mvcodec.cli.options import frame_range, view_list

if TYPE_CHECKING:
    from mvcodec.bitstream import MvcReader
    from mvcodec.codecs.base import Codec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode a .mvc file (all of it, or some views and frames)")
    p.add_argument("input", help=".mvc file")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--views", type=view_list, help="comma-separated view indices (default: all)")
    p.add_argument("--frames", type=frame_range, help="A:B (B exclusive) or N (default: all)")
    p.add_argument("--format", choices=("png", "y4m"), default="png",
                   help="png: v{view}_f{frame:03d}.png files; y4m: one v{view}.y4m per view")
    p.add_argument("--skip-damaged", action="store_true",
                   help="skip the frames that depend on a damaged packet instead of failing (one stderr line "
                        "per damaged packet; PNG output lists them in meta.json); exit 0 if any frame decoded")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mvcodec.api import open_decoder
    from mvcodec.errors import InputError

    if args.skip_damaged and args.format != "png":
        raise InputError("--skip-damaged needs --format png (a Y4M stream cannot hold the gaps)")
    reader, codec = open_decoder(args.input)  # the file is opened (and its index read) once
    with reader:
        _write_decoded(args, reader, codec)
    return 0


def _write_decoded(args: argparse.Namespace, reader: MvcReader, codec: Codec) -> None:
    from tqdm import tqdm

    from mvcodec.api import decode_opened, parse_frames, parse_views
    from mvcodec.cli.output import DecodedOutput
    from mvcodec.codecs.base import Skipped
    from mvcodec.errors import BitstreamError

    header = reader.header
    frames = args.frames
    if frames is not None and frames.stop == -1:
        frames = range(frames.start, header.frames)
    views = parse_views(args.views, header.views)
    frames = parse_frames(frames, header.frames)
    start = time.perf_counter()
    count, damaged = 0, []
    names = [header.view_names[v] for v in views]
    with DecodedOutput(args.output, args.format, header.fps, views, names, frames.start) as out:
        with tqdm(total=len(views) * len(frames), desc="decode", unit="frame", leave=False, disable=None) as bar:
            for item in decode_opened(reader, codec, views, frames, skip_damaged=args.skip_damaged):
                if isinstance(item, Skipped):
                    out.skip(item.view, len(item.frames), item.reason)
                    damaged.append(item)
                    bar.update(len(item.frames))
                    continue
                out.write(item.view, item.rgb)
                count += 1
                bar.update()
            if count == 0:
                raise BitstreamError(f"{args.input}: nothing could be decoded; {len(damaged)} damaged packet(s), "
                                     f"first: {damaged[0].reason if damaged else '?'}")
    for item in damaged:
        print(f"mvcodec: skipped view {item.view} frames {item.frames.start}:{item.frames.stop}: {item.reason}",
              file=sys.stderr)
    skipped = sum(len(item.frames) for item in damaged)
    seconds = time.perf_counter() - start
    note = f", skipped {skipped} frames (damaged packets)" if skipped else ""
    print(f"decoded {count} frames ({len(views)} views x {len(frames)} frames) into {args.output} "
          f"in {seconds:.2f} s{note}")
