"""Readers of the standard layouts (tiny fixtures that mimic each one) and the real-layout dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mvcodec.data.datasets import build_dataset
from mvcodec.data.layouts import cityscapes, kitti, open_layout, png, vimeo90k, yuv
from mvcodec.errors import InputError
from mvcodec.io import MultiViewClip, write_png_folder
from mvcodec.io.colour import pack_i420, rgb_to_yuv420, yuv420_to_rgb

H, W = 24, 32


def _image(tag: int) -> np.ndarray:
    """A distinct frame per tag (so reading the wrong file shows)."""
    rng = np.random.default_rng(tag)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _write(path: Path, tag: int) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = _image(tag)
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return img


@pytest.fixture
def vimeo_root(tmp_path: Path) -> Path:
    for n, name in enumerate(["00001/0001", "00001/0002", "00002/0001"]):
        for i in range(1, 8):
            _write(tmp_path / "sequences" / name / f"im{i}.png", 100 * n + i)
    (tmp_path / "sep_trainlist.txt").write_text("00001/0001\n00001/0002\n\n")
    (tmp_path / "sep_testlist.txt").write_text("00002/0001\n")
    return tmp_path


@pytest.fixture
def kitti_root(tmp_path: Path) -> Path:
    for split in ("training", "testing"):
        for s, scene in enumerate(["000000", "000001"]):
            for k in range(10, 14):
                for v, view in enumerate(("image_2", "image_3")):
                    _write(tmp_path / split / view / f"{scene}_{k:02d}.png", 1000 * s + 10 * k + v)
    return tmp_path


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> Path:
    for side in ("left", "right"):
        for frame in (17, 18, 19, 40, 41):  # two snippets of sequence 000003
            name = f"aachen_000003_{frame:06d}_{side}Img8bit.png"
            _write(tmp_path / f"{side}Img8bit_sequence" / "train" / "aachen" / name, frame + (side == "right"))
        _write(tmp_path / f"{side}Img8bit_sequence" / "val" / "lindau" / f"lindau_000000_000001_{side}Img8bit.png", 7)
    return tmp_path


def test_vimeo90k_lists_septuplets_per_split(vimeo_root):
    train, val = vimeo90k(vimeo_root, "train"), vimeo90k(vimeo_root, "val")
    assert len(train) == 2 and len(val) == 1
    assert (train[0].info.views, train[0].info.frames, train[0].info.height, train[0].info.width) == (1, 7, H, W)
    np.testing.assert_array_equal(train[1].read_frames(0, 2, 4), np.stack([_image(103), _image(104)]))
    (vimeo_root / "sep_testlist.txt").write_text("00009/0001\n")
    with pytest.raises(InputError, match="00009/0001"):
        vimeo90k(vimeo_root, "val")
    (vimeo_root / "sep_trainlist.txt").unlink()
    with pytest.raises(InputError, match="sep_trainlist"):
        vimeo90k(vimeo_root, "train")


def test_kitti_scenes_are_two_view_clips(kitti_root):
    clips = kitti(kitti_root, "train")
    assert len(clips) == 2 and clips[0].info.views == 2 and clips[0].info.frames == 4
    np.testing.assert_array_equal(clips[1].read_frames(1, 1, 2)[0], _image(1000 + 110 + 1))
    (kitti_root / "training" / "image_3" / "000001_12.png").unlink()
    with pytest.raises(InputError, match="000001_12.png"):
        kitti(kitti_root, "train")
    with pytest.raises(InputError, match="image_2"):
        kitti(kitti_root / "training" / "image_2", "val")


def test_kitti_2012_colored_folders_and_runs(tmp_path):
    for k in (0, 1, 2, 5, 6):  # a gap: two clips
        for view in ("colored_0", "colored_1"):
            _write(tmp_path / view / f"000123_{k:02d}.png", k)
    clips = kitti(tmp_path, "val")
    assert [c.info.frames for c in clips] == [3, 2] and clips[0].info.view_names == ("colored_0", "colored_1")


def test_cityscapes_snippets_left_and_right(cityscapes_root):
    clips = cityscapes(cityscapes_root, "train")
    assert [c.info.frames for c in clips] == [3, 2] and all(c.info.views == 2 for c in clips)
    np.testing.assert_array_equal(clips[1].read_frames(1, 0, 1)[0], _image(41))  # right view of frame 40
    assert len(cityscapes(cityscapes_root, "val")) == 1
    (cityscapes_root / "rightImg8bit_sequence" / "train" / "aachen" / "aachen_000003_000018_rightImg8bit.png").unlink()
    with pytest.raises(InputError, match="000018_rightImg8bit"):
        cityscapes(cityscapes_root, "train")
    with pytest.raises(InputError, match="leftImg8bit_sequence"):
        cityscapes(cityscapes_root / "nothing", "train")


def _yuv_view(path: Path, frames: int, seed: int) -> np.ndarray:
    """Write ``frames`` yuv420p frames; returns what reading them back must give (RGB after the round trip)."""
    rgb = [_image(seed + t) for t in range(frames)]
    planes = [rgb_to_yuv420(f) for f in rgb]
    path.write_bytes(b"".join(pack_i420(*p) for p in planes))
    return np.stack([yuv420_to_rgb(*p) for p in planes])


def test_yuv_sequences_one_file_per_view(tmp_path):
    seq = tmp_path / "kendo"
    seq.mkdir()
    expected = [_yuv_view(seq / f"Kendo_{v}.yuv", 3, 10 * v) for v in (1, 3)]
    _yuv_view(seq / "Kendo_10.yuv", 4, 50)  # natural order puts view 10 last; 4 frames, cut to 3
    with pytest.raises(InputError, match="frame size"):
        yuv(tmp_path)
    clips = yuv(tmp_path, width=W, height=H)
    assert len(clips) == 1 and clips[0].info.views == 3 and clips[0].info.frames == 3
    assert clips[0].info.view_names == ("Kendo_1", "Kendo_3", "Kendo_10")
    np.testing.assert_array_equal(clips[0].read_frames(1, 0, 3), expected[1])
    named = tmp_path / "named"
    named.mkdir()
    _yuv_view(named / f"Balloons_{W}x{H}_0.yuv", 2, 0)
    assert yuv(named)[0].info.width == W
    with pytest.raises(InputError, match="no .yuv"):
        yuv(_empty(tmp_path), width=W, height=H)


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir(exist_ok=True)
    return tmp_path / "empty"


def test_png_folder_or_folder_of_folders(tmp_path):
    frames = np.stack([np.stack([_image(10 * v + t) for t in range(3)]) for v in range(2)])
    (tmp_path / "clips").mkdir()
    write_png_folder(MultiViewClip(frames), tmp_path / "clips" / "a")
    write_png_folder(MultiViewClip(frames[:, :2]), tmp_path / "clips" / "b")
    assert [c.info.frames for c in png(tmp_path / "clips")] == [3, 2]
    one = png(tmp_path / "clips" / "a")
    assert len(one) == 1
    np.testing.assert_array_equal(one[0].read_frames(1, 0, 3), frames[1])
    with pytest.raises(InputError, match="no v"):
        png(_empty(tmp_path))


def test_open_layout_errors(tmp_path):
    with pytest.raises(InputError, match="unknown data layout"):
        open_layout("imagenet", tmp_path, "train")
    with pytest.raises(InputError, match="needs a root"):
        open_layout("kitti", None, "train")
    with pytest.raises(InputError, match="yuv layout only"):
        open_layout("kitti", tmp_path, "train", width=3)
    with pytest.raises(InputError, match="no such folder"):
        open_layout("png", tmp_path / "missing", "train")


def test_dataset_windows_crops_and_views(kitti_root):
    cfg = {"kind": "kitti", "root": str(kitti_root), "views": 2, "frames": 3, "crop": [16, 20], "seed": 1}
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    assert len(train) == 2 * 2 and len(val) == 2  # every start (4 - 3 + 1) per scene; val: one window per scene
    item = val[1]["frames"]
    assert item.shape == (2, 3, 3, 16, 20) and item.dtype == torch.float32
    centre = np.stack([kitti(kitti_root, "val")[1].read_frames(v, 0, 3) for v in range(2)])[:, :, 4:20, 6:26]
    np.testing.assert_allclose(item.permute(0, 1, 3, 4, 2).numpy() * 255, centre, atol=1e-3)
    assert torch.equal(train[3]["frames"], build_dataset(cfg, "train")[3]["frames"])  # deterministic per index
    left = build_dataset({**cfg, "views": 1}, "val")[0]["frames"]
    full = torch.from_numpy(kitti(kitti_root, "val")[0].read_frames(0, 0, 3)[:, 4:20, 6:26]).permute(0, 3, 1, 2)
    assert torch.equal((left[0] * 255).round().to(torch.uint8), full)  # V = 1 at val: view 0


def test_dataset_flip_keeps_rig_order(kitti_root):
    cfg = {"kind": "kitti", "root": str(kitti_root), "views": 2, "frames": 2, "crop": None, "seed": 0}
    plain = build_dataset({**cfg, "flip": False}, "train")
    flipped = build_dataset(cfg, "train")
    found = False
    for i in range(len(plain)):
        a, b = plain[i]["frames"], flipped[i]["frames"]
        if torch.equal(b, a.flip(0).flip(-1)):  # mirrored: views reversed with the image
            found = True
        assert any(torch.equal(b, c) for c in (a, a.flip(-2), a.flip(0).flip(-1), a.flip(0).flip(-1).flip(-2)))
    assert found


def test_dataset_rejects_impossible_requests(vimeo_root, kitti_root):
    with pytest.raises(InputError, match="single-view"):
        build_dataset({"kind": "vimeo90k", "root": str(vimeo_root), "views": 2}, "train")
    with pytest.raises(InputError, match="larger than"):
        build_dataset({"kind": "vimeo90k", "root": str(vimeo_root), "crop": [64, 64]}, "train")[0]
    with pytest.raises(InputError, match="no clip has 9 frames"):
        build_dataset({"kind": "vimeo90k", "root": str(vimeo_root), "frames": 9}, "train")
    with pytest.raises(InputError, match="unknown key"):
        build_dataset({"kind": "kitti", "root": str(kitti_root), "objects": [1, 2]}, "train")
    vimeo = build_dataset({"kind": "vimeo90k", "root": str(vimeo_root), "frames": 7, "crop": [16, 16],
                           "val_root": str(vimeo_root)}, "val")
    assert len(vimeo) == 1 and vimeo[0]["frames"].shape == (1, 7, 3, 16, 16)
