"""Coding structures of the learned predictive codecs (``mlvc``, ``lmvc``): which picture of an intra period is
I, P or B, the order they are coded in, the decoded pictures each may reference, and the decoder's side of it
(the dependency set of the frames asked for, the buffer's lifetimes, damaged packets).

::

    one plan per intra period [s, e) (periods are closed: nothing references across an intra picture)
    ld     I P P P ...    P at t references t-1, t-2, t-3 (M-LVC's chain, most recent first, clipped at s)
    ra     hierarchical B over GOPs of B frames (B = 8 by default; 2..64, a power of two):
           I at s;  anchors s+B, s+2B, ... and the period's last frame: P pictures referencing the previous
           anchors (a chain one GOP apart, as in ld);  between anchors a < b the frame m = (a+b)//2 is a B picture
           with the candidates (a, b), then (a, m) and (m, b), depth first.
           coding order, B = 8, period 32:  0 8 4 2 1 3 6 5 7 16 12 10 9 11 14 13 15 24 20 ... 31 27 25 ...
    intra  every picture I (intra period 1)

B pictures on the P model: the backbone has no bidirectional model (Uni-LVC, a later issue, brings one), so a B
picture is coded by the P model from one of its two candidates, as the first P picture after an I picture
(one reference, no motion history).  The encoder codes it from both and keeps the lower rate-distortion cost
``lambda_q * MSE + bits per pixel`` (:func:`rd_cost`, ``lambda_q`` the rung's training weight); the packet kind
says which candidate, so the dependency set of a frame is known from the container's index alone
(:func:`dependency_set`): a frame needs at most log2(B) B pictures of its GOP, the GOP's anchors and the
anchors and I picture before them.  Frame 17 of a period at B = 8 reads 17 -> 16 or 18 (-> 16 or 20 -> 16 or
24), then the anchors 16, 8 and the I picture 0: 4 to 7 packets of the period's 32.  The encoder's option
``b_reference=past|future`` skips the search (half the B pictures' encoding time) and always takes that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import torch

from mvcodec.codecs.base import DecodedFrame, Skipped
from mvcodec.errors import BitstreamError, InputError

RA_GOPS = (2, 4, 8, 16, 32, 64)
DEFAULT_RA_GOP = 8

# The rate-distortion weights the shipped learned models were trained with, one per quality rung (configs/
# intra.yaml, inter.yaml, multiview.yaml: loss = lambda * MSE(pixels in [0, 1]) + bpp).  Used only by the
# encoder's choices (which B candidate), so a model trained with another ladder still decodes exactly.
TRAINING_LAMBDAS = (117.0, 227.6, 435.7, 845.3, 1625.6, 3140.9)

Key = TypeVar("Key")


@dataclass(frozen=True)
class PlannedPicture:
    """One picture of a period's plan: ``type`` "I", "P" or "B"; ``refs``: none (I), the P picture's reference
    chain (most recent first), or the B picture's two candidates (past, future)."""

    frame: int
    type: str
    refs: tuple[int, ...] = ()


def check_ra_gop(value: object, where: str = "ra_gop") -> int:
    """``value`` as a hierarchical GOP size (one of :data:`RA_GOPS`); anything else is an :class:`InputError`."""
    try:
        gop = int(str(value))
    except ValueError:
        gop = -1
    if gop not in RA_GOPS:
        raise InputError(f"{where} must be one of {', '.join(map(str, RA_GOPS))} (frames), got {value!r}")
    return gop


def period_plan(start: int, stop: int, structure: str, references: int, ra_gop: int = DEFAULT_RA_GOP,
                ) -> list[PlannedPicture]:
    """The pictures of the intra period ``[start, stop)`` in coding order (module docstring)."""
    if stop <= start:
        raise ValueError(f"empty intra period {start}:{stop}")
    plan = [PlannedPicture(start, "I")]
    if structure != "ra":
        for t in range(start + 1, stop):
            plan.append(PlannedPicture(t, "P", tuple(range(t - 1, max(start, t - references) - 1, -1))))
        return plan
    anchors = list(range(start, stop, ra_gop))
    if anchors[-1] != stop - 1:
        anchors.append(stop - 1)
    for k in range(1, len(anchors)):
        chain = tuple(anchors[k - 1::-1][:references])
        plan.append(PlannedPicture(anchors[k], "P", chain))
        _bisect(anchors[k - 1], anchors[k], plan)
    return plan


def _bisect(a: int, b: int, plan: list[PlannedPicture]) -> None:
    if b - a < 2:
        return
    m = (a + b) // 2
    plan.append(PlannedPicture(m, "B", (a, b)))
    _bisect(a, m, plan)
    _bisect(m, b, plan)


def plan_of(start: int, stop: int, structure: str, references: int, ra_gop: int) -> dict[int, PlannedPicture]:
    """:func:`period_plan` by frame."""
    return {p.frame: p for p in period_plan(start, stop, structure, references, ra_gop)}


