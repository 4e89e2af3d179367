"""Does a trained P model code its latents?  ``mlvc`` weights files side by side on real frames: the share of
non-zero symbols of each P-picture latent (the encoder's ``nonzero_symbol_share``), the file's bpp and the
PSNR-RGB decoded from it, per rung.  A share of 0 means the P pictures carry only their hyper-latents (the rate
collapse of BENCHMARKS.md).  Prints markdown.

    .venv/bin/python benchmarks/latent_usage.py CLIP --weights A.safetensors,B.safetensors [--frames 8]
                     [--crop 320x192] [--rungs 2,5] [--threads 1]

Weights: mlvc files (``python -m mvcodec.zoo.ship RUN ID --intra mvc-intra-v1`` with ``zoo_dir``), or shipped
ids ("mlvc-v1").  View 0 only, low delay, intra period 32.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from mvcodec.api import encode_file, measure_file
from mvcodec.codecs import EncodeSettings
from mvcodec.codecs.learned_inter import MlvcCodec
from mvcodec.io import open_clip
from mvcodec.io.clip import SubsetSource
from mvcodec.io.manifest import CropSource


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip")
    p.add_argument("--weights", required=True, help="comma-separated mlvc weights files or shipped ids")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--crop", default="320x192")
    p.add_argument("--rungs", default="2,5")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clip = open_clip(args.clip)
    source = CropSource.centre(SubsetSource(clip, [0], 0, args.frames), args.crop)
    info = source.info
    print(f"{Path(args.clip).name} view 0, centre {info.width}x{info.height}, {info.frames} frames, low delay\n")
    print("| weights | rung | non-zero y | non-zero y_mv | bpp | P-picture bits (mean) | PSNR-RGB |\n"
          "|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for weights in args.weights.split(","):
            options = {"weights_file": weights} if weights.endswith(".safetensors") else {"weights": weights}
            codec = MlvcCodec(**options)
            for rung in (int(r) for r in args.rungs.split(",")):
                path = Path(tmp) / "a.mvc"
                result = encode_file(source, codec, EncodeSettings(rung, "ld", gop=32), path)
                m = measure_file(source, path, codec=codec)
                share = result.extra["nonzero_symbol_share"]
                p_bits = result.extra["real_bits_inter"] / max(1, info.frames - 1)
                print(f"| {weights} | {rung} | {share.get('y', 0):.4%} | {share.get('y_mv', 0):.4%} | "
                      f"{result.bpp:.4f} | {p_bits:,.0f} | {m.psnr_rgb:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
