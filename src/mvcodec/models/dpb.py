"""The decoded picture buffer (DPB): decoded pictures keyed by (view, frame), with what later frames reuse.

::

    put((view, frame), DecodedPicture(frame (1,3,H,W), feature (1,N,H,W) | None, motion (1,2,H,W) | None))
        -> evicts the oldest frame of that view beyond ``capacity`` pictures per view
    references(view, frame, count) -> [picture at frame-1, frame-2, ...]   most recent first, at most ``count``

A reference chain follows decoded motion: picture ``frame-k-1`` can be aligned to the current frame only through
the motion fields of the pictures in between (M-LVC's composed motion, digest mlvc.md), so :meth:`references`
stops after a picture without motion (an intra picture).  At the start of an intra period the chain is therefore
1, then 2, then 3 pictures long, whatever the buffer still holds.

The single-view inter codec reads (v, t-1), (v, t-2), ... of its own view; a multi-view codec adds the pictures
of other views under their own keys (``get`` / ``put`` with any (view, frame)) and reads them the same way.
Everything stored is the decoder's own data (float64 on the coding path), so encoder and decoder buffers are equal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch


@dataclass
class DecodedPicture:
    """One decoded picture and its side data.

    ``frame``: (1, 3, H, W) reconstruction in [0, 1] (padded size of the model); ``feature``: (1, N, H, W) the
    propagated feature before the final RGB conv (DCVC-TCM), None for intra pictures; ``motion``: (1, 2, H, W)
    the decoded motion from this picture to the previous one (pixels), None for intra pictures; ``latents``:
    the decoded latents of a P picture by name ("y_mv" (1,mv_M,H/16,W/16), "y" (1,M,H/16,W/16)), which the
    dependent views of a multi-view codec use as inter-view priors (None for intra pictures)."""

    frame: torch.Tensor
    feature: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    latents: dict[str, torch.Tensor] | None = None

    def without_motion(self) -> DecodedPicture:
        """This picture as the start of a reference chain (as an intra picture): its motion dropped."""
        return replace(self, motion=None)


class DecodedPictureBuffer:
    """Decoded pictures by (view, frame) with ``capacity`` pictures per view (module docstring)."""

    def __init__(self, capacity: int = 4) -> None:
        if capacity < 1:
            raise ValueError(f"a decoded picture buffer holds at least one picture, got capacity {capacity}")
        self.capacity = capacity
        self._pictures: dict[tuple[int, int], DecodedPicture] = {}

    def put(self, view: int, frame: int, picture: DecodedPicture) -> None:
        """Store ``picture`` as (view, frame), replacing one already there, then evict the view's oldest frames."""
        self._pictures[(view, frame)] = picture
        held = sorted(f for v, f in self._pictures if v == view)
        for old in held[: max(0, len(held) - self.capacity)]:
            del self._pictures[(view, old)]

    def get(self, view: int, frame: int) -> DecodedPicture:
        """The picture (view, frame); a ``KeyError`` naming what the buffer holds when it is not there."""
        try:
            return self._pictures[(view, frame)]
        except KeyError:
            raise KeyError(f"picture (view {view}, frame {frame}) is not in the decoded picture buffer "
                           f"(holds {sorted(self._pictures)})") from None

    def references(self, view: int, frame: int, count: int) -> list[DecodedPicture]:
        """Up to ``count`` pictures ``frame-1, frame-2, ...`` of ``view`` (most recent first) linked by motion.

        ``frame - 1`` must be there (a P picture needs its reference); the chain stops at a missing picture or
        after a picture without motion."""
        return self.chain(view, range(frame - 1, frame - 1 - count, -1))

    def chain(self, view: int, frames: Sequence[int]) -> list[DecodedPicture]:
        """The pictures ``frames`` of ``view`` (most recent first) as a motion-linked reference chain: the first
        must be there; the chain stops at a missing picture or after a picture without motion."""
        refs = [self.get(view, frames[0])]
        for f in frames[1:]:
            if refs[-1].motion is None or (view, f) not in self._pictures:
                break
            refs.append(self._pictures[(view, f)])
        return refs

    def remove(self, view: int, frame: int) -> None:
        """Forget picture (view, frame) (no error when it is not there)."""
        self._pictures.pop((view, frame), None)

    def clear(self, view: int | None = None) -> None:
        """Forget every picture (of ``view`` only, when given)."""
        self._pictures = {k: p for k, p in self._pictures.items() if view is not None and k[0] != view}

    def keys(self) -> list[tuple[int, int]]:
        return sorted(self._pictures)

    def __contains__(self, key: object) -> bool:
        return key in self._pictures

    def __len__(self) -> int:
        return len(self._pictures)
