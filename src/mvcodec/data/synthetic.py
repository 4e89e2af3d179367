"""A procedural multi-view video generator with ground-truth optical flow and disparity (FlyingThings3D-like).

::

    texture bank (real photos) --crop/scale/flip--> layer textures; shape_mask --> object alpha
        |
        v
    layers: background plane (far, slanted)  +  N objects (random depth, affine motion over time)
        |    each layer = texture (h, w, 4) + one 2x3 affine map per (view, frame): texture -> image
        |    map[v, t] = pose_t (translate, rotate, scale)  -  horizontal shift (v - (V-1)/2) * disparity(u)
        v
    paint far -> near with alpha (cv2.warpAffine, per-object ROI)  -> label map of the visible layer
        |                                                              |
        v                                                              v
    x gain[v, t] (brightness, exposure) + Gaussian noise      flow / disparity: per-layer affine fields
        |                                                      gathered through the label map
        v                                                              v
    frames (V, T, H, W, 3) uint8                  flow (V, T-1, H, W, 2), disparity (V, T, H, W), labels

Geometry.  The V cameras sit on a horizontal line, camera v at X = (v - (V-1)/2) * baseline, all looking down Z
with the same focal length ``focal`` (pixels) and no rotation (a rectified rig).  A scene point at depth Z has
disparity d = focal * baseline / Z pixels.  **Disparity convention**: a point seen at pixel (x, y) of view v with
disparity d = ``disparity[v, t, y, x]`` is seen at (x - d, y) in view v + 1 (and at (x + d, y) in view v - 1);
d >= 0 and nearer points have larger d.  **Flow convention**: the point seen at (x, y) in frame t of view v is at
(x + flow[..., 0], y + flow[..., 1]) in frame t + 1 of the same view (forward flow, pixels).  Both describe the
surface visible at (x, y) in the source frame, whether or not it is visible at the target (occlusions are not
masked; ``labels`` tells which layer is visible where, so occlusion masks follow from them).

Every layer is a plane whose inverse depth is affine across it (a slanted plane), so its disparity is affine in
texture coordinates and its image in every view is an exact affine warp of the texture; flow and disparity are then
affine per layer and exact up to the warp's resampling.  Objects that grow are approaching: their disparity scales
with their image scale.  Layers are painted far to near (by disparity at their centre, per frame), so near objects
occlude far ones consistently in all views.  The background's disparity stays within f * B / far * (1 +- slant)
and every object starts in front of it (its disparity within d0 * (1 +- slant), d0 drawn above the background's
maximum); only a long clip with strong scale motion can shrink an object's disparity below the background's, and
the object is still painted in front (frames and ground truth stay consistent with each other).

The design follows FlyingThings3D (Mayer et al., CVPR 2016): random textured objects, random motion, exact ground
truth; textures are real photographs (:mod:`mvcodec.data.textures`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from mvcodec.data.textures import DEFAULT_SOURCES, TextureBank, shape_mask, shared_bank
from mvcodec.errors import InputError
from mvcodec.io import MultiViewClip
from mvcodec.io.colour import KB, KG, KR


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of a procedural scene.  Motion magnitudes are per frame; each draw is uniform in +-magnitude.

    views, frames, height, width: output size; objects: (min, max) count of foreground objects; object_size:
    (min, max) object radius as a fraction of min(height, width); depth: (near, far) in scene units, the
    background plane at ``far``, objects uniform in inverse depth; focal: pixels; baseline: scene units between
    neighbouring cameras; translation: pixels/frame; rotation: degrees/frame; scale: relative size change/frame;
    camera_motion: background (camera) motion as a fraction of the object magnitudes; slant: relative disparity
    change across a layer; brightness: relative global gain change per frame; view_gain: relative exposure
    difference between cameras; noise_sigma: Gaussian sensor noise, 8-bit levels; softness: object edge blur,
    pixels; texture_scale: (min, max) photo rescale factor; textures: texture bank sources; grey: probability
    that a scene is seen by monochrome cameras (every frame R = G = B, the BT.709 luma of the colour render,
    noise added once per pixel), as many stereo and driving rigs are (EuRoC's, KITTI's grey pair).
    """

    views: int = 2
    frames: int = 3
    height: int = 256
    width: int = 256
    objects: tuple[int, int] = (3, 8)
    object_size: tuple[float, float] = (0.08, 0.3)
    depth: tuple[float, float] = (2.0, 50.0)
    focal: float = 256.0
    baseline: float = 0.15
    translation: float = 6.0
    rotation: float = 2.0
    scale: float = 0.02
    camera_motion: float = 0.5
    slant: float = 0.25
    brightness: float = 0.03
    view_gain: float = 0.05
    noise_sigma: float = 1.0
    softness: float = 0.7
    texture_scale: tuple[float, float] = (0.5, 2.0)
    textures: tuple[str, ...] = DEFAULT_SOURCES
    grey: float = 0.0

    def __post_init__(self) -> None:
        for name in ("objects", "object_size", "depth", "texture_scale", "textures"):  # YAML gives lists
            object.__setattr__(self, name, tuple(getattr(self, name)))
        checks = [
            (self.views >= 1 and self.frames >= 1, "views and frames must be at least 1"),
            (self.height >= 16 and self.width >= 16, "height and width must be at least 16"),
            (len(self.objects) == 2 and 0 <= self.objects[0] <= self.objects[1] <= 254,
             "objects must be (min, max) with 0 <= min <= max <= 254"),
            (len(self.object_size) == 2 and 0 < self.object_size[0] <= self.object_size[1] <= 1,
             "object_size must be (min, max) with 0 < min <= max <= 1"),
            (len(self.depth) == 2 and 0 < self.depth[0] < self.depth[1], "depth must be (near, far), 0 < near < far"),
            (self.focal > 0 and self.baseline >= 0, "focal must be positive and baseline non-negative"),
            (min(self.translation, self.rotation, self.scale, self.camera_motion) >= 0 and self.scale < 0.5,
             "motion magnitudes must be non-negative (scale below 0.5)"),
            (0 <= self.slant < 0.5, "slant must be in [0, 0.5)"),
            (0 <= self.brightness < 0.5 and 0 <= self.view_gain < 0.5, "brightness and view_gain must be in [0, 0.5)"),
            (self.noise_sigma >= 0 and self.softness >= 0, "noise_sigma and softness must be non-negative"),
            (len(self.texture_scale) == 2 and 0 < self.texture_scale[0] <= self.texture_scale[1],
             "texture_scale must be (min, max) with 0 < min <= max"),
            (0 <= self.grey <= 1, "grey must be a probability in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"synthetic scene: {message}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SceneConfig":
        """A config from a mapping (YAML); unknown keys are an :class:`InputError` naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"synthetic scene: unknown parameter(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise InputError(f"synthetic scene: {exc}") from None


@dataclass(frozen=True)
class SyntheticClip:
    """A generated clip and its ground truth (conventions in the module docstring).

    frames (V, T, H, W, 3) uint8 RGB; flow (V, T-1, H, W, 2) float32 (dx, dy) from frame t to t+1; disparity
    (V, T, H, W) float32 (a point at x in view v is at x - d in view v+1); labels (V, T, H, W) uint8, the layer
    visible at each pixel (0 = background, objects 1..N, the same number in every view and frame).
    """

    frames: np.ndarray
    flow: np.ndarray
    disparity: np.ndarray
    labels: np.ndarray

    def clip(self, fps: float = 30.0) -> MultiViewClip:
        return MultiViewClip(self.frames, fps=fps, view_names=tuple(f"cam{v}" for v in range(self.frames.shape[0])))


@dataclass(frozen=True)
class _Layer:
    """rgba (h, w, 4) uint8 texture + alpha; maps (V, T, 2, 3) texture -> image; disp (V, T, 3): image-domain
    disparity d = a x + b y + c; key (T,): disparity at the centre, for the painting order."""

    rgba: np.ndarray
    maps: np.ndarray
    disp: np.ndarray
    key: np.ndarray


def _homogeneous(maps: np.ndarray) -> np.ndarray:
    """(..., 2, 3) affine maps -> (..., 3, 3)."""
    out = np.zeros(maps.shape[:-2] + (3, 3))
    out[..., :2, :] = maps
    out[..., 2, 2] = 1.0
    return out


def _layer(rgba: np.ndarray, views: int, centre: np.ndarray, theta: np.ndarray, scale: np.ndarray, d0: float,
           grad: np.ndarray) -> _Layer:
    """The maps of a layer whose texture centre follows ``centre`` (T, 2) with rotation ``theta`` (T,) and scale
    ``scale`` (T,), with disparity d0 + grad . (u - u_centre) at t = 0 (scaled with the image scale after)."""
    h, w = rgba.shape[:2]
    uc = np.array([(w - 1) / 2, (h - 1) / 2])
    rot = np.stack([np.stack([np.cos(theta), -np.sin(theta)], -1), np.stack([np.sin(theta), np.cos(theta)], -1)], 1)
    pose = np.zeros((len(theta), 2, 3))
    pose[:, :, :2] = scale[:, None, None] * rot
    pose[:, :, 2] = centre - pose[:, :, :2] @ uc
    dtex = (scale / scale[0])[:, None] * np.array([grad[0], grad[1], d0 - grad @ uc])  # (T, 3), over (u, v, 1)
    offsets = np.arange(views) - (views - 1) / 2
    maps = np.repeat(pose[None], views, axis=0)
    maps[:, :, 0, :] -= offsets[:, None, None] * dtex[None]
    disp = np.einsum("tk,vtkj->vtj", dtex, np.linalg.inv(_homogeneous(maps)))
    return _Layer(rgba, maps, disp, d0 * scale / scale[0])


def _trajectory(rng: np.random.Generator, frames: int, start: np.ndarray, speed: float, spin: float,
                zoom: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (T, 2), angle (T,) and scale (T,) of a random constant-velocity affine motion."""
    t = np.arange(frames)
    velocity = rng.uniform(-speed, speed, 2)
    theta = rng.uniform(0, 2 * np.pi) + np.radians(rng.uniform(-spin, spin)) * t
    scale = (1.0 + rng.uniform(-zoom, zoom)) ** t
    return start + t[:, None] * velocity, theta, scale


def _background(cfg: SceneConfig, rng: np.random.Generator, bank: TextureBank) -> _Layer:
    """The far plane: a texture larger than the frame so the camera motion and the view shifts stay inside it."""
    H, W, T, V = cfg.height, cfg.width, cfg.frames, cfg.views
    d_far = cfg.focal * cfg.baseline / cfg.depth[1]
    m = cfg.camera_motion
    radius = np.hypot(H, W) / 2
    drift = cfg.translation * m + radius * (np.radians(cfg.rotation * m) + cfg.scale * m)
    margin = int(np.ceil(T * drift * 1.5 + d_far * (1 + cfg.slant) * (V - 1) / 2)) + 4
    tex = bank.sample(rng, H + 2 * margin, W + 2 * margin, cfg.texture_scale)
    rgba = np.dstack([tex, np.full(tex.shape[:2], 255, np.uint8)])
    centre, theta, scale = _trajectory(rng, T, np.array([(W - 1) / 2, (H - 1) / 2]), cfg.translation * m,
                                       cfg.rotation * m, cfg.scale * m)
    theta = theta - theta[0]  # the background starts upright
    grad = rng.uniform(-1, 1, 2) * 2 * cfg.slant * d_far / (H + W + 4 * margin)  # |change| <= slant * d_far
    return _layer(rgba, V, centre, theta, scale, d_far, grad)


def _object(cfg: SceneConfig, rng: np.random.Generator, bank: TextureBank, d_min: float) -> _Layer:
    """A textured random shape at a random depth in front of the background, with its own affine motion."""
    H, W = cfg.height, cfg.width
    r = max(int(rng.uniform(*cfg.object_size) * min(H, W)), int(3 * cfg.softness) + 4)
    tex = bank.sample(rng, 2 * r + 1, 2 * r + 1, cfg.texture_scale)
    alpha = shape_mask(rng, 2 * r + 1, 2 * r + 1, cfg.softness)
    rgba = np.dstack([tex, np.rint(alpha * 255).astype(np.uint8)])
    d_near = cfg.focal * cfg.baseline / cfg.depth[0]
    d0 = rng.uniform(min(d_min, d_near), d_near)
    start = rng.uniform([-0.1 * W, -0.1 * H], [1.1 * W, 1.1 * H])
    centre, theta, scale = _trajectory(rng, cfg.frames, start, cfg.translation, cfg.rotation, cfg.scale)
    grad = rng.uniform(-1, 1, 2) * cfg.slant * d0 / (2 * r)  # |change| <= slant * d0 over the patch
    return _layer(rgba, cfg.views, centre, theta, scale, d0, grad)


def _paint(layers: list[_Layer], v: int, t: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite the layers of (view v, frame t) far to near: float32 (H, W, 3) image, uint8 (H, W) labels."""
    bg = layers[0]
    canvas = cv2.warpAffine(bg.rgba[..., :3], bg.maps[v, t], (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT101).astype(np.float32)
    labels = np.zeros((height, width), np.uint8)
    order = sorted(range(1, len(layers)), key=lambda i: layers[i].key[t])
    for i in order:
        layer = layers[i]
        h, w = layer.rgba.shape[:2]
        m = layer.maps[v, t]
        corners = m[:, :2] @ np.array([[0, w - 1, 0, w - 1], [0, 0, h - 1, h - 1]]) + m[:, 2:]
        x0, y0 = np.maximum(np.floor(corners.min(axis=1)).astype(int) - 1, 0)
        x1 = min(int(np.ceil(corners[0].max())) + 2, width)
        y1 = min(int(np.ceil(corners[1].max())) + 2, height)
        if x1 <= x0 or y1 <= y0:
            continue
        roi = m.copy()
        roi[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(layer.rgba, roi, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3:].astype(np.float32) * (1 / 255)
        patch = canvas[y0:y1, x0:x1]
        patch += a * (warped[..., :3].astype(np.float32) - patch)
        labels[y0:y1, x0:x1][a[..., 0] >= 0.5] = i
    return canvas, labels


def _affine_field(coef: np.ndarray, labels: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-layer affine fields at each pixel's layer: coef (L, C, 3) float32, labels (H, W), x/y (H, W, 1)
    -> (H, W, C) float32, field = coef[label] . (x, y, 1)."""
    c = np.take(coef.reshape(len(coef), -1), labels, axis=0)  # (H, W, 3C)
    return c[..., 0::3] * x + c[..., 1::3] * y + c[..., 2::3]


NOISE_POOL_SIZE = 1 << 22
_LUMA = np.array([KR, KG, KB], np.float32)  # monochrome scenes (``SceneConfig.grey``)


@functools.lru_cache(maxsize=1)
def _noise_pool() -> np.ndarray:
    """4M standard normal float32 values, the same in every process (drawing them per frame is the slowest step)."""
    return np.random.default_rng(0x5EED).standard_normal(NOISE_POOL_SIZE, dtype=np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian noise of std ``sigma``: the normalised sum of two random windows of the pool, so i.i.d. within a
    frame and (practically) never repeated between frames.  Falls back to drawing when a frame exceeds the pool."""
    n = int(np.prod(shape))
    pool = _noise_pool()
    if n > NOISE_POOL_SIZE // 2:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    a, b = rng.integers(0, NOISE_POOL_SIZE - n + 1, 2)
    return ((pool[a:a + n] + pool[b:b + n]) * np.float32(sigma / np.sqrt(2))).reshape(shape)


def _gains(cfg: SceneConfig, rng: np.random.Generator) -> np.ndarray:
    """(V, T) gains: a per-camera exposure times a per-frame global brightness random walk."""
    view = 1 + rng.uniform(-cfg.view_gain, cfg.view_gain, cfg.views)
    steps = 1 + rng.uniform(-cfg.brightness, cfg.brightness, cfg.frames)
    steps[0] = 1.0
    return view[:, None] * np.cumprod(steps)[None, :]


def generate(cfg: SceneConfig, seed: int | np.random.SeedSequence | np.random.Generator,
             bank: TextureBank | None = None) -> SyntheticClip:
    """One random scene rendered by every camera of the rig: frames plus ground-truth flow and disparity.

    Deterministic: the same ``seed`` (and texture bank) gives identical arrays.  ``bank`` defaults to the shared
    per-process bank of ``cfg.textures``.  Shapes and conventions: see :class:`SyntheticClip` and the module doc.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bank = bank or shared_bank(cfg.textures)
    V, T, H, W = cfg.views, cfg.frames, cfg.height, cfg.width
    layers = [_background(cfg, rng, bank)]
    d_bg_max = cfg.focal * cfg.baseline / cfg.depth[1] * (1 + cfg.slant) / (1 - cfg.slant)
    for _ in range(int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))):
        layers.append(_object(cfg, rng, bank, d_bg_max))
    gains = _gains(cfg, rng)
    noise_rng = np.random.default_rng(rng.integers(2**63))
    monochrome = cfg.grey > 0 and rng.random() < cfg.grey  # drawn last, so grey = 0 leaves every scene as it was

    maps = _homogeneous(np.stack([layer.maps for layer in layers]))  # (L, V, T, 3, 3)
    flow_coef = (maps[:, :, 1:] @ np.linalg.inv(maps[:, :, :-1]) - np.eye(3))[..., :2, :]  # (L, V, T-1, 2, 3)
    disp_coef = np.stack([layer.disp for layer in layers])[..., None, :]  # (L, V, T, 1, 3)
    y, x = (g[..., None] for g in np.mgrid[0:H, 0:W].astype(np.float32))

    frames = np.empty((V, T, H, W, 3), np.uint8)
    labels = np.empty((V, T, H, W), np.uint8)
    flow = np.empty((V, max(T - 1, 0), H, W, 2), np.float32)
    disparity = np.empty((V, T, H, W), np.float32)
    for v in range(V):
        for t in range(T):
            canvas, labels[v, t] = _paint(layers, v, t, H, W)
            canvas *= np.float32(gains[v, t])
            if monochrome:
                canvas[:] = canvas @ _LUMA[:, None]
            if cfg.noise_sigma > 0:
                canvas += _noise(noise_rng, (H, W, 1) if monochrome else canvas.shape, cfg.noise_sigma)
            np.clip(np.rint(canvas), 0, 255, out=canvas)
            frames[v, t] = canvas
            coef = disp_coef[:, v, t] if t == T - 1 else np.concatenate([disp_coef[:, v, t], flow_coef[:, v, t]], 1)
            field = _affine_field(coef.astype(np.float32), labels[v, t], x, y)
            disparity[v, t] = field[..., 0]
            if t < T - 1:
                flow[v, t] = field[..., 1:]
    return SyntheticClip(frames, flow, disparity, labels)
