"""Does a P model's motion path see motion? The encoder's flow net and the decoded motion of ``mlvc`` weights on
synthetic pairs with ground-truth flow (the generator's validation split), against zero motion. Prints markdown.

    .venv/bin/python benchmarks/flow_quality.py WEIGHTS[,WEIGHTS...] [--pairs 32] [--crop 128] [--rung 2]
                     [--threads 1]

WEIGHTS: a shipped id ("mlvc-v1"), an mlvc weights file, or a training run's weights (``RUN/final.safetensors``,
``RUN/stages/NN-name.safetensors``, ``RUN/checkpoints/step-*.safetensors``; the model config from
``RUN/config.yaml``). Columns, means over the pairs (frame 0 the reference, frame 1 the current picture):

- end-point error (px) of the flow net against the ground-truth backward flow, and that of zero flow;
- mean |flow| (px per component) of the estimate;
- warping MSE of the reference moved by: nothing, the ground-truth flow, the flow net's estimate, the decoded
  motion (the motion coder at ``--rung``, eval mode: rounded latents), and the decoded motion's estimated bpp.

A flow net whose error equals zero flow's does not follow motion (BENCHMARKS.md, "The flow net never learned");
a decoded motion that warps no better than nothing is a motion coder that carries none.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mvcodec.codecs.learned_inter import read_weights_file, zoo_weights
from mvcodec.data.datasets import build_dataset
from mvcodec.layers.warp import warp
from mvcodec.models.dpb import DecodedPicture
from mvcodec.models.inter import InterConfig, InterModel, build_inter
from mvcodec.train.checkpoint import initial_weights
from mvcodec.train.config import load_config
from mvcodec.train.tasks.inter import backward_flow


def load_inter(spec: str) -> InterModel:
    """The P model of ``spec`` (module docstring), eval mode."""
    path = Path(spec)
    if not spec.endswith(".safetensors"):
        _, model = zoo_weights(spec).models()
    elif path.parent.name in ("stages", "checkpoints") or path.name == "final.safetensors":
        run = path.parent.parent if path.parent.name in ("stages", "checkpoints") else path.parent
        model = build_inter(InterConfig.from_json(load_config(run / "config.yaml").model))
        initial_weights(model, str(path), exclude=("optim.",))  # a checkpoint also holds the optimiser's state
    else:
        _, model = read_weights_file(path).models()
    return model.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="comma-separated shipped ids, mlvc weights files or run weights")
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--rung", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = build_dataset({"kind": "synthetic", "crop": [args.crop, args.crop], "views": 1, "frames": 2,
                          "textures": ["skimage"]}, "val")
    items = [data[i] for i in range(args.pairs)]
    frames = torch.stack([it["frames"][0] for it in items])  # (P, 2, 3, H, W)
    ref, x = frames[:, 0], frames[:, 1]
    truth = backward_flow(torch.stack([it["flow"][0, 0] for it in items]))

    def mse(a: torch.Tensor) -> float:
        return (a - x).pow(2).mean().item()

    def epe(a: torch.Tensor) -> float:
        return (a - truth).pow(2).sum(1).sqrt().mean().item()

    print(f"synthetic validation pairs: {args.pairs} of {args.crop}x{args.crop}; decoded motion at rung {args.rung}\n")
    print("| weights | EPE flow net (px) | EPE zero flow | mean abs flow | warp MSE: none | ground truth | flow net | "
          "decoded motion | motion bpp (estimate) |\n|---|---|---|---|---|---|---|---|---|")
    for spec in args.weights.split(","):
        model = load_inter(spec)
        with torch.no_grad():
            out = model(x, [DecodedPicture(ref)], torch.full((args.pairs,), args.rung), motion_only=True)
        est = out["flow"]
        bpp = out["bits_motion"].mean().item() / (args.crop * args.crop)
        print(f"| {spec} | {epe(est):.3f} | {epe(torch.zeros_like(truth)):.3f} | {est.abs().mean():.3f} | "
              f"{mse(ref):.5f} | {mse(warp(ref, truth)):.5f} | {mse(warp(ref, est)):.5f} | "
              f"{mse(out['prediction']):.5f} | {bpp:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
