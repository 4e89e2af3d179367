"""The training curve of a run (``RUN/train_log.jsonl``, written by the training engine): loss, bpp and PSNR of
the logged windows against the step, as a PNG, plus a markdown table of a few points and the throughput.

    .venv/bin/python benchmarks/training_curve.py RUN [--out benchmarks/results/NAME_curve.png] [--rows 8]

Stages that log no rate (e.g. the inter codec's flow warm-up) leave gaps in those curves.  The logged values are
means over each window of ``log_every`` steps and over the qualities drawn in it (the
engine draws a rung of the ladder per sample), so the curve shows the training loss of the whole ladder.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--out", help="PNG path (default benchmarks/results/<run name>_curve.png)")
    p.add_argument("--rows", type=int, default=8, help="table rows (evenly spaced windows)")
    args = p.parse_args()
    run = Path(args.run)
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{run}/train_log.jsonl has no logged steps yet")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"{run.name}_curve.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key in zip(axes, ("loss", "bpp", "psnr")):
        ax.plot(steps, [r.get(key, math.nan) for r in rows], lw=1)   # stages without it (flow warm-up): gaps
        ax.set_xlabel("step")
        ax.set_title(key + (" (dB, window mean)" if key == "psnr" else " (window mean)"))
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    fig.suptitle(f"{run.name}: {len(rows)} windows, {steps[-1]} steps")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"curve: {out}\n")
    print("| step | stage | loss | bpp | PSNR (dB) | lr |\n|---|---|---|---|---|---|")
    picks = sorted({round(i * (len(rows) - 1) / max(1, args.rows - 1)) for i in range(args.rows)})
    for r in (rows[i] for i in picks):
        bpp, psnr = (f"{r[k]:{f}}" if k in r else "-" for k, f in (("bpp", ".3f"), ("psnr", ".2f")))
        print(f"| {r['step']} | {r['stage']} | {r['loss']:.3f} | {bpp} | {psnr} | {r['lr']:.1e} |")
    rates = [r["images_per_s"] for r in rows[1:]] or [rows[0]["images_per_s"]]
    print(f"\nthroughput: median {statistics.median(rates):.1f} images/s over the logged windows")
    final = run / "final.json"
    if final.is_file():
        info = json.loads(final.read_text())
        print(f"final: {info['total_steps']} steps, {info['images']} images, {info['train_time_s'] / 3600:.2f} h "
              f"training time, {info['images_per_s']:.1f} images/s, {info['device']}, "
              f"{info.get('arithmetic', 'fp32')}, world size {info['world_size']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
