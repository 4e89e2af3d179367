"""Entropy-coding layer: real bits against the -log2 p estimate, and coding speed, per model.

    .venv/bin/python benchmarks/entropy_coding.py [--symbols 1000000] [--repeats 5]

Speeds are medians over ``--repeats`` runs (the machine is shared and noisy); bits are exact.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import timed

from mvcodec.entropy import CategoricalModel, EntropyBottleneck, GaussianConditional, LaplaceConditional


def report(name: str, n: int, estimate: float, encode, decode, check, repeats: int) -> None:
    data, t_enc = timed(encode, repeats)
    decoded, t_dec = timed(lambda: decode(data), repeats)
    assert check(decoded), f"{name}: round trip failed"
    real = 8 * len(data)
    print(f"| {name} | {n} | {estimate / n:.4f} | {real / n:.4f} | {100 * (real / estimate - 1):+.4f}% | "
          f"{n / t_enc / 1e6:.1f} | {n / t_dec / 1e6:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--symbols", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    n, reps = args.symbols, args.repeats
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    print(f"torch threads: {torch.get_num_threads()}\n")
    print("| model | symbols | estimate bits/sym | real bits/sym | overhead | encode Msym/s | decode Msym/s |")
    print("|---|---|---|---|---|---|---|")

    side = int(np.sqrt(n / 64))
    scales = torch.exp(torch.empty(1, 64, side, side).uniform_(-1, 3))
    means = torch.randn(1, 64, side, side) * 3
    for name, model in (("Gaussian conditional", GaussianConditional()), ("Laplace conditional", LaplaceConditional())):
        y = means + scales * torch.randn_like(scales)
        y_hat = torch.round(y - means) + means
        report(name, y.numel(), model.estimate_bits(y, scales, means), lambda: model.compress(y, scales, means),
               lambda d: model.decompress(d, scales, means), lambda out: torch.equal(out, y_hat), reps)

    eb = EntropyBottleneck(64).eval()
    eb.update()
    z = torch.randn(1, 64, side, side) * 4
    z_hat = eb.decompress(eb.compress(z), z.shape)
    report("Factorized prior (64 channels, untrained)", z.numel(), eb.estimate_bits(z), lambda: eb.compress(z),
           lambda d: eb.decompress(d, z.shape), lambda out: torch.equal(out, z_hat), reps)

    symbols = np.clip(np.rint(rng.laplace(128, 6, n)), 0, 255).astype(np.int64)
    cat = CategoricalModel.from_symbols(symbols, 256)
    report("Categorical (256 symbols, 8-bit weights)", n, cat.estimate_bits(symbols), lambda: cat.encode(symbols),
           lambda d: cat.decode(d, n), lambda out: np.array_equal(out, symbols), reps)


if __name__ == "__main__":
    main()
