"""Command-line value parsers shared by the subcommands (views, frame ranges, number lists)."""

from __future__ import annotations

import argparse


def view_list(text: str) -> list[int]:
    """``"0,2"`` -> [0, 2]."""
    try:
        views = [int(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"views must be comma-separated integers, got {text!r}") from None
    if not views or any(v < 0 for v in views):
        raise argparse.ArgumentTypeError(f"views must be non-negative integers, got {text!r}")
    return views


def frame_range(text: str) -> range:
    """``"A:B"`` -> range(A, B) (B exclusive); ``"N"`` -> range(0, N); ``"A:"`` -> A to the end (stop=-1)."""
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            start = int(a) if a.strip() else 0
            stop = int(b) if b.strip() else -1
        else:
            start, stop = 0, int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"frames must be N or A:B, got {text!r}") from None
    if start < 0 or (stop != -1 and stop <= start):
        raise argparse.ArgumentTypeError(f"frame range {text!r} is empty or negative")
    return range(start, stop)


def number_list(text: str) -> list[float]:
    """``"22,27,32"`` -> [22.0, 27.0, 32.0]."""
    try:
        values = [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected at least one name")
    return names


def key_value(text: str) -> tuple[str, str]:
    """``"preset=slow"`` -> ("preset", "slow")."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def add_codec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--codec-option", "-O", dest="codec_options", type=key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="a codec option, e.g. preset=slow, encoder=/path/to/x265 for mvhevc, "
                                             "or CODEC:KEY=VALUE for one codec of an eval (repeatable)")


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Options that say how to read an input clip (see :func:`mvcodec.io.open_clip`)."""
    p.add_argument("input", help="PNG folder (v{view}_f{frame:03d}.png), manifest (.json/.yaml), a video, or .yuv")
    p.add_argument("--layout", choices=("sbs", "tb"), help="split one stereo video side-by-side or top-bottom")
    p.add_argument("--width", type=int, help="width of a raw .yuv input")
    p.add_argument("--height", type=int, help="height of a raw .yuv input")
    p.add_argument("--fps", type=float, help="frame rate of a raw .yuv input (or to override the source's)")
    p.add_argument("--frames", type=frame_range, help="first N frames, or A:B")
    p.add_argument("--views", type=view_list, help="comma-separated view indices, e.g. 0,1")


def open_input(args: argparse.Namespace):
    """The input clip selected by :func:`add_input_options`, as a lazy ClipSource."""
    from mvcodec.io import open_clip
    from mvcodec.io.clip import SubsetSource

    source = open_clip(args.input, layout=args.layout, width=args.width, height=args.height, fps=args.fps)
    frames = args.frames
    first = 0 if frames is None else frames.start
    count = None if frames is None or frames.stop == -1 else frames.stop - frames.start
    if count is not None and first + count > source.info.frames:
        from mvcodec.errors import InputError
        raise InputError(f"frames {first}:{first + count} asked for, the input has {source.info.frames}")
    if args.views is None and first == 0 and count is None:
        return source
    return SubsetSource(source, args.views, first, count)
