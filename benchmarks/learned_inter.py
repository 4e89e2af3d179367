"""The learned predictive codecs on the project's real clips: the single-view inter codec (``mlvc``, issue 4) and
the multi-view codec (``lmvc``, issue 5, ``--codec lmvc``).  RD and BD-rate against x265 low-delay simulcast,
ablations (the same codec with other weights: for mlvc the M-LVC ablation, trained with one reference and no MV
prediction / MV refinement / reference refinement), for lmvc the inter-view gain against the same backbone
coding every view on its own (``--simulcast``: mlvc at the same rungs), estimated against real bits, and coding
speed at 640x360.  Prints the markdown for BENCHMARKS.md.

    .venv/bin/python benchmarks/learned_inter.py rd    CLIP [--frames 32] [--crop WxH] [--rungs 0,2,4]
                                                       [--structures ld,ra] [--weights-file F] [--part NAME]
                                                       [--no-anchor | --anchor-only] [--anchor-qps 22,...]
                                                       [--threads N]
                                                       [--codec lmvc [--base-weights-file F] [--simulcast]]
                                                       [--codec mv-mginr --rungs 1,2,3 --preset fast]
    .venv/bin/python benchmarks/learned_inter.py merge CLIP [--crop WxH] --parts q0,q2,1ref-q0=-1ref,...
    .venv/bin/python benchmarks/learned_inter.py table CLIP [--crop WxH] [--pairs TEST:ANCHOR,...]
    .venv/bin/python benchmarks/learned_inter.py speed CLIP [--frames 8] [--crop 640x360] [--quality 3]

``rd`` evaluates the first ``--frames`` frames of every view (low delay, intra period 32, as the issue asks) with
``mvcodec``'s eval harness (:func:`mvcodec.eval.harness.run_eval`: every point decoded from its file), x265 LD as
the anchor, optionally on the centre ``--crop`` of every frame (the exact-arithmetic coding path costs seconds per
frame on a CPU).  With ``--part NAME`` it writes ``..._inter_rd_NAME`` so rungs and variants run as parallel
1-thread processes; ``merge`` joins the parts (``PART=SUFFIX`` renames a part's series, e.g. ``-1ref`` for the
ablation model given with ``--weights-file``).  ``table`` prints the points with the bits accounting (payload
against the -log2 p estimate, I and P pictures apart), the BD-rate against x265 and the ablation's BD-rate.
``speed`` codes view 0 of the centre ``--crop`` in low delay (one I picture, then P pictures) with 2 threads.
``--codec mv-mginr`` (with ``--part``, ``--no-anchor``) fits the INR codec on the same crop, so ``merge`` can put
it beside lmvc: ``table`` then gives lmvc's BD-rate against it.  Another weights generation merged with the suffix
``-vN`` (``mlvc-v2/ld``, ``lmvc-v2/ld``) is compared with its own generation (lmvc-vN against mlvc-vN simulcast),
not as an ablation.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from clips import clip_window

from mvcodec.api import decode_file, encode_file
from mvcodec.cli.options import key_value
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.errors import InputError
from mvcodec.eval.harness import load_results, merge_parts, run_eval
from mvcodec.eval.report import asked_pairs, bd_row, group_series
from mvcodec.io.clip import ClipSource

ROOT = Path(__file__).resolve().parents[1]


def _folder(args: argparse.Namespace, part: str | None = None) -> Path:
    crop = f"_{args.crop}" if args.crop else ""
    kind = "inter" if args.codec == "mlvc" else "multiview"  # lmvc, and mv-mginr measured beside it
    return Path(args.out) / (f"{Path(args.clip).name}{crop}_{kind}_rd" + (f"_{part}" if part else ""))


def _options(args: argparse.Namespace) -> dict[str, str]:
    if args.codec == "mv-mginr":
        return {"preset": args.preset}
    options = {"weights_file": args.weights_file} if args.weights_file else {}
    if args.base_weights_file:
        options["base_weights_file"] = args.base_weights_file
    return {**options, **dict(args.option)}


def _source(args: argparse.Namespace, views: list[int] | None = None) -> ClipSource:
    return clip_window(args.clip, args.frames, args.crop, views)


def rd(args: argparse.Namespace) -> int:
    rungs = [float(q) for q in args.rungs.split(",")]
    codecs = ([] if args.no_anchor else ["x265"]) + (["mlvc"] if args.simulcast else []) + [args.codec]
    if args.anchor_only:
        codecs = ["x265"]
    qualities = {c: rungs for c in codecs if c != "x265"}
    if "x265" in codecs:
        qualities["x265"] = [float(qp) for qp in args.anchor_qps.split(",")]
    options = {f"{args.codec}:{k}": v for k, v in _options(args).items()}
    if args.simulcast and args.base_weights_file:
        options["mlvc:weights_file"] = args.base_weights_file
    out = _folder(args, args.part)
    print(f"run_eval({args.clip} first {args.frames} frames{f', centre {args.crop}' if args.crop else ''}, "
          f"{codecs}, {args.structures}, gop 32, {qualities}, {options}) -> {out}\n")
    run_eval(_source(args), codecs, out, structures=tuple(args.structures.split(",")), qualities=qualities, gop=32,
             codec_options=options)
    return 0


def merge(args: argparse.Namespace) -> int:
    points = merge_parts(args.parts, lambda name: Path(name) if "/" in name else _folder(args, name),  # or a folder
                         _folder(args))
    print(f"{len(points)} points from {args.parts} -> {_folder(args)}")
    return 0


GENERATION = re.compile(r"(?:lmvc|mlvc)(-v\d+)?")
"""A series of another weights generation ("mlvc-v2/ld": merged with the suffix -v2), not an ablation variant."""
VARIANT = re.compile(r"((?:lmvc|mlvc)(?:-v\d+)?)-(?!v\d+$)(.+)")
"""A variant of a generation's series (an ablation: "mlvc-1ref/ld" of "mlvc/ld", "lmvc-v3-interview/ld" of
"lmvc-v3/ld"): group 1 names the full model's series."""


