"""Costs of the learned predictive codecs that BENCHMARKS.md and docs/decisions.md quote, measured in one process:

    .venv/bin/python benchmarks/learned_step_costs.py train-precision [--threads 1] [--steps 6]
    .venv/bin/python benchmarks/learned_step_costs.py mlvc-profile [--threads 1] [--size 192x320]

``train-precision``: seconds per intra training step (batch 8 of 128x128, configs/intra.yaml's model), float32
against bf16 autocast, alternating (fp32, bf16, fp32, bf16) so both see the same machine load; medians.
``mlvc-profile``: 3 P frames of the inter model (configs/inter.yaml, random weights) at ``--size``, seconds per
frame and the top of a cProfile by own time (where the exact float64 convolutions show up).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def train_precision(args: argparse.Namespace) -> None:
    import mvcodec.train.tasks  # noqa: F401  (registers the tasks)
    from mvcodec.train.precision import autocast_bf16
    from mvcodec.train.task import Stage, get_task

    task = get_task("intra")
    model = task.build_model(yaml.safe_load((ROOT / "configs" / "intra.yaml").read_text())["model"])
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x, stage = torch.rand(8, 1, 1, 3, 128, 128), Stage("intra", 1)
    for precision in ("fp32", "bf16", "fp32", "bf16"):
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            with autocast_bf16("cpu", precision == "bf16"):
                out = task.loss(model, {"frames": x, "quality": torch.randint(6, (8,))}, stage,
                                torch.full((8,), 400.0))
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            times.append(time.perf_counter() - start)
        print(f"{precision}: {statistics.median(times):.3f} s per step of 8 x 128x128 (median of {args.steps})")


def mlvc_profile(args: argparse.Namespace) -> None:
    from mvcodec.models.dpb import DecodedPictureBuffer
    from mvcodec.models.inter import InterConfig, build_inter

    torch.manual_seed(0)
    model = build_inter(InterConfig.from_json(yaml.safe_load((ROOT / "configs" / "inter.yaml").read_text())["model"]))
    model.eval().update()
    h, w = (int(v) for v in args.size.split("x"))
    pictures = [torch.rand(1, 3, h, w) for _ in range(4)]
    dpb = DecodedPictureBuffer()
    dpb.put(0, 0, model.reference(pictures[0]))
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for f in range(1, 4):
        model.compress(pictures[f], dpb, 0, f, 3)
    profile.disable()
    print(f"{(time.perf_counter() - start) / 3:.2f} s per P frame at {w}x{h}")
    pstats.Stats(profile).sort_stats("tottime").print_stats(8)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=("train-precision", "mlvc-profile"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--size", default="192x320", help="mlvc-profile: HxW")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    {"train-precision": train_precision, "mlvc-profile": mlvc_profile}[args.task](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
