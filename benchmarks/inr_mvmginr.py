"""MV-MGINR (codec ``mv-mginr``) on the project's real clips: RD against x265, the design's ablations,
decode speed and encode time.  Prints the markdown that goes into BENCHMARKS.md.

    .venv/bin/python benchmarks/inr_mvmginr.py rd        CLIP [--frames 32] [--rungs 1,2,3] [--preset fast]
                                                         [--part NAME [--no-anchor]] [--threads N]
    .venv/bin/python benchmarks/inr_mvmginr.py merge     CLIP --parts q1,q2,q3   (parts -> one rd folder)
    .venv/bin/python benchmarks/inr_mvmginr.py table     CLIP        (markdown tables of an rd run's results.json)
    .venv/bin/python benchmarks/inr_mvmginr.py ablations CLIP [--frames 32] [--rungs 1,3] [--preset fast]
    .venv/bin/python benchmarks/inr_mvmginr.py speed     CLIP [--frames 32] [--rung 1] [--repeats 3] [--file F]
                                                         [--crop 640x360]

``rd`` runs ``mvcodec eval`` (x265 low delay and random access as anchors, one fit per rung shared by both);
with ``--part NAME`` it writes ``CLIP_rd_NAME`` instead, so rungs can be fitted by parallel 1-thread processes
(``--threads 1``; ``--no-anchor`` leaves x265 to one of them) and ``merge`` joins the parts' points into
``CLIP_rd`` (results.json, bd_rate.md, rd.png) as if one eval had made them;
``ablations`` fits the three ablations (no time/view grids, no time-and-view grid, no motion mask) at each
rung, and the full model unless ``rd`` already wrote it (then its file is measured); ``speed`` decodes a file
written by ``rd`` (or fits one) and reports frames per second per view, median of ``--repeats`` runs, with 2
torch threads; ``--crop WxH`` codes the centre WxH rectangle of every frame (the issue's 640x360 targets,
measured on real footage).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from mvcodec.api import decode_file, encode_file, measure_file
from mvcodec.cli.main import main as mvcodec_main
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.io import open_clip
from mvcodec.io.clip import SubsetSource
from mvcodec.io.manifest import CropSource
from mvcodec.metrics.rate import bpp as file_bpp

ROOT = Path(__file__).resolve().parents[1]
ABLATIONS = {"full model": {}, "no time/view grids": {"time_view_grids": False},
             "no time-and-view grid": {"local_grid": False}, "no motion mask": {"motion_mask": False}}


def rd(args: argparse.Namespace) -> int:
    out = Path(args.out) / (f"{Path(args.clip).name}_rd" + (f"_{args.part}" if args.part else ""))
    codecs = "mv-mginr" if args.no_anchor else "x265,mv-mginr"
    cmd = ["eval", args.clip, "--codecs", codecs, "--structures", "ld,ra", "--frames", str(args.frames),
           "--qualities", f"mv-mginr={args.rungs}", "-O", f"mv-mginr:preset={args.preset}", "--out", str(out)]
    print(f"`mvcodec {' '.join(cmd)}`\n")
    return mvcodec_main(cmd)


def merge(args: argparse.Namespace) -> int:
    """Join the points of ``rd --part`` runs into one ``CLIP_rd`` folder (results.json, bd_rate.md, rd.png)."""
    from mvcodec.eval.harness import merge_results

    name = Path(args.clip).name
    out = Path(args.out) / f"{name}_rd"
    points = merge_results([Path(args.out) / f"{name}_rd_{part}" for part in args.parts.split(",")], out)
    print(f"{len(points)} points from {args.parts} -> {out}")
    return 0


def table(args: argparse.Namespace) -> int:
    """Markdown tables of an ``rd`` run's results.json: the mv-mginr points with their bits accounting (real
    bits, the -log2 p estimate, the design's Huffman code of the same symbols) and the x265 points."""
    folder = Path(args.out) / f"{Path(args.clip).name}_rd"
    points = json.loads((folder / "results.json").read_text())["points"]
    print("| rung | parameters | bytes | bpp | PSNR-RGB | MS-SSIM | fit s | decode s (all frames) | real bits | "
          "estimated bits | Huffman symbol bits | ANS symbol bits |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in sorted((p for p in points if p["codec"] == "mv-mginr" and p["structure"] == "ld"),
                    key=lambda p: p["quality"]):
        e = p["extra"]
        print(f"| {p['quality']:g} | {e['parameters']:,} | {p['bytes']:,} | {p['bpp']:.4f} | {p['psnr_rgb']:.2f} | "
              f"{p['ms_ssim']:.4f} | {e['fit_seconds']:.0f} | {p['decode_seconds']:.1f} | {e['real_bits']:,} | "
              f"{e['estimated_bits']:,.0f} | {e['huffman_symbol_bits']:,.0f} | {e['estimated_symbol_bits']:,.0f} |")
    print("\n| x265 | QP | bytes | bpp | PSNR-RGB | MS-SSIM |\n|---|---|---|---|---|---|")
    for p in sorted((p for p in points if p["codec"] == "x265"), key=lambda p: (p["structure"], p["quality"])):
        print(f"| {p['structure']} | {p['quality']:g} | {p['bytes']:,} | {p['bpp']:.4f} | {p['psnr_rgb']:.2f} | "
              f"{p['ms_ssim']:.4f} |")
    print()
    print((folder / "bd_rate.md").read_text())
    return 0