def table(args: argparse.Namespace) -> int:
    folder = _folder(args)
    points = load_results(folder / "results.json")
    clip = json.loads((folder / "results.json").read_text())["clip"]
    print(f"{clip['views']} views x {clip['frames']} frames of {clip['width']}x{clip['height']}, "
          f"intra period {clip['gop']}\n")
    print("| series | rung | file bytes | bpp | PSNR-RGB | MS-SSIM | enc s | dec s | payload bits | estimated bits "
          "| payload / estimate | file / estimate | share of bits outside intra pictures |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in sorted((p for p in points if p.codec.startswith(("mlvc", "lmvc"))), key=lambda p: (p.series, p.bpp)):
        e = p.extra
        est, payload = e["estimated_bits"], e["real_bits"]
        intra = e.get("real_bits_intra", payload - e.get("real_bits_inter", 0))
        print(f"| {p.series} | {p.quality:g} | {p.bytes:,} | {p.bpp:.4f} | {p.psnr_rgb:.2f} | {p.ms_ssim:.4f} | "
              f"{p.encode_seconds:.0f} | {p.decode_seconds:.0f} | {payload:,} | {est:,.0f} | {payload / est:.4f} | "
              f"{8 * p.bytes / est:.4f} | {1 - intra / payload:.1%} |")
    print("\n| anchor series | QP / rung | bytes | bpp | PSNR-RGB | MS-SSIM |\n|---|---|---|---|---|---|")
    for p in sorted((p for p in points if not p.codec.startswith(("mlvc", "lmvc"))), key=lambda p: (p.series, p.bpp)):
        print(f"| {p.series} | {p.quality:g} | {p.bytes:,} | {p.bpp:.4f} | {p.psnr_rgb:.2f} | {p.ms_ssim:.4f} |")
    print()
    print((folder / "bd_rate.md").read_text())
    series = group_series(points)
    rows = []  # (test, anchor)
    generations = sorted({m.group(1) or "" for name in series if (m := GENERATION.fullmatch(name.split("/")[0]))})
    for structure in ("ld", "ra"):
        for g in generations:  # inter-view gain: lmvc of weights generation g against its backbone on each view
            if f"lmvc{g}/{structure}" in series:  # the backbone: the series of its base weights (lmvc-v4: mlvc-v3)
                base = f"{series[f'lmvc{g}/{structure}'][0].extra.get('base_weights')}/{structure}"
                simulcast = base if base in series else f"mlvc{g}/{structure}"
                if simulcast in series:
                    rows.append((f"lmvc{g}/{structure}", simulcast))
            if f"lmvc{g}/{structure}" in series and f"mv-mginr/{structure}" in series:
                rows.append((f"lmvc{g}/{structure}", f"mv-mginr/{structure}"))  # learned predictive vs INR
        for name in series:  # variants (ablations, "CODEC[-vN]-NAME/structure"): the full model as the test
            m = VARIANT.fullmatch(name.split("/")[0])
            if m and name.endswith("/" + structure) and f"{m.group(1)}/{structure}" in series:
                rows.append((f"{m.group(1)}/{structure}", name))
    if "mlvc/ra" in series and "mlvc/ld" in series:
        rows.append(("mlvc/ra", "mlvc/ld"))   # what the hierarchy gives the P model
    try:
        rows += asked_pairs(series, args.pairs)  # asked for: TEST:ANCHOR
    except InputError as exc:
        print(f"{folder}: {exc}", file=sys.stderr)
        return 2
    if rows:
        print("Against the same codec (ablations: full model as the test, the variant as the anchor; lmvc against "
              "mlvc simulcast: the inter-view gain):\n")
        print("| series | anchor | BD-rate | BD-PSNR | overlap PSNR (dB) | overlap bpp |\n|---|---|---|---|---|---|")
        for test, anchor in rows:
            print(bd_row(test, anchor, series[anchor], series[test], "psnr_rgb"))
    return 0


def speed(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    source = _source(args, [0] if args.codec == "mlvc" else None)
    codec = get_codec(args.codec, **_options(args))
    structure = args.structures.split(",")[0]
    enc_times, dec_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speed.mvc"
        for _ in range(args.repeats):
            start = time.perf_counter()
            encode_file(source, codec, EncodeSettings(quality=args.quality, structure=structure, gop=32), path)
            enc_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            n = sum(1 for _ in decode_file(path, codec=codec))
            dec_times.append(time.perf_counter() - start)
    info = source.info
    what = "view 0" if info.views == 1 else f"{info.views} views"
    print(f"| {args.codec} | {Path(args.clip).name} | {info.width}x{info.height} | {info.frames} frames of {what} "
          f"({structure}) | q{args.quality} | "
          f"{info.frames / statistics.median(enc_times):.2f} frames/s per view | "
          f"{n / info.views / statistics.median(dec_times):.2f} frames/s per view | "
          f"(median of {args.repeats}; 2 threads) |")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=("rd", "merge", "table", "speed"))
    p.add_argument("clip")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--crop", help="code the centre WxH rectangle of each frame, e.g. 640x360")
    p.add_argument("--rungs", default="0,2,4", help="rd: mlvc quality rungs")
    p.add_argument("--codec", choices=("mlvc", "lmvc", "mv-mginr"), default="mlvc")
    p.add_argument("--preset", default="fast", help="--codec mv-mginr: its fitting preset")
    p.add_argument("--weights-file", help="weights file of --codec instead of its shipped weights")
    p.add_argument("--base-weights-file", help="lmvc: the mlvc weights it extends (when not shipped)")
    p.add_argument("-O", "--option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of --codec, as mvcodec encode -O (e.g. dependent_picture=interview)")
    p.add_argument("--simulcast", action="store_true", help="rd with --codec lmvc: mlvc at the same rungs too")
    p.add_argument("--part", help="rd: write ..._inter_rd_PART (one of several parallel runs; see merge)")
    p.add_argument("--no-anchor", action="store_true", help="rd: leave x265 to another part")
    p.add_argument("--anchor-only", action="store_true", help="rd: x265 alone (--codec picks the results folder)")
    p.add_argument("--anchor-qps", default="22,27,32,37,42", help="rd: the QPs of x265")
    p.add_argument("--parts", help="merge: comma-separated PART or PART=SERIES_SUFFIX (PART: a name, or a folder)")
    p.add_argument("--pairs", help="table: more BD rows, comma-separated TEST:ANCHOR series "
                   "(e.g. mlvc-v3-key/ld:mlvc-v3-skip/ld)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--structures", default="ld", help="rd: ld and/or ra (comma-separated); speed: the first")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    return {"rd": rd, "merge": merge, "table": table, "speed": speed}[args.task](args)


if __name__ == "__main__":
    sys.exit(main())
