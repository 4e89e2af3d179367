"""``mvcodec encode INPUT -o OUT.mvc --codec NAME [--quality Q] ...``"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from mvcodec.cli.options import add_codec_options, add_input_options, open_input

DEFAULT_CODEC = "x265"  # until a learned codec beats it on BENCHMARKS.md


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="encode a multi-view clip into a .mvc file")
    add_input_options(p)
    p.add_argument("-o", "--output", required=True, help="output .mvc file")
    p.add_argument("--codec", default=DEFAULT_CODEC, help=f"codec id (default {DEFAULT_CODEC}; see `mvcodec codecs`)")
    p.add_argument("--quality", type=float, help="the codec's rate knob (a QP for conventional codecs)")
    p.add_argument("--structure", choices=("ld", "ra", "intra"), default="ra",
                   help="coding structure: low delay, random access (default) or all intra")
    p.add_argument("--gop", type=int, default=32, help="intra period in frames (default 32)")
    p.add_argument("--preset", help="encoding effort, passed to the codec (mv-mginr: fast|medium|slow fitting "
                                    "budget; conventional codecs: the encoder's preset)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="where a learned codec fits/runs (default cpu)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue an interrupted fit from its checkpoint folder "
                                                          "(printed when the fit was interrupted)")
    add_codec_options(p)
    p.add_argument("--report", help="write a JSON report (bytes, bpp, PSNR per view, seconds) measured by "
                                    "decoding the written file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mvcodec.api import encode_file, measure_file
    from mvcodec.atomic import atomic_write_text
    from mvcodec.codecs import EncodeSettings, get_codec
    from mvcodec.codecs.base import codec_class, options_for
    from mvcodec.errors import InputError

    options = options_for(args.codec, dict(args.codec_options))
    options.update({k: v for k, v in (("preset", args.preset), ("device", args.device)) if v is not None})
    checkpoint = None
    if codec_class(args.codec).resumable:
        checkpoint = Path(args.resume or f"{args.output}.ckpt")
        if args.resume and not (checkpoint / "state.json").is_file():
            raise InputError(f"{checkpoint}: no checkpoint to resume from")
        options.update(checkpoint=str(checkpoint), resume=bool(args.resume), progress=True)
    elif args.resume:
        raise InputError(f"codec {args.codec} encodes without a fit; there is nothing to resume")
    codec = get_codec(args.codec, **options)
    quality = args.quality if args.quality is not None else codec.default_qualities[len(codec.default_qualities) // 2]
    settings = EncodeSettings(quality=quality, structure=args.structure, gop=args.gop)
    source = open_input(args)
    info = source.info
    print(f"encoding {info.views} views x {info.frames} frames of {info.width}x{info.height} with {codec.id} "
          f"(quality {quality:g}, {settings.structure}, intra period {settings.gop})")
    try:
        result = encode_file(source, codec, settings, args.output, progress=True)
    except KeyboardInterrupt:
        if checkpoint is not None and (checkpoint / "state.json").is_file():
            print(f"mvcodec: interrupted; no output written. Continue with: --resume {checkpoint}", file=sys.stderr)
            return 130
        raise
    if checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)  # the fit is in the file now
    print(f"wrote {result.path}: {result.bytes} bytes, {result.bpp:.4f} bpp, {result.encode_seconds:.1f} s")
    if args.report:
        m = measure_file(source, args.output, progress=True)
        report = {**asdict(result), "views": info.views, "frames": info.frames, "width": info.width,
                  "height": info.height, "psnr_rgb": m.psnr_rgb, "psnr_rgb_per_view": m.per_view["psnr_rgb"],
                  "psnr_y": m.psnr_y, "psnr_yuv": m.psnr_yuv, "ms_ssim": m.ms_ssim,
                  "decode_seconds": m.decode_seconds}
        atomic_write_text(args.report, json.dumps(report, indent=2) + "\n")
        print(f"PSNR-RGB {m.psnr_rgb:.2f} dB (per view: {', '.join(f'{p:.2f}' for p in m.per_view['psnr_rgb'])}); "
              f"report in {args.report}")
    return 0
