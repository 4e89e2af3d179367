"""``mvcodec eval INPUT --codecs x265,x264 [--qualities ...] [--frames N] --out DIR``"""

from __future__ import annotations

import argparse

from mvcodec.cli.options import add_codec_options, add_input_options, name_list, number_list, open_input


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="run codecs at several rate points; write results.json, bd_rate.md, rd.png")
    add_input_options(p)
    p.add_argument("--codecs", type=name_list, required=True, help="comma-separated codec ids; the first is the "
                                                                   "BD-rate anchor")
    p.add_argument("--qualities", action="append", default=[], metavar="[CODEC=]Q1,Q2,...",
                   help="rate points for every codec, or CODEC=Q1,Q2 for one codec (repeatable; default: each "
                        "codec's ladder)")
    p.add_argument("--structures", type=name_list, default=["ra"], help="ld, ra and/or intra (default ra)")
    p.add_argument("--gop", type=int, default=32, help="intra period (default 32)")
    p.add_argument("--out", required=True, help="output folder")
    add_codec_options(p)
    p.set_defaults(run=run)


def parse_qualities(values: list[str]) -> dict[str, list[float]] | list[float] | None:
    """``["22,27"]`` -> [22, 27] for every codec; ``["x265=22,27", "mv-mginr=1,2"]`` -> per codec."""
    from mvcodec.errors import InputError

    per_codec: dict[str, list[float]] = {}
    common: list[float] | None = None
    try:
        for value in values:
            codec, sep, numbers = value.rpartition("=")
            if sep:
                per_codec[codec.strip()] = number_list(numbers)
            else:
                common = number_list(value)
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"--qualities: {exc}") from None
    if per_codec and common is not None:
        raise InputError("--qualities: give either one list for every codec or CODEC=... lists, not both")
    return per_codec or common


def run(args: argparse.Namespace) -> int:
    from mvcodec.errors import InputError
    from mvcodec.eval import run_eval
    from mvcodec.eval.report import bd_table

    for s in args.structures:
        if s not in ("ld", "ra", "intra"):
            raise InputError(f"unknown coding structure {s!r} (choose from ld, ra, intra)")
    qualities = parse_qualities(args.qualities)
    source = open_input(args)
    points = run_eval(source, args.codecs, args.out, args.structures, qualities, args.gop,
                      codec_options=dict(args.codec_options))
    print(bd_table(points))
    print(f"results in {args.out}/results.json, {args.out}/bd_rate.md, {args.out}/rd.png")
    return 0
