"""Where the learned P picture's coding time goes, and what the exact fixed-point convolutions cost (issue 4's
speed target): one shipped ``mlvc`` P picture encoded and decoded at the given size with the time of the
convolutions apart, then the layer shapes of the decoder-side networks timed three ways:

    float64   the coding path (:mod:`mvcodec.layers.blocks`: integers in float64, exact by range)
    float32   torch's ordinary convolution (oneDNN): fast, not reproducible across thread counts
    split     the same integer sums exactly in float32: activations and weights cut into balanced digits small
              enough that every partial sum stays below 2**23, one float32 matrix product over the unfolded
              input for all digit pairs, recombined in float64 (equal to float64's result, checked)

    .venv/bin/python benchmarks/exact_conv_cost.py [--size 320x192] [--threads 1] [--repeats 3]

Prints markdown: medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys

import torch
import torch.nn.functional as F
from timing import timed

from mvcodec.codecs.learned_inter import zoo_weights
from mvcodec.layers.blocks import FRAC_BITS, integer_weight
from mvcodec.models.dpb import DecodedPictureBuffer

CONV_CALLS = ("conv2d", "conv_transpose2d")
SPLIT_LIMIT = 2.0**23   # bound of every partial sum of a float32 digit product (exact below 2**24)
WEIGHT_DIGIT_BITS = 7


def median_time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    return timed(fn, repeats, warmup=True)[1]


def digits(t: torch.Tensor, bits: int) -> list[torch.Tensor]:
    """Balanced base-``2**bits`` digits of the float64 integers ``t``, lowest first: ``t = sum d_i 2**(bits i)``,
    ``|d_i| <= 2**(bits-1)``."""
    parts, rest = [], t
    while float(rest.abs().max()) > 2.0 ** (bits - 1):
        high = torch.round(rest * 2.0**-bits)
        parts.append(rest - high * 2.0**bits)
        rest = high
    return [*parts, rest]


def split_conv(x_int: torch.Tensor, w_int: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """``conv2d(x_int, w_int)`` of float64 integers, computed exactly with float32 matrix products."""
    cout, _, kh, kw = w_int.shape
    w_parts = digits(w_int, WEIGHT_DIGIT_BITS)
    w_sum = max(float(p.abs().sum(dim=(1, 2, 3)).max()) for p in w_parts)
    x_bits = int(torch.log2(torch.tensor(SPLIT_LIMIT / max(w_sum, 1.0))).floor()) + 1
    x_parts = digits(x_int, x_bits)
    cols = F.unfold(torch.cat(x_parts).float(), (kh, kw), padding=padding, stride=stride)
    prod = torch.matmul(torch.cat(w_parts).float().reshape(len(w_parts) * cout, -1), cols).double()
    h = (x_int.shape[2] + 2 * padding - kh) // stride + 1
    w = (x_int.shape[3] + 2 * padding - kw) // stride + 1
    prod = prod.view(len(x_parts), x_int.shape[0], len(w_parts), cout, h, w)
    return sum(prod[p, :, q] * 2.0 ** (x_bits * p + WEIGHT_DIGIT_BITS * q)
               for p in range(len(x_parts)) for q in range(len(w_parts)))


def picture_profile(height: int, width: int, repeats: int) -> list[str]:
    """Encode and decode one P picture of mlvc-v3 (a moving random picture): seconds, and the convolutions'
    share of the decode (cProfile)."""
    _, inter = zoo_weights("mlvc-v3").models()
    inter.eval()
    torch.manual_seed(0)
    x0 = torch.rand(1, 3, height, width)
    x1 = x0.roll(2, -1)

    def fresh() -> DecodedPictureBuffer:
        dpb = DecodedPictureBuffer()
        dpb.put(0, 0, inter.reference(x0))
        return dpb

    with torch.no_grad():
        payload, _ = inter.compress(x1, fresh(), 0, 1, 2)
        enc = median_time(lambda: inter.compress(x1, fresh(), 0, 1, 2), repeats)
        dec = median_time(lambda: inter.decompress(payload, fresh(), 0, 1, height, width, 2), repeats)
        profile = cProfile.Profile()
        dpb = fresh()
        profile.enable()
        inter.decompress(payload, dpb, 0, 1, height, width, 2)
        profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    conv = sum(v[2] for k, v in stats.items() if any(f"torch.{c}>" in k[2] for c in CONV_CALLS))
    return [f"| mlvc-v3 P picture, {width}x{height} | {enc:.2f} s | {dec:.2f} s | "
            f"{100 * conv / total:.0f}% of the decode |"]


def layer_rows(height: int, width: int, repeats: int) -> list[str]:
    """The decoder-side layer shapes (channels at 1, 1/2, 1/4 and 1/16 of the picture), three ways each."""
    shapes = [(32, 32, 3, 1, 1), (48, 48, 3, 1, 2), (64, 64, 3, 1, 4), (32, 48, 3, 2, 1), (96, 96, 3, 1, 16)]
    rows = []
    for cin, cout, k, stride, scale in shapes:
        torch.manual_seed(0)
        x = torch.randn(1, cin, height // scale, width // scale, dtype=torch.float64) * 2  # activations ~ N(0, 4)
        x_int = (x * 2**FRAC_BITS).round()
        w_int, _ = integer_weight(torch.randn(cout, cin, k, k) * 0.1, 0)
        x32, w32 = x_int.float() * 2.0**-FRAC_BITS, w_int.float()
        exact = F.conv2d(x_int, w_int, None, stride, k // 2)
        if not torch.equal(split_conv(x_int, w_int, stride, k // 2), exact):
            raise AssertionError("split float32 convolution differs from the float64 one")
        t64 = median_time(lambda: F.conv2d(x_int, w_int, None, stride, k // 2), repeats)
        t32 = median_time(lambda: F.conv2d(x32, w32, None, stride, k // 2), repeats)
        tsp = median_time(lambda: split_conv(x_int, w_int, stride, k // 2), repeats)
        rows.append(f"| {cin} -> {cout}, {k}x{k}, stride {stride}, {width // scale}x{height // scale} | "
                    f"{1e3 * t64:.1f} ms | {1e3 * t32:.1f} ms | {1e3 * tsp:.1f} ms |")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="320x192", help="WxH of the picture (multiples of 64 need no padding)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads\n")
    print("| what | encode | decode | convolutions |\n|---|---|---|---|")
    print("\n".join(picture_profile(height, width, args.repeats)))
    print("\n| layer (decoder side) | float64 exact (coding path) | float32 (not reproducible) "
          "| split float32, exact |")
    print("|---|---|---|---|")
    print("\n".join(layer_rows(height, width, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
