"""Does a trained P model code its latents? ``mlvc`` weights files side by side on real frames: the share of non-zero
symbols of each P-picture latent (the encoder's ``nonzero_symbol_share``), the file's bpp and the PSNR-RGB decoded
from it (mean, and of each picture along the low-delay chain), per rung. A share of 0 means the P pictures carry
only their hyper-latents (the rate collapse of BENCHMARKS.md). Prints markdown.

    .venv/bin/python benchmarks/latent_usage.py CLIP --weights A.safetensors,B.safetensors [--frames 8]
                     [--crop 320x192] [--rungs 2,5] [--threads 1] [--frame-skip off,rd]
                     [--gradients [--decoder-noise]]

``--frame-skip``: the codec's frame-latent skip modes to compare (default ``off``: every frame latent coded, the
shares above; ``rd``: the codec's default, each P picture's frame latent coded or skipped, whichever costs less).

``--gradients``: instead, one training-mode step of each P model on frames 0 -> 1 of view 0 (its own loss,
lambda_q * MSE + bpp, seed 0) and the gradient norm that reaches each of its networks: a contextual encoder
that receives next to nothing while the decoder receives a lot is a decoder ignoring its latent.

Weights: mlvc files (``python -m mvcodec.zoo.ship RUN ID --intra mvc-intra-v1`` with ``zoo_dir``), or shipped
ids ("mlvc-v1").  View 0 only, low delay, intra period 32.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from clips import clip_window

from mvcodec.api import decode_file, encode_file, measure_file
from mvcodec.codecs import EncodeSettings
from mvcodec.codecs.learned_inter import MlvcCodec
from mvcodec.codecs.learned_structure import TRAINING_LAMBDAS
from mvcodec.codecs.learned_weights import to_tensor
from mvcodec.io.manifest import CropSource
from mvcodec.metrics.psnr import psnr_rgb
from mvcodec.models.dpb import DecodedPicture


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip")
    p.add_argument("--weights", required=True, help="comma-separated mlvc weights files or shipped ids")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--crop", default="320x192")
    p.add_argument("--rungs", default="2,5")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frame-skip", default="off", help="comma-separated mlvc frame_skip modes: off, rd")
    p.add_argument("--gradients", action="store_true", help="gradient norms of one training step instead")
    p.add_argument("--decoder-noise", action="store_true", help="--gradients: decoder_quantization noise")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    source = clip_window(args.clip, args.frames, args.crop, [0])
    info = source.info
    if args.gradients:
        return gradients(args, source)
    print(f"{Path(args.clip).name} view 0, centre {info.width}x{info.height}, {info.frames} frames, low delay\n")
    print("| weights | frame_skip | rung | non-zero y | non-zero y_mv | P pictures skipped | bpp | P-picture bits "
          "(mean) | PSNR-RGB | PSNR-RGB of each picture (I, P, P, ...) |\n|---|---|---|---|---|---|---|---|---|---|")
    originals = source.read_frames(0, 0, info.frames)
    with tempfile.TemporaryDirectory() as tmp:
        for weights, mode in ((w, m) for w in args.weights.split(",") for m in args.frame_skip.split(",")):
            options = {"weights_file": weights} if weights.endswith(".safetensors") else {"weights": weights}
            codec = MlvcCodec(**options, frame_skip=mode)
            for rung in (int(r) for r in args.rungs.split(",")):
                path = Path(tmp) / "a.mvc"
                result = encode_file(source, codec, EncodeSettings(rung, "ld", gop=32), path)
                m = measure_file(source, path, codec=codec)
                share = result.extra["nonzero_symbol_share"]
                p_bits = result.extra["real_bits_inter"] / max(1, info.frames - 1)
                chain = " ".join(f"{psnr_rgb(originals[d.frame], d.rgb):.1f}" for d in decode_file(path, codec=codec))
                print(f"| {weights} | {mode} | {rung} | {share.get('y', 0):.4%} | {share.get('y_mv', 0):.4%} | "
                      f"{result.extra['frame_latent_skipped']} / {info.frames - 1} | {result.bpp:.4f} | "
                      f"{p_bits:,.0f} | {m.psnr_rgb:.2f} | {chain} |")
    return 0


NETS = ("ctx_enc", "ctx_dec", "h_a", "h_s", "prior_fusion", "to_rgb", "motion", "context")


def gradients(args: argparse.Namespace, source: CropSource) -> int:
    x0, x1 = (to_tensor(f) for f in source.read_frames(0, 0, 2))
    print(f"{Path(args.clip).name} view 0 frames 0 -> 1, centre {source.info.width}x{source.info.height}, one "
          f"training-mode step{' with decoder noise' if args.decoder_noise else ''}, seed 0\n")
    print("| weights | rung | MSE | " + " | ".join(f"grad {n}" for n in NETS) + " |\n|" + "---|" * (3 + len(NETS)))
    for weights in args.weights.split(","):
        options = {"weights_file": weights} if weights.endswith(".safetensors") else {"weights": weights}
        codec = MlvcCodec(**options)
        _, inter = codec.weights().models()  # a fresh copy: the codec's cached models stay in eval mode
        inter.train()
        inter.decoder_quantization = "noise" if args.decoder_noise else "ste"
        for rung in (int(r) for r in args.rungs.split(",")):
            torch.manual_seed(0)
            inter.zero_grad()
            out = inter(x1, [DecodedPicture(x0.clone())], torch.tensor([rung]))
            mse = ((out["x_hat"] - x1) ** 2).mean()
            loss = TRAINING_LAMBDAS[rung] * mse + out["bits"].sum() / x1[0, 0].numel()
            loss.backward()
            norms = []
            for net in NETS:
                grads = [q.grad.norm() for n, q in inter.named_parameters() if n.startswith(net) and q.grad is not None]
                norms.append(f"{float(torch.stack(grads).norm()):.4g}" if grads else "-")
            print(f"| {weights} | {rung} | {float(mse.detach()):.5f} | " + " | ".join(norms) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
