"""Where the pixels of the procedural scenes come from: a bank of real photographs, and object shapes.

::

    sources                                    TextureBank                  the generator asks for
    -------                                    -----------                  ----------------------
    "skimage"  -> skimage/data/*.png|jpg  --+
    "pose2sim" -> stills of cached videos --+-> image files, decoded on --> sample(rng, h, w) -> (h, w, 3) uint8
    "DIR" / "GLOB" -> PNG/JPEG frames     --+   first use and kept          shape_mask(rng, h, w) -> (h, w) alpha

Textures are photographs, not noise, so that the learned codecs train on natural image statistics (the point of
FlyingThings3D-style data is real texture under known motion).  scikit-image ships a few photographs inside its
wheel; they are read straight from the package folder, never through skimage's network fetchers.  The pose2sim
sample is used only if :mod:`mvcodec.data.samples` has already cached it (nothing is downloaded here).

A texture is a random crop of a random image at a random scale, randomly flipped and rotated by a multiple of
90 degrees; greyscale photographs get a random colour tint so that they do not teach the codecs grey objects.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mvcodec.errors import InputError

SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png",
    "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
    "motorcycle_right.png", "retina.jpg", "rocket.jpg", "text.png",
)
"""The photographs among scikit-image's bundled files (charts, binary masks and microscopy tiles are left out)."""

DEFAULT_SOURCES = ("skimage", "pose2sim")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
POSE2SIM_FRAMES_PER_VIEW = 2


def skimage_photos() -> list[Path]:
    """Paths of the photographs scikit-image ships (see :data:`SKIMAGE_PHOTOS`); empty if it is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [folder / name for name in SKIMAGE_PHOTOS if (folder / name).is_file()]


def image_files(pattern: str | os.PathLike) -> list[Path]:
    """The PNG/JPEG files of a folder (not recursive), or those matching a glob pattern, sorted."""
    p = Path(pattern)
    if p.is_dir():
        names = sorted(p.iterdir())
    else:
        names = sorted(Path(n) for n in glob.glob(str(pattern)))
    return [n for n in names if n.suffix.lower() in IMAGE_SUFFIXES and n.is_file()]


def pose2sim_frames(frames_per_view: int = POSE2SIM_FRAMES_PER_VIEW) -> list[Path]:
    """PNG stills of the pose2sim sample, if :mod:`mvcodec.data.samples` has cached its videos; else [].

    Decoding those 1080x1920 videos is slow (about half a second a frame), so evenly spaced frames of every view
    are decoded once and kept as PNGs beside the cached videos (``<cache>/pose2sim/textures``, written atomically).
    Nothing is downloaded here.
    """
    from mvcodec.data.samples import cache_dir

    manifest = cache_dir() / "pose2sim" / "manifest.json"
    if not manifest.is_file():
        return []
    from mvcodec.atomic import write_atomic
    from mvcodec.io import open_manifest
    from mvcodec.io._files import close_source

    folder = manifest.parent / "textures"
    source = open_manifest(manifest)
    try:
        info = source.info
        frames = sorted(set(np.linspace(0, info.frames - 1, frames_per_view + 1)[:-1].round().astype(int)))
        paths = []
        for v in range(info.views):
            for f in frames:
                path = folder / f"v{v}_f{f:03d}.png"
                if not path.is_file():
                    rgb = source.read_frames(v, int(f), int(f) + 1)[0]
                    try:
                        folder.mkdir(exist_ok=True)
                        write_atomic(path, cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())
                    except OSError:  # a read-only cache: do without this still
                        continue
                paths.append(path)
        return paths
    finally:
        close_source(source)


def _load(path: Path, max_side: int) -> np.ndarray:
    """Decode one image to uint8 (H, W, 3) RGB or (H, W) grey, longest side at most ``max_side``."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: cannot decode the texture image")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
        if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
            img = np.ascontiguousarray(img[..., 0])
    h, w = img.shape[:2]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return img


