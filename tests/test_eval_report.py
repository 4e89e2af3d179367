"""The eval report's Bjontegaard rows: overlap shown, and curves that overlap on one axis only say so."""

from __future__ import annotations

from types import SimpleNamespace

from mvcodec.eval.report import bd_row


def points(rates, psnrs):
    return [SimpleNamespace(bpp=r, psnr_rgb=p) for r, p in zip(rates, psnrs)]


def test_bd_row_reports_rate_and_overlap():
    ref = points([0.01, 0.02, 0.04, 0.08], [30.0, 33.0, 36.0, 39.0])
    test = points([0.009, 0.018, 0.036, 0.072], [30.0, 33.0, 36.0, 39.0])
    row = bd_row("b", "a", ref, test, "psnr_rgb")
    assert "| -10.00% |" in row and "30.00-39.00" in row


def test_bd_row_without_psnr_overlap_says_so():
    ref = points([0.01, 0.02, 0.04, 0.08], [33.0, 36.0, 39.0, 41.0])
    test = points([0.05, 0.07, 0.09, 0.11], [28.0, 29.0, 30.0, 31.0])
    row = bd_row("b", "a", ref, test, "psnr_rgb")
    assert "n/a (no PSNR overlap)" in row and "nan" not in row
