"""``mvcodec demo``: the main job on a real sample, from nothing.

Fetches the pose2sim 4-camera recording (a PyPI wheel, cached), encodes its first frames with the default codec
into a ``.mvc`` file, decodes it back from the file, and prints the rate and quality achieved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mvcodec.cli.encode import DEFAULT_CODEC


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="encode and decode a real 4-camera sample with the default codec")
    p.add_argument("--frames", type=int, default=16, help="frames per view (default 16)")
    p.add_argument("--codec", default=DEFAULT_CODEC, help=f"codec id (default {DEFAULT_CODEC})")
    p.add_argument("--out", default="demo_out", help="output folder (default ./demo_out)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mvcodec.api import encode_file, measure_file
    from mvcodec.cli.main import main as cli_main
    from mvcodec.codecs import EncodeSettings, get_codec
    from mvcodec.data.samples import pose2sim_manifest
    from mvcodec.io import open_clip
    from mvcodec.io.clip import SubsetSource

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = pose2sim_manifest()
    source = open_clip(str(manifest))
    source = SubsetSource(source, None, 0, min(args.frames, source.info.frames))
    info = source.info
    codec = get_codec(args.codec)
    settings = EncodeSettings(quality=codec.default_qualities[len(codec.default_qualities) // 2], structure="ra")
    raw_bytes = info.views * info.frames * info.height * info.width * 3
    print(f"sample: {manifest.parent} ({info.views} cameras x {info.frames} frames, {info.width}x{info.height}, "
          f"{info.fps:g} fps; {raw_bytes / 1e6:.1f} MB as raw RGB)")
    mvc = out / f"pose2sim_{codec.id}.mvc"
    enc = encode_file(source, codec, settings, mvc, progress=True)
    print(f"encoded with {codec.id} (quality {settings.quality:g}, random access): {mvc}, {enc.bytes} bytes = "
          f"{enc.bpp:.4f} bpp ({raw_bytes / enc.bytes:.0f}:1), {enc.encode_seconds:.1f} s")
    m = measure_file(source, mvc, progress=True)
    per_view = ", ".join(f"{name} {p:.2f}" for name, p in zip(info.view_names, m.per_view["psnr_rgb"]))
    print(f"decoded from the file in {m.decode_seconds:.1f} s: PSNR-RGB {m.psnr_rgb:.2f} dB ({per_view}), "
          f"YUV-PSNR {m.psnr_yuv:.2f} dB, MS-SSIM {m.ms_ssim:.4f}")
    decoded = out / "decoded_view1_frames_0-2"
    if decoded.exists():
        import shutil
        shutil.rmtree(decoded)
    status = cli_main(["decode", str(mvc), "-o", str(decoded), "--views", "1", "--frames", "0:2"])
    if status:
        return status
    print(f"try: mvcodec info {mvc}   |   mvcodec decode {mvc} -o {out}/all")
    return 0
