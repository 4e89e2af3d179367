"""The one dataset factory the training tasks call: :func:`build_dataset` (data config dict, split) -> Dataset.

::

    data_cfg["kind"] == "synthetic"  -> SyntheticDataset: generate(SceneConfig, seed(seed, split, epoch, i))
                                        item = frames + flow + disparity
    otherwise (vimeo90k | kitti | cityscapes | yuv | png)
                                     -> layouts.open_layout(kind, root, split) -> clips (lazy ClipSources)
                                     -> ClipWindowDataset: windows of T consecutive frames of V views, cropped
                                        item = frames

Items are dicts of tensors: ``frames`` float32 (V, T, 3, H, W) in [0, 1]; the synthetic kind adds ``flow``
(V, T-1, 2, H, W) (dx, dy in pixels, frame t -> t+1) and ``disparity`` (V, T, 1, H, W) (a point at x in view v is at
x - d in view v+1; see :mod:`mvcodec.data.synthetic`).

Data config keys (YAML):

=========== =============================================================================================
kind        "synthetic" | "vimeo90k" | "kitti" | "cityscapes" | "yuv" | "png"
root        folder of a real layout (:mod:`mvcodec.data.layouts`); ``val_root`` optionally another for val
views       V views per item (default 1); frames: T consecutive frames per item (default 1)
crop        [H, W] (default [256, 256]): random crop for train, centre crop for val; null = whole frames.
            The synthetic kind renders at this size directly.
seed        integer (default 0); item i depends only on (seed, split, epoch, i), never on the worker
length      synthetic items per epoch (default 1000); val_length (default length // 10, at least 1)
flip        real layouts, train only (default true): random vertical flip, and horizontal flip with the view
            order reversed, so that a mirrored rig is still a left-to-right rig
width, height, fps   the yuv layout's frame size (else a WxH in the file names) and rate
(others)    synthetic scene parameters: the fields of :class:`~mvcodec.data.synthetic.SceneConfig`
=========== =============================================================================================

Views: with fewer views than a clip has, train takes V neighbouring views starting at a random one and val takes
views 0..V-1 (so V = 1 from a stereo layout is view 0 for val, a random view for train); more views than a clip has
is an :class:`~mvcodec.errors.InputError`.  Windows: train uses every start frame, val non-overlapping windows.
Epochs: the engine may call ``dataset.set_epoch(e)`` before each epoch (as with DistributedSampler) so that train
items change from epoch to epoch; val items never do.
"""

from __future__ import annotations

import operator
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mvcodec.data.layouts import Split, open_layout
from mvcodec.data.synthetic import SceneConfig, generate
from mvcodec.data.textures import shared_bank
from mvcodec.errors import InputError
from mvcodec.io import ClipSource

DataKind = Literal["synthetic", "vimeo90k", "kitti", "cityscapes", "yuv", "png"]
KINDS: tuple[str, ...] = ("synthetic", "vimeo90k", "kitti", "cityscapes", "yuv", "png")
SPLIT_ID = {"train": 0, "val": 1}
REAL_KEYS = {"root", "val_root", "flip", "width", "height", "fps"}


def _int(value: Any, name: str, minimum: int) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise InputError(f"data config: {name} must be an integer, got {value!r}") from None
    if n < minimum:
        raise InputError(f"data config: {name} must be at least {minimum}, got {n}")
    return n


def _crop(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputError(f"data config: crop must be [height, width] or null, got {value!r}")
    return _int(value[0], "crop height", 1), _int(value[1], "crop width", 1)


def to_tensor(video: np.ndarray) -> torch.Tensor:
    """uint8 (V, T, H, W, 3) -> float32 (V, T, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 1, 4, 2, 3).contiguous().float().div_(255.0)


def item_rng(seed: int, split: Split, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item: a function of (seed, split, epoch, index) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_ID[split], epoch, index]))


class SyntheticDataset(Dataset):
    """``length`` procedural scenes (:func:`mvcodec.data.synthetic.generate`), rendered on the fly."""

    def __init__(self, scene: SceneConfig, length: int, seed: int = 0, split: Split = "train") -> None:
        self.scene, self.length, self.seed, self.split, self.epoch = scene, length, seed, split, 0
        self.bank = shared_bank(scene.textures)  # built here, once, before DataLoader workers start

    def set_epoch(self, epoch: int) -> None:
        """Train items of epoch ``epoch`` (val items do not change)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"item {index} of a {self.length}-item dataset")
        epoch = self.epoch if self.split == "train" else 0
        clip = generate(self.scene, item_rng(self.seed, self.split, epoch, index), self.bank)
        return {"frames": to_tensor(clip.frames),
                "flow": torch.from_numpy(clip.flow).permute(0, 1, 4, 2, 3).contiguous(),
                "disparity": torch.from_numpy(clip.disparity).unsqueeze(2)}


