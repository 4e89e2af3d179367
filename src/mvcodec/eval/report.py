"""Tables and plots of an evaluation: ``bd_rate.md`` (Bjontegaard deltas against the first series), ``rd.png``."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from mvcodec.atomic import atomic_path, atomic_write_text
from mvcodec.errors import InputError
from mvcodec.metrics import bjontegaard


def group_series(points: Sequence) -> dict[str, list]:
    """Points grouped by series name, in first-seen order, each sorted by rate."""
    series: dict[str, list] = defaultdict(list)
    for p in points:
        series[p.series].append(p)
    return {name: sorted(pts, key=lambda p: p.bpp) for name, pts in series.items()}


def bd_table(points: Sequence, metric: str = "psnr_rgb") -> str:
    """Markdown: every series' RD points, and its BD-rate / BD-PSNR against the first codec of its structure."""
    series = group_series(points)
    names = list(series)
    lines = [f"## RD points ({metric})", "", "| series | quality | bytes | bpp | PSNR-RGB | PSNR-Y | YUV-PSNR | "
             "MS-SSIM | enc s | dec s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        for p in series[name]:
            lines.append(f"| {name} | {p.quality:g} | {p.bytes} | {p.bpp:.4f} | {p.psnr_rgb:.2f} | {p.psnr_y:.2f} | "
                         f"{p.psnr_yuv:.2f} | {p.ms_ssim:.4f} | {p.encode_seconds:.1f} | {p.decode_seconds:.1f} |")
    lines += ["", f"## Bjontegaard deltas ({metric}, piecewise cubic)", "",
              "Each series against the first codec's series of the same coding structure (that codec's own other "
              "structures against its first one).", "",
              "| series | anchor | BD-rate | BD-PSNR | overlap PSNR (dB) | overlap bpp |", "|---|---|---|---|---|---|"]
    anchors: dict[str, str] = {}
    for name in names:
        anchors.setdefault(series[name][0].structure, name)
    first = names[0]
    for name in names:
        anchor = anchors[series[name][0].structure]
        if name == anchor and name != first:  # the anchor codec in another structure: against its first one
            anchor = first
        if name != anchor:
            lines.append(bd_row(name, anchor, series[anchor], series[name], metric))
    lines.append("")
    lines.append("Negative BD-rate: fewer bits than the anchor for the same quality. bpp from the real file size.")
    return "\n".join(lines) + "\n"


def bd_row(name: str, anchor: str, ref: Sequence, test: Sequence, metric: str) -> str:
    """One markdown row: BD-rate and BD-PSNR of ``test`` against ``ref``, with the overlap range."""
    try:
        r = bjontegaard([p.bpp for p in ref], [getattr(p, metric) for p in ref],
                        [p.bpp for p in test], [getattr(p, metric) for p in test])
    except InputError as exc:
        return f"| {name} | {anchor} | n/a ({exc}) | | | |"
    def delta(value: float, unit: str, axis: str) -> str:
        return f"n/a (no {axis} overlap)" if math.isnan(value) else f"{value:+.{3 if unit == ' dB' else 2}f}{unit}"

    def span(low: float, high: float, digits: int) -> str:
        return "none" if math.isnan(low) else f"{low:.{digits}f}-{high:.{digits}f}"

    return (f"| {name} | {anchor} | {delta(r.bd_rate_percent, '%', 'PSNR')} | {delta(r.bd_psnr_db, ' dB', 'rate')} | "
            f"{span(r.psnr_low, r.psnr_high, 2)} | {span(r.rate_low, r.rate_high, 4)} |")


def asked_pairs(series: dict[str, list], text: str | None) -> list[tuple[str, str]]:
    """``TEST:ANCHOR,...`` (a benchmark's ``--pairs``) as (test, anchor) series names; a name that is not among
    ``series`` is an :class:`InputError` naming it."""
    pairs = []
    for pair in filter(None, (text or "").split(",")):
        test, _, anchor = pair.partition(":")
        missing = [name for name in (test, anchor) if name not in series]
        if missing:
            raise InputError(f"--pairs {pair}: no series {', '.join(missing)} (series: {', '.join(sorted(series))})")
        pairs.append((test, anchor))
    return pairs


def plot_rd(points: Sequence, path: Path, metric: str = "psnr_rgb") -> None:
    """RD curves (bpp vs ``metric``) of every series, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for name, pts in group_series(points).items():
        ax.plot([p.bpp for p in pts], [getattr(p, metric) for p in pts], marker="o", label=name)
    ax.set_xlabel("bits per pixel (real file size)")
    ax.set_ylabel({"psnr_rgb": "PSNR-RGB (dB)", "ms_ssim": "MS-SSIM"}.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_reports(points: Sequence, out: Path) -> None:
    atomic_write_text(out / "bd_rate.md", bd_table(points))
    plot_rd(points, out / "rd.png")