def ablations(args: argparse.Namespace) -> int:
    source = SubsetSource(open_clip(args.clip), None, 0, args.frames)
    out = Path(args.out) / f"{Path(args.clip).name}_ablations"
    out.mkdir(parents=True, exist_ok=True)
    info = source.info
    print("| rung | variant | bytes | bpp | PSNR-RGB | MS-SSIM | fit s |\n|---|---|---|---|---|---|---|")
    rows = []
    for rung in [int(r) for r in args.rungs.split(",")]:
        chosen = args.variants.split(",") if args.variants else list(ABLATIONS)
        unknown = set(chosen) - set(ABLATIONS)
        if unknown:
            raise SystemExit(f"unknown variant(s) {sorted(unknown)}; choose from {list(ABLATIONS)}")
        for name, flags in ((n, ABLATIONS[n]) for n in chosen):
            rd_file = Path(args.out) / f"{Path(args.clip).name}_rd" / "bitstreams" / f"mv-mginr_ld_q{rung}.mvc"
            if not flags and rd_file.exists():  # the full model at this rung was fitted by `rd`: measure its file
                path, fit_seconds = rd_file, float("nan")
            else:
                codec = get_codec("mv-mginr", preset=args.preset, **flags)
                path = out / f"q{rung}_{name.replace(' ', '_').replace('/', '-')}.mvc"
                enc = encode_file(source, codec, EncodeSettings(quality=rung, structure="intra"), path)
                fit_seconds = enc.extra["fit_seconds"]
            m = measure_file(source, path)
            size = path.stat().st_size
            bpp = file_bpp(size, info.views, info.frames, info.height, info.width)
            rows.append({"rung": rung, "variant": name, "file": str(path), "bytes": size, "bpp": bpp,
                         "psnr_rgb": m.psnr_rgb, "ms_ssim": m.ms_ssim, "fit_seconds": fit_seconds})
            print(f"| {rung} | {name} | {size} | {bpp:.4f} | {m.psnr_rgb:.2f} | {m.ms_ssim:.4f} | "
                  f"{fit_seconds:.0f} |", flush=True)
    tag = args.rungs.replace(",", "-") + ("_" + args.variants.replace(" ", "_").replace("/", "-").replace(",", "+")
                                          if args.variants else "")
    (out / f"ablations_q{tag}.json").write_text(json.dumps(rows, indent=2))
    return 0


def speed(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    source = SubsetSource(open_clip(args.clip), None, 0, args.frames)
    if args.crop:
        source = CropSource.centre(source, args.crop)
    info = source.info
    if args.file:  # a file written by `rd`: measure its decoding only
        path, encode_wall = Path(args.file), float("nan")
    else:
        crop = f"_{args.crop}" if args.crop else ""
        path = Path(args.out) / f"{Path(args.clip).name}{crop}_speed_{args.preset}_q{args.rung}.mvc"
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        enc = encode_file(source, get_codec("mv-mginr", preset=args.preset), EncodeSettings(args.rung, "intra"), path)
        encode_wall = time.perf_counter() - start
        print(f"encoded: {enc.bytes} bytes, {enc.bpp:.4f} bpp, PSNR-RGB {enc.extra['psnr_rgb_encoder']:.2f} dB, "
              f"fit {enc.extra['fit_seconds']:.0f} s")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        n = sum(1 for _ in decode_file(path, views=[0]))
        times.append(time.perf_counter() - start)
    fps = n / statistics.median(times)
    print(f"| {Path(args.clip).name} | {info.views}x{info.frames} | {info.width}x{info.height} | {path.name} | "
          f"{encode_wall:.0f} s | {path.stat().st_size} | {fps:.1f} frames/s per view (median of {args.repeats}) |")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=("rd", "merge", "table", "ablations", "speed"))
    p.add_argument("clip")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--rungs", default="1,2,3")
    p.add_argument("--rung", type=int, default=1)
    p.add_argument("--preset", default="fast")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--file", help="speed: decode this existing .mvc instead of encoding one")
    p.add_argument("--variants", help="ablations: a comma-separated subset of the variants (default: all)")
    p.add_argument("--crop", help="speed: code the centre WxH rectangle of each frame, e.g. 640x360")
    p.add_argument("--part", help="rd: write CLIP_rd_PART (one of several parallel rd runs; see merge)")
    p.add_argument("--no-anchor", action="store_true", help="rd: leave x265 out (another part runs it)")
    p.add_argument("--parts", help="merge: comma-separated part names")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    return {"rd": rd, "merge": merge, "table": table, "ablations": ablations, "speed": speed}[args.task](args)


if __name__ == "__main__":
    sys.exit(main())