class TextureBank:
    """Real photographs to cut textures from; images are decoded on first use and kept in memory.

    ``paths`` are image files (see :meth:`from_sources`).  At most ``max_images`` are kept (evenly spaced over the
    list), each with its longest side capped at ``max_side`` pixels (memory, and crop speed).
    """

    def __init__(self, paths: Sequence[Path], max_side: int = 768, max_images: int = 64) -> None:
        if not paths:
            raise InputError("the texture bank found no images (install scikit-image, or give a folder of PNGs)")
        if max_side < 16 or max_images < 1:
            raise InputError(f"texture bank needs max_side >= 16 and max_images >= 1, got {max_side}, {max_images}")
        if len(paths) > max_images:
            keep = np.linspace(0, len(paths) - 1, max_images).round().astype(int)
            paths = [paths[i] for i in keep]
        self.paths = [Path(p) for p in paths]
        self.max_side = max_side
        self._images: dict[int, np.ndarray] = {}

    @classmethod
    def from_sources(cls, sources: Sequence[str] = DEFAULT_SOURCES, **kw) -> "TextureBank":
        """A bank over ``sources``: "skimage", "pose2sim" (only if cached), or folders / glob patterns of frames.

        A folder or pattern that matches no image is an :class:`InputError` (a typo should not go unnoticed);
        "pose2sim" without a cached sample adds nothing.
        """
        if isinstance(sources, str):
            sources = (sources,)
        paths: list[Path] = []
        for src in sources:
            if src == "skimage":
                paths += skimage_photos()
            elif src == "pose2sim":
                paths += pose2sim_frames()
            else:
                found = image_files(os.path.expanduser(src))
                if not found:
                    raise InputError(f"texture source {src!r} matches no PNG or JPEG file")
                paths += found
        return cls(paths, **kw)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` of the bank, uint8 (H, W, 3) or (H, W) for greyscale, decoded once per process."""
        if index not in self._images:
            self._images[index] = _load(self.paths[index], self.max_side)
        return self._images[index]

    def sample(self, rng: np.random.Generator, height: int, width: int,
               scale: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
        """A random texture, uint8 (height, width, 3) RGB.

        A random image is rescaled by a factor drawn log-uniformly from ``scale`` (raised where the image would
        be too small to cover the crop), cropped at a random place, flipped and rotated by k * 90 degrees.
        """
        img = self.image(int(rng.integers(len(self.paths))))
        k = int(rng.integers(4))
        th, tw = (width, height) if k % 2 else (height, width)  # size before the rotation
        ih, iw = img.shape[:2]
        lo, hi = np.log(scale[0]), np.log(scale[1])
        s = max(float(np.exp(rng.uniform(lo, hi))), th / ih, tw / iw)
        ch, cw = min(ih, int(np.ceil(th / s))), min(iw, int(np.ceil(tw / s)))
        y0, x0 = int(rng.integers(ih - ch + 1)), int(rng.integers(iw - cw + 1))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        out = cv2.resize(crop, (tw, th), interpolation=interp)
        if rng.random() < 0.5:
            out = out[:, ::-1]
        out = np.rot90(out, k)
        if out.ndim == 2:
            tint = rng.uniform(0.55, 1.0, 3).astype(np.float32)
            out = out[..., None].astype(np.float32) * tint + rng.uniform(0, 40, 3).astype(np.float32)
            out = np.clip(out, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out)


@functools.lru_cache(maxsize=4)
def shared_bank(sources: tuple[str, ...] = DEFAULT_SOURCES) -> TextureBank:
    """One :class:`TextureBank` per process and source list (DataLoader workers each build their own)."""
    return TextureBank.from_sources(sources)


def shape_mask(rng: np.random.Generator, height: int, width: int, softness: float = 1.0) -> np.ndarray:
    """A random object silhouette filling most of a (height, width) box: float32 alpha in [0, 1].

    Half the shapes are rotated ellipses, half star-shaped polygons around the centre
    (5 to 12 vertices at jittered angles and random radii).  Edges are
    antialiased and blurred by a Gaussian of sigma ``softness`` pixels (0: antialiasing only).
    """
    mask = np.zeros((height, width), np.uint8)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    ry, rx = 0.5 * (height - 1) - 2 * softness - 1, 0.5 * (width - 1) - 2 * softness - 1
    if ry < 1 or rx < 1:
        raise InputError(f"an object of {width}x{height} pixels is too small for edge softness {softness}")
    shift = 4  # cv2 drawing with 4 fractional bits
    if rng.random() < 0.5:
        axes = (rx * rng.uniform(0.5, 1.0), ry * rng.uniform(0.5, 1.0))
        angle = float(rng.uniform(0, 180))
        # an ellipse rotated inside its box must still fit: shrink to the inscribed circle when rotated
        r = min(rx, ry)
        axes = (min(axes[0], r), min(axes[1], r)) if abs(np.sin(np.radians(angle))) > 0.1 else axes
        cv2.ellipse(mask, (round(cx * 16), round(cy * 16)), (round(axes[0] * 16), round(axes[1] * 16)), angle,
                    0, 360, 255, -1, cv2.LINE_AA, shift)
    else:
        n = int(rng.integers(5, 13))
        theta = (np.arange(n) + rng.uniform(-0.35, 0.35, n)) * (2 * np.pi / n)  # gaps < pi: holds the centre
        radius = rng.uniform(0.45, 1.0, n)
        pts = np.stack([cx + rx * radius * np.cos(theta), cy + ry * radius * np.sin(theta)], axis=1)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift)
    alpha = mask.astype(np.float32) / 255.0
    if softness > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), softness)
    return alpha
