"""``mvcodec codecs``: the registry, what each codec needs, and whether it can run here."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("codecs", help="list the registered codecs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mvcodec.codecs import codec_ids, get_codec

    for cid in codec_ids():
        codec = get_codec(cid)
        reason = codec.unavailable_reason()
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{cid:<10} {codec.description}")
        print(f"{'':<10} needs: {codec.requirements()}; {status}")
        print(f"{'':<10} quality: {codec.quality_help}; default ladder "
              f"{', '.join(f'{q:g}' for q in codec.default_qualities)}")
        print(f"{'':<10} options (-O KEY=VALUE): {codec.options_help}")
    return 0