def periods(frames: range, gop: int, total: int) -> Iterator[tuple[int, int]]:
    """The intra periods ``[s, e)`` (of a clip of ``total`` frames, period ``gop``) that hold ``frames``."""
    for s in range(frames.start - frames.start % gop, frames.stop, gop):
        yield s, min(s + gop, total)


def rd_cost(x: torch.Tensor, x_hat: torch.Tensor, bits: float, quality: int, distortion_weight: float = 1.0,
            ) -> float:
    """``w * lambda_q * MSE + bits per pixel`` of a reconstruction: ``x``, ``x_hat`` (1, 3, H, W) in [0, 1];
    ``w`` = ``distortion_weight`` (:func:`reference_weight`)."""
    lam = TRAINING_LAMBDAS[min(quality, len(TRAINING_LAMBDAS) - 1)]
    mse = float(((x_hat.double() - x.double()) ** 2).mean())
    return distortion_weight * lam * mse + bits / (x.shape[-1] * x.shape[-2])


def pictures_between_references(p: PlannedPicture) -> int:
    """How many pictures of the plan lie between ``p`` and its nearest reference(s), the pictures that the
    hierarchy will code from ``p`` (directly or through others): a B picture with candidates (a, b): b - a - 2;
    a P picture: p.frame - refs[0] - 1 (a random-access anchor: the GOP before it; a low-delay P picture: 0);
    an I picture: 0."""
    if p.type == "B":
        return p.refs[1] - p.refs[0] - 2
    return p.frame - p.refs[0] - 1 if p.type == "P" else 0


def reference_weight(p: PlannedPicture, alpha: float) -> float:
    """The distortion weight of a mode decision for picture ``p``: ``1 + alpha * n``, n =
    :func:`pictures_between_references`.  A greedy decision (``alpha`` 0) weighs a picture's distortion as if
    nothing were predicted from it; in a hierarchy a reference picture's error reaches the n pictures coded from
    it, as the QP offsets of a hierarchical GOP in HM and x265 (lower QP for lower temporal layers) assume."""
    return 1.0 + alpha * pictures_between_references(p)


# ---------------------------------------------------------------------------------------------- the decoder's side
def dependency_set(wanted: Iterable[Key], deps: Callable[[Key], Iterable[Key]]) -> set[Key]:
    """Every picture the pictures ``wanted`` depend on, directly or not, and themselves."""
    needed: set[Key] = set()
    todo = list(wanted)
    while todo:
        key = todo.pop()
        if key not in needed:
            needed.add(key)
            todo.extend(deps(key))
    return needed


def last_uses(order: Sequence[Key], deps: Callable[[Key], Iterable[Key]]) -> dict[int, list[Key]]:
    """Position in ``order`` -> the pictures no later picture of ``order`` references (release them there)."""
    last = {key: i for i, key in enumerate(order)}
    for i, key in enumerate(order):
        for d in deps(key):
            if d in last:
                last[d] = max(last[d], i)
    out: dict[int, list[Key]] = {}
    for key, i in last.items():
        out.setdefault(i, []).append(key)
    return out


def decode_pictures(order: Sequence[Key], deps: Callable[[Key], Iterable[Key]], keep: set[Key],
                    decode_one: Callable[[Key], np.ndarray], release: Callable[[Key], None], skip_damaged: bool,
                    ) -> tuple[dict[Key, np.ndarray], dict[Key, str]]:
    """Decode the pictures of ``order`` (coding order; only those needed) with ``decode_one``; ``release`` each
    after its last use.  Returns (the pictures of ``keep`` decoded, the pictures lost -> why).  A damaged
    picture (``BitstreamError``) is raised, or with ``skip_damaged`` lost with every picture depending on it."""
    decoded: dict[Key, np.ndarray] = {}
    lost: dict[Key, str] = {}
    releases = last_uses(order, deps)
    for i, key in enumerate(order):
        why = next((lost[d] for d in deps(key) if d in lost), None)
        if why is None:
            try:
                picture = decode_one(key)
                if key in keep:
                    decoded[key] = picture
            except BitstreamError as exc:
                if not skip_damaged:
                    raise
                why = str(exc)
        if why is not None:
            lost[key] = why
        for done in releases.get(i, ()):
            release(done)
    return decoded, lost


def emit(views: Sequence[int], frames: range, decoded: dict[tuple[int, int], np.ndarray],
         lost: dict[tuple[int, int], str]) -> Iterator[DecodedFrame | Skipped]:
    """Frames ``frames`` of each of ``views`` in order: decoded ones, and one :class:`Skipped` per run of lost
    frames (each run in its place, naming the first damaged packet it depends on)."""
    for v in views:
        run: list[int] = []
        for t in frames:
            if (v, t) in lost:
                run.append(t)
                continue
            if run:
                yield _skipped(v, run, lost[(v, run[0])])
                run = []
            yield DecodedFrame(v, t, decoded[(v, t)])
        if run:
            yield _skipped(v, run, lost[(v, run[0])])


def _skipped(view: int, run: list[int], why: str) -> Skipped:
    return Skipped(view, range(run[0], run[-1] + 1),
                   f"{why} (frames {run[0]}:{run[-1] + 1} of view {view} depend on it)")
