"""Parameters and multiply-accumulates per pixel of the learned predictive models (issues 4 and 5), counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions, transposed convolutions and matrix products; warping
and element-wise operations are not counted) on one forward pass of a 640x360 picture (padded to 640x384),
encoder and decoder together (the training forward codes and reconstructs).

    .venv/bin/python benchmarks/model_costs.py            (default configs; a markdown table for BENCHMARKS.md)
"""

from __future__ import annotations

import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

from mvcodec.models.dpb import DecodedPicture
from mvcodec.models.inter import build_inter
from mvcodec.models.intra import build_intra
from mvcodec.models.multiview import DependentConfig, InterViewRefs, build_dependent

H, W = 384, 640


def macs_per_pixel(run) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops() / 2 / (H * W)


def main() -> int:
    torch.manual_seed(0)
    x = torch.rand(1, 3, H, W)
    q = torch.tensor([1])
    intra, inter, dep = build_intra().eval(), build_inter().eval(), build_dependent(DependentConfig()).eval()
    lean = build_dependent(DependentConfig(iv_context=False, hdc_fer=False)).eval()  # lmvc-v7's and lmvc-v8's switches
    unshifted = build_dependent(DependentConfig(iv_context=False, hdc_fer=False, hdc_shift=False)).eval()  # lmvc-v9's
    p_picture = DecodedPicture(x, torch.rand(1, inter.cfg.N, H, W), torch.zeros(1, 2, H, W))
    base = DecodedPicture(x, torch.rand(1, inter.cfg.N, H, W), torch.zeros(1, 2, H, W),
                          {"y_mv": torch.zeros(1, inter.cfg.mv_M, H // 16, W // 16),
                           "y": torch.zeros(1, inter.cfg.M, H // 16, W // 16)})
    rows = [
        ("mvc-intra (I picture)", intra, lambda: intra(x, q)),
        ("mlvc P picture, 1 reference (after an I picture)", inter, lambda: inter(x, [DecodedPicture(x)], q)),
        ("mlvc P picture, 3 references", inter, lambda: inter(x, [p_picture] * 3, q)),
        ("lmvc dependent P picture, 3 references", dep,
         lambda: dep(x, [p_picture] * 3, q, side=InterViewRefs(base, base))),
        ("lmvc dependent P picture, 3 references, no inter-view contexts or HDC-FER (lmvc-v7, lmvc-v8)", lean,
         lambda: lean(x, [p_picture] * 3, q, side=InterViewRefs(base, base))),
        ("the same with HDC-EM's shift off (lmvc-v9)", unshifted,
         lambda: unshifted(x, [p_picture] * 3, q, side=InterViewRefs(base, base))),
    ]
    print(f"torch {torch.__version__}; one forward pass at {W}x{H}, encoder + decoder\n")
    print("| model | parameters | kMAC per pixel |\n|---|---|---|")
    for name, model, run in rows:
        params = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {params / 1e6:.2f} M | {macs_per_pixel(run) / 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
