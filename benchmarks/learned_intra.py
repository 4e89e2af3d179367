"""The learned intra codec (``mvc-intra``, issue 4) on the project's real clips: RD and BD-rate against x265
all-intra, estimated against real bits, and coding speed at 640x360.  Prints the markdown for BENCHMARKS.md.

    .venv/bin/python benchmarks/learned_intra.py rd    CLIP [--frames 8] [--weights-file RUN/final.safetensors]
                                                      [--weights ID] [--part NAME] [--no-anchor]
    .venv/bin/python benchmarks/learned_intra.py merge CLIP --parts NAME[=SUFFIX],...
    .venv/bin/python benchmarks/learned_intra.py table CLIP [--pairs TEST:ANCHOR,...]   (an rd run's results.json)
    .venv/bin/python benchmarks/learned_intra.py speed CLIP [--frames 4] [--crop 640x360] [--quality 3]

``rd`` runs ``mvcodec eval CLIP --codecs x265,mvc-intra --structures intra`` (x265 with intra period 1 is the
anchor) on the first ``--frames`` frames of every view, with the default shipped weights, ``--weights ID`` or
``--weights-file``; with ``--part NAME`` it writes ``..._intra_rd_NAME``, and ``merge`` joins parts
(``NAME=SUFFIX`` renames a part's series: ``v1=-v1`` gives ``mvc-intra-v1/intra``) so that ``table --pairs`` can
compare two weights generations;
``speed`` encodes and decodes the centre ``--crop`` of each frame with 2 torch threads and reports frames per
second each way (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from mvcodec.api import decode_file, encode_file
from mvcodec.cli.main import main as mvcodec_main
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.errors import InputError
from mvcodec.eval.harness import load_results, merge_parts
from mvcodec.eval.report import asked_pairs, bd_row, group_series
from mvcodec.io import open_clip
from mvcodec.io.clip import SubsetSource
from mvcodec.io.manifest import CropSource

ROOT = Path(__file__).resolve().parents[1]


def _options(args: argparse.Namespace) -> dict[str, str]:
    options = {"weights_file": args.weights_file} if args.weights_file else {}
    return {**options, "weights": args.weights} if args.weights else options


def _folder(args: argparse.Namespace, part: str | None = None) -> Path:
    return Path(args.out) / (f"{Path(args.clip).name}_intra_rd" + (f"_{part}" if part else ""))


def rd(args: argparse.Namespace) -> int:
    codecs = "mvc-intra" if args.no_anchor else "x265,mvc-intra"
    cmd = ["eval", args.clip, "--codecs", codecs, "--structures", "intra", "--frames", str(args.frames),
           "--out", str(_folder(args, args.part))]
    cmd += [x for k, v in _options(args).items() for x in ("-O", f"mvc-intra:{k}={v}")]
    print(f"`mvcodec {' '.join(cmd)}`\n")
    return mvcodec_main(cmd)


def merge(args: argparse.Namespace) -> int:
    points = merge_parts(args.parts, lambda name: _folder(args, name), _folder(args))
    print(f"{len(points)} points from {args.parts} -> {_folder(args)}")
    return 0


def table(args: argparse.Namespace) -> int:
    folder = _folder(args)
    points = json.loads((folder / "results.json").read_text())["points"]
    print("| codec | quality | file bytes | bpp | PSNR-RGB | MS-SSIM | payload bits | estimated bits (-log2 p) | "
          "payload / estimate | file / estimate |\n|---|---|---|---|---|---|---|---|---|---|")
    for p in sorted(points, key=lambda p: (p["codec"], p["bpp"])):
        e = p["extra"]
        est, payload = e.get("estimated_bits"), e.get("real_bits")
        ratios = "| | |" if not est else f"| {payload / est:.4f} | {8 * p['bytes'] / est:.4f} |"
        print(f"| {p['codec']} | {p['quality']:g} | {p['bytes']:,} | {p['bpp']:.4f} | {p['psnr_rgb']:.2f} | "
              f"{p['ms_ssim']:.4f} | {'' if payload is None else f'{payload:,.0f}'} | "
              f"{'' if est is None else f'{est:,.0f}'} {ratios}")
    print()
    print((folder / "bd_rate.md").read_text())
    series = group_series(load_results(folder / "results.json"))
    try:
        pairs = asked_pairs(series, args.pairs)
    except InputError as exc:
        print(f"{folder}: {exc}", file=sys.stderr)
        return 2
    if pairs:
        print("| series | anchor | BD-rate | BD-PSNR | overlap PSNR (dB) | overlap bpp |\n|---|---|---|---|---|---|")
        for test, anchor in pairs:
            print(bd_row(test, anchor, series[anchor], series[test], "psnr_rgb"))
    return 0


def speed(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    source = SubsetSource(open_clip(args.clip), [0], 0, args.frames)
    if args.crop:
        source = CropSource.centre(source, args.crop)
    codec = get_codec("mvc-intra", **_options(args))
    enc_times, dec_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speed.mvc"
        for _ in range(args.repeats):
            start = time.perf_counter()
            encode_file(source, codec, EncodeSettings(quality=args.quality, structure="intra"), path)
            enc_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            n = sum(1 for _ in decode_file(path))
            dec_times.append(time.perf_counter() - start)
    info = source.info
    print(f"| {Path(args.clip).name} | {info.width}x{info.height} | {args.frames} frames of view 0 | q{args.quality} | "
          f"{args.frames / statistics.median(enc_times):.2f} frames/s | {n / statistics.median(dec_times):.2f} "
          f"frames/s | (median of {args.repeats}; 2 threads) |")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=("rd", "merge", "table", "speed"))
    p.add_argument("clip")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--weights-file", help="a training run's final.safetensors instead of the shipped weights")
    p.add_argument("--weights", help="shipped weights id (default: the codec's default, mvc-intra-v2)")
    p.add_argument("--part", help="rd: write ..._intra_rd_PART (merge joins parts)")
    p.add_argument("--no-anchor", action="store_true", help="rd: the learned codec only, no x265")
    p.add_argument("--parts", help="merge: comma-separated PART or PART=SERIES_SUFFIX")
    p.add_argument("--pairs", help="table: BD rows of TEST:ANCHOR series, comma-separated")
    p.add_argument("--crop", help="speed: code the centre WxH rectangle of each frame, e.g. 640x360")
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    return {"rd": rd, "merge": merge, "table": table, "speed": speed}[args.task](args)


if __name__ == "__main__":
    sys.exit(main())