class ClipWindowDataset(Dataset):
    """Windows of ``frames`` consecutive frames of ``views`` views of real clips, cropped (see the module doc)."""

    def __init__(self, clips: Sequence[ClipSource], views: int, frames: int, crop: tuple[int, int] | None,
                 split: Split = "train", seed: int = 0, flip: bool = True) -> None:
        most = max(c.info.views for c in clips)
        if views > most:
            raise InputError(f"{views} views requested but the layout's clips have {most} "
                             f"view{'s' if most > 1 else ''} (a single-view layout cannot give multi-view items)")
        stride = 1 if split == "train" else frames
        self.windows = [(c, s) for c in clips if c.info.views >= views
                        for s in range(0, c.info.frames - frames + 1, stride)]
        if not self.windows:
            longest = max(c.info.frames for c in clips)
            raise InputError(f"no clip has {frames} frames of {views} views (the longest has {longest} frames)")
        self.views, self.frames, self.crop, self.split = views, frames, crop, split
        self.seed, self.flip, self.epoch = seed, flip, 0

    def set_epoch(self, epoch: int) -> None:
        """Crops and flips of epoch ``epoch`` (train only)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, start = self.windows[index]
        train = self.split == "train"
        rng = item_rng(self.seed, self.split, self.epoch if train else 0, index)
        info = clip.info
        first = int(rng.integers(info.views - self.views + 1)) if train else 0
        video = np.stack([clip.read_frames(v, start, start + self.frames) for v in range(first, first + self.views)])
        if self.crop is not None:
            h, w = self.crop
            if h > info.height or w > info.width:
                raise InputError(f"crop {h}x{w} (HxW) is larger than the {info.height}x{info.width} frames of "
                                 f"{getattr(clip, 'name', 'a clip')}")
            y0 = int(rng.integers(info.height - h + 1)) if train else (info.height - h) // 2
            x0 = int(rng.integers(info.width - w + 1)) if train else (info.width - w) // 2
            video = video[:, :, y0:y0 + h, x0:x0 + w]
        if train and self.flip:
            if rng.random() < 0.5:  # mirror: the rightmost camera becomes the leftmost
                video = video[::-1, :, :, ::-1]
            if rng.random() < 0.5:
                video = video[:, :, ::-1]
        return {"frames": to_tensor(video)}


def build_dataset(data_cfg: dict[str, Any], split: Split) -> Dataset:
    """The dataset a data config describes (keys in the module docstring), for ``split`` "train" or "val"."""
    if split not in SPLIT_ID:
        raise InputError(f"split must be 'train' or 'val', got {split!r}")
    if not isinstance(data_cfg, dict):
        raise InputError(f"data config must be a mapping, got {type(data_cfg).__name__}")
    cfg = dict(data_cfg)
    kind = cfg.pop("kind", None)
    if kind not in KINDS:
        raise InputError(f"data config: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    views = _int(cfg.pop("views", 1), "views", 1)
    frames = _int(cfg.pop("frames", 1), "frames", 1)
    crop = _crop(cfg.pop("crop", [256, 256]))
    seed = _int(cfg.pop("seed", 0), "seed", 0)
    if kind == "synthetic":
        length = _int(cfg.pop("length", 1000), "length", 1)
        val_length = _int(cfg.pop("val_length", max(1, length // 10)), "val_length", 1)
        misplaced = sorted(set(cfg) & REAL_KEYS)
        if misplaced:
            raise InputError(f"data config: {', '.join(misplaced)} apply to real layouts, not synthetic")
        size = {} if crop is None else {"height": crop[0], "width": crop[1]}
        scene = SceneConfig.from_dict({**cfg, "views": views, "frames": frames, **size})
        return SyntheticDataset(scene, length if split == "train" else val_length, seed, split)
    root = cfg.pop("root", None)
    val_root = cfg.pop("val_root", None)
    flip = cfg.pop("flip", True)
    if not isinstance(flip, bool):
        raise InputError(f"data config: flip must be true or false, got {flip!r}")
    options = {k: cfg.pop(k) for k in ("width", "height", "fps") if k in cfg}
    if cfg:
        raise InputError(f"data config: unknown key(s) {', '.join(sorted(cfg))} for the {kind} layout")
    folder = val_root if split == "val" and val_root is not None else root
    clips = open_layout(kind, folder, split, **options)
    return ClipWindowDataset(clips, views, frames, crop, split, seed, flip)
