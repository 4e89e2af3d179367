"""Coding plans of the learned codecs: the hierarchical-B order, references always coded first, the dependency
set, buffer lifetimes, and damaged pictures costing exactly their dependants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mvcodec.codecs.base import DecodedFrame, Skipped
from mvcodec.codecs.learned_structure import (
    check_ra_gop,
    decode_pictures,
    dependency_set,
    emit,
    last_uses,
    period_plan,
    periods,
    pictures_between_references,
    rd_cost,
    reference_weight,
)
from mvcodec.errors import BitstreamError, InputError


def test_random_access_order_of_a_32_frame_period_with_gop_8() -> None:
    plan = period_plan(0, 32, "ra", references=3, ra_gop=8)
    assert [p.frame for p in plan][:18] == [0, 8, 4, 2, 1, 3, 6, 5, 7, 16, 12, 10, 9, 11, 14, 13, 15, 24]
    assert [p.frame for p in plan if p.type == "P"] == [8, 16, 24, 31]
    by = {p.frame: p for p in plan}
    assert by[0].type == "I" and by[24].refs == (16, 8, 0) and by[8].refs == (0,)
    assert by[4].refs == (0, 8) and by[6].refs == (4, 8) and by[27].refs == (24, 31)


@pytest.mark.parametrize("start, stop, gop", [(0, 32, 8), (32, 45, 16), (5, 6, 8), (0, 17, 2), (0, 64, 64)])
def test_every_frame_once_and_references_coded_before(start: int, stop: int, gop: int) -> None:
    for structure in ("ra", "ld"):
        plan = period_plan(start, stop, structure, references=3, ra_gop=gop)
        assert sorted(p.frame for p in plan) == list(range(start, stop))
        done: set[int] = set()
        for p in plan:
            assert set(p.refs) <= done and all(start <= r < stop for r in p.refs)
            assert (p.type == "I") == (p.frame == start) and (p.type == "B") == (len(p.refs) == 2 and
                                                                                   p.refs[0] < p.frame < p.refs[1])
            done.add(p.frame)


def test_low_delay_plan_is_the_m_lvc_chain() -> None:
    plan = period_plan(10, 15, "ld", references=3)
    assert [(p.frame, p.refs) for p in plan] == [(10, ()), (11, (10,)), (12, (11, 10)), (13, (12, 11, 10)),
                                                  (14, (13, 12, 11))]


def test_the_pictures_coded_from_each_picture_of_a_hierarchy_weigh_its_distortion() -> None:
    """A B picture at distance d from its candidates is the reference of the 2(d-1) pictures between them; a
    random-access anchor of the GOP before it; a low-delay P picture of none (its decision stays greedy)."""
    by = {p.frame: p for p in period_plan(0, 32, "ra", references=3, ra_gop=8)}
    between = {t: pictures_between_references(p) for t, p in by.items()}
    assert [between[t] for t in (0, 8, 4, 2, 1, 3, 6, 5, 7, 16, 31, 27)] == [0, 7, 6, 2, 0, 0, 2, 0, 0, 7, 6, 5]
    assert all(pictures_between_references(p) == 0 for p in period_plan(0, 32, "ld", references=3))
    assert reference_weight(by[4], 0.25) == 2.5 and reference_weight(by[4], 0.0) == 1.0
    x, x_hat = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)
    assert rd_cost(x, x_hat, 16.0, 0, 2.0) == pytest.approx(2 * 117.0 * 0.01 + 1.0)


@pytest.mark.parametrize("weight, kept", [(1.0, "smaller"), (100.0, "faithful")])
def test_the_mode_decision_keeps_the_coding_of_least_weighted_cost(weight: float, kept: str) -> None:
    """cheapest: at weight 1 the smaller packet wins over a 5x smaller error (117 * 0.0025 + 1.25 against
    117 * 0.0001 + 5 bpp); a reference picture's weight of 100 turns the choice; the kept picture is the one left
    in the buffer."""
    from mvcodec.codecs.learned_inter import CodedPicture, cheapest
    from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer

    x, dpb = torch.zeros(1, 3, 8, 8), DecodedPictureBuffer()

    def coder(error: float, size: int, kind: int):
        def code() -> CodedPicture:
            x_hat = torch.full_like(x, error)
            dpb.put(0, 0, DecodedPicture(x_hat))
            return CodedPicture(bytes(size), x_hat, kind, 8.0 * size)
        return code

    coded = cheapest(x, 0, dpb, 0, 0, [coder(0.05, 10, 1), coder(0.01, 40, 3)], weight)
    error = {"smaller": 0.05, "faithful": 0.01}[kept]
    assert coded.kind == {"smaller": 1, "faithful": 3}[kept]
    assert float(dpb.get(0, 0).frame.mean()) == pytest.approx(error)


def test_periods_and_ra_gop_checks() -> None:
    assert list(periods(range(5, 40), 32, 40)) == [(0, 32), (32, 40)]
    assert check_ra_gop("16") == 16
    for bad in (0, 3, 128, "x"):
        with pytest.raises(InputError, match="ra_gop"):
            check_ra_gop(bad)


def test_buffer_lifetimes_hold_each_reference_until_its_last_use() -> None:
    plan = period_plan(0, 32, "ra", references=3, ra_gop=8)
    refs = {p.frame: p.refs for p in plan}
    order = [p.frame for p in plan]
    releases = last_uses(order, refs.__getitem__)
    alive: set[int] = set()
    most = 0
    for i, t in enumerate(order):
        assert set(refs[t]) <= alive
        alive.add(t)
        most = max(most, len(alive))
        alive -= set(releases.get(i, ()))
    assert not alive and most <= 7  # anchors 0, 8, 16 (chain), the GOP's two ends and two levels of B


def test_damaged_pictures_cost_exactly_their_dependants() -> None:
    deps = {1: [0], 2: [0], 3: [2], 4: [3], 5: [1]}
    order = [0, 1, 2, 3, 4, 5]
    assert dependency_set([4], lambda k: deps.get(k, [])) == {0, 2, 3, 4}

    def decode_one(key: int) -> np.ndarray:
        if key == 2:
            raise BitstreamError("packet 2 is damaged")
        return np.full((1, 1, 3), key, np.uint8)

    released: list[int] = []
    decoded, lost = decode_pictures(order, lambda k: deps.get(k, []), set(order), decode_one, released.append, True)
    assert sorted(decoded) == [0, 1, 5] and sorted(lost) == [2, 3, 4] and sorted(released) == order
    with pytest.raises(BitstreamError):
        decode_pictures(order, lambda k: deps.get(k, []), set(order), decode_one, released.append, False)
    out = list(emit([0], range(0, 6), {(0, k): v for k, v in decoded.items()}, {(0, k): v for k, v in lost.items()}))
    assert [type(o).__name__ for o in out] == ["DecodedFrame", "DecodedFrame", "Skipped", "DecodedFrame"]
    assert isinstance(out[2], Skipped) and out[2].frames == range(2, 5) and "packet 2" in out[2].reason
    assert isinstance(out[3], DecodedFrame) and out[3].frame == 5
