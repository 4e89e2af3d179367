"""MS-SSIM speed: mvcodec's OpenCV implementation against pytorch-msssim (the oracle), same frames, same run.

    .venv/bin/python benchmarks/msssim_speed.py [--repeats 5]

Prints seconds per RGB frame (median of ``--repeats``) and the largest difference between the two.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from pytorch_msssim import ms_ssim
from timing import timed

from mvcodec.metrics import ms_ssim_rgb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"torch threads: {torch.get_num_threads()}\n")
    print("| frame | mvcodec (OpenCV) s | pytorch-msssim s | speed-up | max abs difference |\n|---|---|---|---|---|")
    for h, w in ((480, 752), (960, 540), (1080, 1920)):
        yy, xx = np.mgrid[0:h, 0:w]
        ref = np.stack([128 + 100 * np.sin(xx / (9 + c) + yy / 13) for c in range(3)], -1)
        ref = np.clip(ref + rng.normal(0, 8, ref.shape), 0, 255).astype(np.uint8)
        rec = np.clip(ref.astype(int) + rng.integers(-6, 7, ref.shape), 0, 255).astype(np.uint8)
        x = torch.from_numpy(ref.transpose(2, 0, 1)[None].astype(np.float32))
        y = torch.from_numpy(rec.transpose(2, 0, 1)[None].astype(np.float32))
        ours = timed(lambda: ms_ssim_rgb(ref, rec), args.repeats)[1]
        with torch.no_grad():
            lib = timed(lambda: ms_ssim(x, y, data_range=255), args.repeats)[1]
            diff = abs(ms_ssim_rgb(ref, rec) - float(ms_ssim(x, y, data_range=255)))
        print(f"| {w}x{h} | {ours:.3f} | {lib:.3f} | {lib / ours:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
