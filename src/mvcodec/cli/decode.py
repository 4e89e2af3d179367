"""``mvcodec decode IN.mvc -o OUTDIR [--views 0,1] [--frames A:B] [--format png|y4m]``"""

from __future__ import annotations

import argparse
import time

from mvcodec.cli.options import frame_range, view_list


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode a .mvc file (all of it, or some views and frames)")
    p.add_argument("input", help=".mvc file")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--views", type=view_list, help="comma-separated view indices (default: all)")
    p.add_argument("--frames", type=frame_range, help="A:B (B exclusive) or N (default: all)")
    p.add_argument("--format", choices=("png", "y4m"), default="png",
                   help="png: v{view}_f{frame:03d}.png files; y4m: one v{view}.y4m per view")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mvcodec.api import decode_file, open_decoder, parse_frames, parse_views
    from mvcodec.cli.output import DecodedOutput
    from tqdm import tqdm

    reader, _ = open_decoder(args.input)
    with reader:
        header = reader.header
    frames = args.frames
    if frames is not None and frames.stop == -1:
        frames = range(frames.start, header.frames)
    views = parse_views(args.views, header.views)
    frames = parse_frames(frames, header.frames)
    start = time.perf_counter()
    count = 0
    names = [header.view_names[v] for v in views]
    with DecodedOutput(args.output, args.format, header.fps, views, names, frames.start) as out:
        with tqdm(total=len(views) * len(frames), desc="decode", unit="frame", leave=False, disable=None) as bar:
            for frame in decode_file(args.input, views, frames):
                out.write(frame.view, frame.rgb)
                bar.update()
            count += 1
    seconds = time.perf_counter() - start
    print(f"decoded {count} frames ({len(views)} views x {len(frames)} frames) into {args.output} "
          f"in {seconds:.2f} s")
    return 0
