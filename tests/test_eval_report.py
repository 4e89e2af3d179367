"""The eval report's Bjontegaard rows: overlap shown, and curves that overlap on one axis only say so."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mvcodec.errors import InputError
from mvcodec.eval.report import asked_pairs, bd_row


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


def test_asked_pairs_name_two_series_each_and_refuse_unknown_ones():
    series = {"mvc-intra/intra": [], "mvc-intra-v1/intra": [], "x265/intra": []}
    assert asked_pairs(series, None) == [] and asked_pairs(series, "") == []
    assert asked_pairs(series, "mvc-intra/intra:mvc-intra-v1/intra,mvc-intra/intra:x265/intra") == [
        ("mvc-intra/intra", "mvc-intra-v1/intra"), ("mvc-intra/intra", "x265/intra")]
    with pytest.raises(InputError, match="no series mvc-intra-v9/intra"):
        asked_pairs(series, "mvc-intra-v9/intra:x265/intra")


def test_merge_results_joins_parts_renames_variants_and_refuses_duplicates(tmp_path):
    """merge_results: the points of parallel eval folders in one results.json whose files resolve from the merged
    folder; a part's series renamed with a suffix; the same series point in two parts is an error."""
    import json

    import pytest
    from conftest import synthetic_clip

    from mvcodec.errors import InputError
    from mvcodec.eval.harness import load_results, merge_parts, merge_results, run_eval

    clip = synthetic_clip(1, 2, 32, 48)
    for name, qp in (("a", 30), ("b", 40), ("c", 40)):
        run_eval(clip, ["x264"], tmp_path / name, structures=("ld",), qualities=[qp], progress=False)
    points = merge_results([tmp_path / "a", tmp_path / "b", tmp_path / "c"], tmp_path / "m", {"c": "-variant"})
    assert sorted(p.series for p in points) == ["x264-variant/ld", "x264/ld", "x264/ld"]
    merged = load_results(tmp_path / "m" / "results.json")
    assert all((tmp_path / "m" / p.file).is_file() for p in merged)
    assert json.loads((tmp_path / "m" / "results.json").read_text())["clip"]["frames"] == 2
    assert "x264-variant/ld" in (tmp_path / "m" / "bd_rate.md").read_text()
    # a benchmark's --parts: the same merge, named parts and suffixes from one string
    named = merge_parts("a,b,c=-variant", lambda name: tmp_path / name, tmp_path / "m1")
    assert sorted(p.series for p in named) == sorted(p.series for p in points)
    with pytest.raises(InputError, match="two parts"):
        merge_results([tmp_path / "b", tmp_path / "c"], tmp_path / "m2")
    with pytest.raises(InputError, match="results.json"):
        merge_results([tmp_path / "nowhere"], tmp_path / "m3")
