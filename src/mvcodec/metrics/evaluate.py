"""Quality of a reconstructed multi-view clip against its reference, accumulated frame by frame.

::

    (view, ref frame, rec frame) --add--> per-frame PSNR-RGB, PSNR-Y/U/V, MS-SSIM --sum per view-->
    result(): per view = mean over its frames; clip = mean over views (views weigh equally)

Long clips are never held in memory: :class:`MetricAccumulator` keeps only running sums, and
:func:`evaluate_clips` reads both clips through the ``ClipSource`` protocol a few frames at a time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mvcodec.errors import InputError
from mvcodec.io.clip import ClipSource, MultiViewClip
from mvcodec.metrics.msssim import ms_ssim_rgb_batch
from mvcodec.metrics.psnr import check_pair, psnr_rgb, psnr_yuv420, yuv_psnr

_FIELDS = ("psnr_rgb", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim")


@dataclass(frozen=True)
class ClipMetrics:
    """Per-view means over frames (tuples in the order of ``views``) and their means over views.

    PSNRs are in dB (each frame capped at 100 dB, see ``mvcodec.metrics.psnr``); MS-SSIM is in [0, 1], NaN
    when the accumulator was built with ``ms_ssim=False``.
    """

    views: tuple[int, ...]
    frames: tuple[int, ...]
    per_view_psnr_rgb: tuple[float, ...]
    per_view_psnr_y: tuple[float, ...]
    per_view_psnr_u: tuple[float, ...]
    per_view_psnr_v: tuple[float, ...]
    per_view_psnr_yuv: tuple[float, ...]
    per_view_ms_ssim: tuple[float, ...]
    psnr_rgb: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    ms_ssim: float

    def to_dict(self) -> dict:
        """Plain lists and floats, ready for JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class MetricAccumulator:
    """Running per-view sums of per-frame metrics.

    ``add(view, ref, rec)`` takes one frame pair, uint8 RGB (H, W, 3) each; ``add_frames`` takes (N, H, W, 3)
    pairs of one view at once (MS-SSIM is then computed in one batch).  Views may arrive in any order and
    interleaved; ``result()`` may be called at any time and reports the views seen so far, sorted.
    """

    def __init__(self, ms_ssim: bool = True) -> None:
        self.with_ms_ssim = ms_ssim
        self._sums: dict[int, np.ndarray] = {}  # view -> sums of the _FIELDS over its frames
        self._counts: dict[int, int] = {}

    def add(self, view: int, reference: np.ndarray, reconstruction: np.ndarray) -> None:
        """Add one frame pair of ``view``: uint8 RGB (H, W, 3) each."""
        check_pair(reference, reconstruction)
        self.add_frames(view, reference[None], reconstruction[None])

    def add_frames(self, view: int, reference: np.ndarray, reconstruction: np.ndarray) -> None:
        """Add N frame pairs of ``view``: uint8 RGB (N, H, W, 3) each."""
        check_pair(reference, reconstruction, ndim=4)
        if isinstance(view, bool) or not isinstance(view, (int, np.integer)) or view < 0:
            raise InputError(f"a view index must be a non-negative integer, got {view!r}")
        n = len(reference)
        values = np.empty((n, len(_FIELDS)))
        for i, (ref, rec) in enumerate(zip(reference, reconstruction)):
            y, u, v = psnr_yuv420(ref, rec)
            values[i, :5] = psnr_rgb(ref, rec), y, u, v, yuv_psnr(y, u, v)
        values[:, 5] = ms_ssim_rgb_batch(reference, reconstruction) if self.with_ms_ssim else math.nan
        view = int(view)
        self._sums[view] = self._sums.get(view, np.zeros(len(_FIELDS))) + values.sum(axis=0)
        self._counts[view] = self._counts.get(view, 0) + n

    def result(self) -> ClipMetrics:
        """Means over frames per view, then over views; raises :class:`InputError` if nothing was added."""
        if not self._counts:
            raise InputError("no frames were added, so there is nothing to measure")
        views = tuple(sorted(self._counts))
        per_view = np.stack([self._sums[v] / self._counts[v] for v in views])  # (views, fields)
        means = per_view.mean(axis=0)
        columns = {f"per_view_{name}": tuple(float(x) for x in per_view[:, i]) for i, name in enumerate(_FIELDS)}
        return ClipMetrics(views=views, frames=tuple(self._counts[v] for v in views), **columns,
                           **{name: float(means[i]) for i, name in enumerate(_FIELDS)})


def evaluate_clips(reference: np.ndarray | MultiViewClip | ClipSource,
                   reconstruction: np.ndarray | MultiViewClip | ClipSource,
                   ms_ssim: bool = True, chunk: int = 8) -> ClipMetrics:
    """Compare two clips of equal size: uint8 (V, T, H, W, 3) arrays, ``MultiViewClip`` or any ``ClipSource``.

    Frames are read ``chunk`` at a time per view and fed to a :class:`MetricAccumulator`, so a lazy source
    is never loaded whole.
    """
    ref, rec = _as_source(reference, "reference"), _as_source(reconstruction, "reconstruction")
    a, b = ref.info, rec.info
    if (a.views, a.frames, a.height, a.width) != (b.views, b.frames, b.height, b.width):
        raise InputError(f"the clips differ: reference {a.views} views x {a.frames} frames of {a.width}x"
                         f"{a.height}, reconstruction {b.views} views x {b.frames} frames of {b.width}x{b.height}")
    acc = MetricAccumulator(ms_ssim=ms_ssim)
    for view in range(a.views):
        for start in range(0, a.frames, chunk):
            stop = min(start + chunk, a.frames)
            acc.add_frames(view, ref.read_frames(view, start, stop), rec.read_frames(view, start, stop))
    return acc.result()


def _as_source(clip: np.ndarray | MultiViewClip | ClipSource, name: str) -> ClipSource:
    if isinstance(clip, np.ndarray):
        return MultiViewClip(clip)
    if isinstance(clip, ClipSource):
        return clip
    raise InputError(f"the {name} must be a (V, T, H, W, 3) uint8 array or a clip, got {type(clip).__name__}")
