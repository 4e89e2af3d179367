"""``mvcodec data preview``: the contact sheet of one training item, written atomically."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mvcodec.cli import data_cmd
from mvcodec.errors import InputError
from mvcodec.io import MultiViewClip, write_png_folder


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mvcodec")
    data_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["data", "preview", *argv])


def _sheet(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB"
        return np.asarray(im)


def _expected_size(rows: int, cols: int, h: int, w: int) -> tuple[int, int]:
    g = data_cmd.GAP
    return rows * (h + g) + g, cols * (w + g) + g


def test_synthetic_preview_has_frame_flow_and_disparity_rows(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    args = _args("--views", "2", "--frames", "3", "--size", "32x48", "--seed", "1", "--textures", "skimage",
                 "--out", str(out))
    assert args.run(args) == 0
    sheet = _sheet(out)
    assert sheet.shape[:2] == _expected_size(2 * 3, 3, 32, 48)  # per view: frames, flow, disparity rows
    assert sheet.std() > 20 and len(np.unique(sheet.reshape(-1, 3), axis=0)) > 500  # not blank
    flow_row = sheet[data_cmd.GAP + 36: data_cmd.GAP + 36 + 32, data_cmd.GAP: data_cmd.GAP + 48]
    assert flow_row.std() > 0  # the flow of a moving scene is not uniform
    assert "wrote" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*partial"))  # atomic: no temporary left behind


def test_png_layout_preview_has_one_row_per_view(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 4, 40, 50, 3), dtype=np.uint8)
    write_png_folder(MultiViewClip(frames), tmp_path / "clip")
    out = tmp_path / "real.png"
    args = _args("--kind", "png", "--root", str(tmp_path / "clip"), "--views", "3", "--frames", "2",
                 "--size", "32x48", "--split", "val", "--out", str(out))
    assert args.run(args) == 0
    sheet = _sheet(out)
    assert sheet.shape[:2] == _expected_size(3, 2, 32, 48)
    g = data_cmd.GAP
    cell = sheet[g:g + 32, g:g + 48]
    np.testing.assert_array_equal(cell[20:], frames[0, 0, 4 + 20:36, 1:49][: 12])  # centre crop, below the label


def test_preview_errors_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="--root"):
        data_cmd.run(_args("--root", str(tmp_path), "--out", str(tmp_path / "a.png")))
    with pytest.raises(InputError, match="does not exist"):
        data_cmd.run(_args("--size", "32x32", "--frames", "1", "--views", "1", "--textures", "skimage",
                           "--out", str(tmp_path / "missing" / "a.png")))
    with pytest.raises(InputError, match="--index"):
        data_cmd.run(_args("--kind", "png", "--root", str(_clip(tmp_path)), "--views", "1", "--frames", "1",
                           "--size", "16x16", "--index", "99", "--out", str(tmp_path / "b.png")))
    with pytest.raises(SystemExit):
        _args("--size", "wide", "--out", "x.png")


def _clip(tmp_path: Path) -> Path:
    frames = np.zeros((1, 2, 20, 20, 3), np.uint8)
    return write_png_folder(MultiViewClip(frames), tmp_path / "tiny")
