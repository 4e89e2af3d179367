"""The procedural multi-view generator: its ground truth (flow, disparity) explains its frames, and it is
deterministic; the texture bank; the synthetic dataset's independence from worker layout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mvcodec.data.datasets import build_dataset
from mvcodec.data.synthetic import SceneConfig, generate
from mvcodec.data.textures import TextureBank, image_files, pose2sim_frames, shape_mask, skimage_photos
from mvcodec.errors import InputError
from mvcodec.io import write_views

SMALL = SceneConfig(views=3, frames=3, height=72, width=96, objects=(3, 5), focal=96.0, textures=("skimage",))
CLEAN = replace(SMALL, brightness=0.0, view_gain=0.0, noise_sigma=0.0)


@pytest.fixture(scope="module")
def bank() -> TextureBank:
    return TextureBank.from_sources(["skimage"], max_side=256)


def _stable(labels_src: np.ndarray, labels_dst_at: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Pixels whose layer is the same at the target, away (3 px) from every layer boundary of the source."""
    edges = cv2.morphologyEx(labels_src, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return inside & (labels_dst_at == labels_src) & ~near_edge


def _warp(img: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    return cv2.remap(img.astype(np.float32), mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def _nearest(labels: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    return cv2.remap(labels, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_REPLICATE)


def test_shapes_dtypes_and_ranges(bank):
    clip = generate(SMALL, 0, bank)
    V, T, H, W = SMALL.views, SMALL.frames, SMALL.height, SMALL.width
    assert clip.frames.shape == (V, T, H, W, 3) and clip.frames.dtype == np.uint8
    assert clip.flow.shape == (V, T - 1, H, W, 2) and clip.flow.dtype == np.float32
    assert clip.disparity.shape == (V, T, H, W) and clip.disparity.dtype == np.float32
    assert clip.labels.shape == (V, T, H, W) and clip.labels.dtype == np.uint8
    assert np.isfinite(clip.flow).all() and (clip.disparity > 0).all()
    assert clip.frames.std() > 10  # textured, not flat
    assert clip.clip().frames.shape == clip.frames.shape


def test_same_seed_same_arrays_other_seed_other_scene(bank):
    a, b, c = generate(SMALL, 7, bank), generate(SMALL, 7, bank), generate(SMALL, 8, bank)
    for name in ("frames", "flow", "disparity", "labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flow_warps_next_frame_onto_current(bank, seed):
    clip = generate(CLEAN, seed, bank)
    H, W = CLEAN.height, CLEAN.width
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    gains, baselines, count = [], [], 0
    for v in range(CLEAN.views):
        for t in range(CLEAN.frames - 1):
            f = clip.flow[v, t]
            mx, my = xs + f[..., 0], ys + f[..., 1]
            inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
            ok = _stable(clip.labels[v, t], _nearest(clip.labels[v, t + 1], mx, my), inside)
            cur = clip.frames[v, t].astype(np.float32)
            err = np.abs(_warp(clip.frames[v, t + 1], mx, my) - cur).mean(axis=-1)[ok]
            zero = np.abs(clip.frames[v, t + 1].astype(np.float32) - cur).mean(axis=-1)[ok]
            gains.append(err.mean())
            baselines.append(zero.mean())
            count += ok.sum()
    assert count > 0.5 * CLEAN.views * (CLEAN.frames - 1) * H * W
    assert np.mean(gains) < 4.0, gains  # resampling error only (bilinear on photo texture)
    assert np.mean(gains) < 0.4 * np.mean(baselines)


@pytest.mark.parametrize("seed", [0, 3])
def test_disparity_maps_view_onto_next_view(bank, seed):
    clip = generate(CLEAN, seed, bank)
    H, W = CLEAN.height, CLEAN.width
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    errs, zeros = [], []
    for v in range(CLEAN.views - 1):
        for t in range(CLEAN.frames):
            mx = xs - clip.disparity[v, t]  # a point at x in view v is at x - d in view v + 1
            inside = (mx >= 0) & (mx <= W - 1)
            ok = _stable(clip.labels[v, t], _nearest(clip.labels[v + 1, t], mx, ys), inside)
            cur = clip.frames[v, t].astype(np.float32)
            errs.append(np.abs(_warp(clip.frames[v + 1, t], mx, ys) - cur).mean(axis=-1)[ok].mean())
            zeros.append(np.abs(clip.frames[v + 1, t].astype(np.float32) - cur).mean(axis=-1)[ok].mean())
    assert np.mean(errs) < 4.0, errs
    assert np.mean(errs) < 0.5 * np.mean(zeros)


def test_disparity_is_focal_times_baseline_over_depth(bank):
    """A fronto-parallel, static background sits at the far depth: d = f * B / far everywhere it shows."""
    flat = replace(CLEAN, slant=0.0, camera_motion=0.0, objects=(0, 0))
    clip = generate(flat, 0, bank)
    np.testing.assert_allclose(clip.disparity, flat.focal * flat.baseline / flat.depth[1], rtol=1e-5)
    np.testing.assert_allclose(clip.flow, 0.0, atol=1e-4)


def test_near_objects_have_larger_disparity_and_occlude(bank):
    clip = generate(replace(CLEAN, objects=(6, 6)), 5, bank)
    d, lab = clip.disparity, clip.labels
    assert d[lab > 0].min() > d[lab == 0].max()  # every object is nearer than the background it hides
    # a nearer object moves more between views: its shift (the disparity) orders the layers' view-to-view motion
    shifts = {i: d[0, 0][lab[0, 0] == i].mean() for i in np.unique(lab[0, 0])}
    near, far = max(shifts, key=shifts.get), min(shifts, key=shifts.get)
    assert far == 0 and shifts[near] > 2 * shifts[far]


def test_disparity_stays_positive_over_a_long_clip(bank):
    long = replace(SMALL, views=2, frames=12, scale=0.04, slant=0.45)
    for seed in range(3):
        clip = generate(long, seed, bank)
        assert (clip.disparity > 0).all()
        far = long.focal * long.baseline / long.depth[1]
        background = clip.disparity[clip.labels == 0]
        assert background.max() <= far * (1 + long.slant) * 1.04 ** 12 + 1e-4


def test_noise_and_brightness_change_frames_not_scene(bank):
    noisy = generate(replace(CLEAN, noise_sigma=3.0), 4, bank)
    clean = generate(CLEAN, 4, bank)
    np.testing.assert_array_equal(noisy.labels, clean.labels)
    diff = noisy.frames.astype(np.float64) - clean.frames
    unclipped = (clean.frames > 12) & (clean.frames < 243)
    assert abs(diff[unclipped].std() - 3.0) < 0.3
    bright = generate(replace(CLEAN, brightness=0.2, view_gain=0.2), 4, bank)
    ratios = bright.frames.reshape(3, 3, -1).mean(-1) / clean.frames.reshape(3, 3, -1).mean(-1)
    assert ratios.std() > 0.01 and (np.abs(ratios - 1) < 0.6).all()


def test_monochrome_scenes_are_grey_with_the_colour_scenes_geometry(bank):
    colour = generate(replace(SMALL, noise_sigma=3.0), 6, bank)
    grey = generate(replace(SMALL, noise_sigma=3.0, grey=1.0), 6, bank)
    assert (grey.frames[..., 0] == grey.frames[..., 1]).all() and (grey.frames[..., 1] == grey.frames[..., 2]).all()
    assert (colour.frames[..., 0] != colour.frames[..., 1]).mean() > 0.5
    np.testing.assert_array_equal(grey.labels, colour.labels)
    np.testing.assert_array_equal(grey.flow, colour.flow)
    luma = colour.frames.astype(np.float64) @ [0.2126, 0.7152, 0.0722]  # noise and rounding: a few levels
    unclipped = (luma > 12) & (luma < 243)
    assert np.abs(grey.frames[..., 0] - luma)[unclipped].mean() < 4.0
    mixed = [generate(replace(SMALL, grey=0.5), seed, bank).frames for seed in range(12)]
    assert 0 < sum(bool((f[..., 0] == f[..., 2]).all()) for f in mixed) < 12


@pytest.mark.parametrize("bad", [{"views": 0}, {"depth": (5.0, 1.0)}, {"objects": (4, 2)}, {"slant": 0.7},
                                 {"height": 4}, {"noise_sigma": -1.0}, {"grey": 1.5}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(InputError):
        replace(SMALL, **bad)


def test_config_from_dict_names_unknown_keys():
    assert SceneConfig.from_dict({"objects": [1, 2], "views": 4}).objects == (1, 2)
    with pytest.raises(InputError, match="unknown parameter"):
        SceneConfig.from_dict({"objcts": [1, 2]})


def test_texture_bank_sources_and_samples(tmp_path: Path, bank):
    assert len(skimage_photos()) >= 10 and len(bank) == len(skimage_photos())
    rng = np.random.default_rng(0)
    for h, w in [(40, 70), (600, 900)]:  # larger than every photo: upscaled, still covered
        tex = bank.sample(rng, h, w)
        assert tex.shape == (h, w, 3) and tex.dtype == np.uint8 and tex.std() > 1
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"v0_f{i:03d}.png"), np.full((20, 30, 3), 40 * i, np.uint8))
    assert len(image_files(tmp_path)) == 3 and len(image_files(str(tmp_path / "v*_f*.png"))) == 3
    folder = TextureBank.from_sources([str(tmp_path)])
    assert len(folder) == 3 and folder.image(1).shape == (20, 30)  # grey PNG kept as one channel
    with pytest.raises(InputError, match="matches no"):
        TextureBank.from_sources([str(tmp_path / "nothing*.png")])


def test_pose2sim_stills_come_from_the_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MVCODEC_CACHE", str(tmp_path))
    assert pose2sim_frames() == [] and not (tmp_path / "pose2sim").exists()  # not cached: nothing, no download
    rng = np.random.default_rng(0)
    write_views(rng.integers(0, 256, (2, 6, 32, 48, 3), dtype=np.uint8), tmp_path / "pose2sim", fmt="y4m")
    stills = pose2sim_frames(frames_per_view=2)
    assert [p.name for p in stills] == ["v0_f000.png", "v0_f002.png", "v1_f000.png", "v1_f002.png"]
    assert TextureBank.from_sources(["pose2sim"]).image(3).shape == (32, 48, 3)
    assert pose2sim_frames(frames_per_view=2) == stills  # second time: read back, not decoded again


def test_shape_mask_is_a_soft_solid_shape():
    rng = np.random.default_rng(1)
    for _ in range(6):
        a = shape_mask(rng, 41, 41, softness=1.0)
        assert a.shape == (41, 41) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        assert a[20, 20] > 0.99 and a[0, 0] < 0.01 and a[-1, -1] < 0.01
        assert ((a > 0.05) & (a < 0.95)).any()  # soft edge


def _synthetic_cfg(**kw) -> dict:
    return {"kind": "synthetic", "views": 2, "frames": 3, "crop": [48, 64], "length": 4, "seed": 3,
            "objects": [2, 3], "textures": ["skimage"], **kw}


def test_synthetic_dataset_items():
    ds = build_dataset(_synthetic_cfg(), "train")
    item = ds[1]
    assert len(ds) == 4
    assert item["frames"].shape == (2, 3, 3, 48, 64) and item["frames"].dtype == torch.float32
    assert 0 <= item["frames"].min() and item["frames"].max() <= 1
    assert item["flow"].shape == (2, 2, 2, 48, 64) and item["disparity"].shape == (2, 3, 1, 48, 64)
    with pytest.raises(IndexError):
        ds[4]


def test_synthetic_items_depend_only_on_seed_split_index_epoch():
    a, b = build_dataset(_synthetic_cfg(), "train"), build_dataset(_synthetic_cfg(), "train")
    later = b[3]["frames"]
    assert torch.equal(a[3]["frames"], later) and torch.equal(a[0]["frames"], b[0]["frames"])
    assert not torch.equal(build_dataset(_synthetic_cfg(), "val")[0]["frames"], a[0]["frames"])
    assert not torch.equal(build_dataset(_synthetic_cfg(seed=4), "train")[0]["frames"], a[0]["frames"])
    a.set_epoch(1)
    assert not torch.equal(a[3]["frames"], later)
    val = build_dataset(_synthetic_cfg(), "val")
    first = val[0]["frames"]
    val.set_epoch(5)
    assert torch.equal(val[0]["frames"], first) and len(val) == 1


def test_synthetic_items_do_not_depend_on_workers():
    ds = build_dataset(_synthetic_cfg(length=4), "train")
    direct = torch.stack([ds[i]["frames"] for i in range(4)])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, timeout=120)
    batched = torch.cat([batch["frames"] for batch in loader])
    assert torch.equal(direct, batched)


@pytest.mark.parametrize("cfg, match", [({"kind": "flying"}, "kind must be"),
                                        (_synthetic_cfg(crop=[48]), "crop"),
                                        (_synthetic_cfg(root="/tmp"), "real layouts"),
                                        (_synthetic_cfg(views=0), "views"),
                                        (_synthetic_cfg(blur=1), "unknown parameter")])
def test_bad_data_configs(cfg, match):
    with pytest.raises(InputError, match=match):
        build_dataset(cfg, "train")
