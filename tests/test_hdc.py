"""The hybrid disparity compensation blocks (layers.hdc): the shift volume, the score picking the true
disparity, the two ablations, any picture size, gradients, and a thread-independent exact (float64) face."""

from __future__ import annotations

import pytest
import torch

from mvcodec.layers.hdc import HdcAlign, HdcFer, hdc_scores, shift_volume


def test_shift_volume_moves_the_other_view_and_pads_with_zeros():
    x = torch.arange(1.0, 7.0).view(1, 1, 1, 6)
    v = shift_volume(x, [0, 2, -1, 9])
    assert v.shape == (1, 4, 1, 1, 6)
    assert v[0, 0, 0, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert v[0, 1, 0, 0].tolist() == [0, 0, 1, 2, 3, 4]       # other[w - 2]
    assert v[0, 2, 0, 0].tolist() == [2, 3, 4, 5, 6, 0]       # other[w + 1]
    assert v[0, 3, 0, 0].tolist() == [0] * 6                  # beyond the picture


@pytest.mark.parametrize("true_d", [3, -2])
def test_the_score_is_highest_at_the_true_disparity(true_d):
    g = torch.Generator().manual_seed(0)
    other = torch.randn(2, 16, 12, 40, generator=g)
    cur = shift_volume(other, [true_d])[:, 0]                  # cur[w] = other[w - true_d]
    disparities = list(range(-5, 6))
    mean_score = hdc_scores(cur, shift_volume(other, disparities))[..., 6:-6].mean(dim=(0, 2, 3, 4))
    assert disparities[int(mean_score.argmax())] == true_d
    assert float(mean_score.max()) > float(mean_score.sort().values[-2]) + 0.05


def test_ablations_change_the_candidates_and_the_weighting():
    full, shift_only, channel_only = HdcAlign(4, (1, 2, 3)), HdcAlign(4, (1, 2, 3), attention=False), \
        HdcAlign(4, (1, 2, 3), shift=False)
    assert full.fuse.in_channels == shift_only.fuse.in_channels == 12 and channel_only.fuse.in_channels == 4
    assert channel_only.disparities == (0,)
    cur, other = torch.randn(1, 4, 5, 9), torch.randn(1, 4, 5, 9)
    shift_only.fuse.load_state_dict(full.fuse.state_dict())
    assert not torch.allclose(full(cur, other), shift_only(cur, other))
    with pytest.raises(ValueError):
        full(cur, other[:, :3])
    with pytest.raises(ValueError):
        HdcAlign(4, ())


def test_the_shift_off_module_starts_from_the_shifted_ones_unshifted_candidate():
    """lmvc-v9's init: a channel-attention-only HdcAlign loading a shifted one's weights keeps the d = 0 slice of
    the fuse conv, so on the unshifted input it computes what the shifted module's d = 0 term did."""
    full = HdcAlign(4, (-1, 0, 1, 2))
    off = HdcAlign(4, (-1, 0, 1, 2), shift=False)
    off.load_state_dict(full.state_dict())
    assert torch.equal(off.fuse.weight, full.fuse.weight[:, 4:8]) and torch.equal(off.fuse.bias, full.fuse.bias)
    cur, other = torch.randn(1, 4, 5, 9), torch.randn(1, 4, 5, 9)
    volume = hdc_scores(cur, shift_volume(other, full.disparities)) * shift_volume(other, full.disparities)
    only_d0 = volume * torch.tensor([0.0, 1.0, 0.0, 0.0]).view(1, 4, 1, 1, 1)
    assert torch.allclose(off(cur, other), full.fuse(only_d0.flatten(1, 2)), atol=1e-6)
    with pytest.raises(RuntimeError, match="size mismatch"):  # no unshifted candidate configured: nothing to keep
        HdcAlign(4, (1, 2), shift=False).load_state_dict(HdcAlign(4, (1, 2)).state_dict())


@pytest.mark.parametrize("size", [(16, 24), (15, 23), (1, 1), (7, 40)])
@pytest.mark.parametrize("down", [1, 2, 4])
def test_fer_keeps_the_shape_of_any_picture_and_trains(size, down):
    fer = HdcFer(6, range(1, 4), down=down)
    cur = torch.randn(2, 6, *size, requires_grad=True)
    other = torch.randn(2, 6, *size, requires_grad=True)
    out = fer(cur, other)
    assert out.shape == cur.shape
    out.square().mean().backward()
    assert cur.grad is not None and fer.align.fuse.weight.grad is not None
    if size[1] > down:  # some candidate shift stays inside the pooled picture
        assert other.grad is not None and float(other.grad.abs().sum()) > 0


def test_exact_face_is_thread_independent_and_close_to_float():
    torch.manual_seed(1)
    fer = HdcFer(8, range(-3, 4), down=2).eval()
    cur, other = torch.randn(1, 8, 22, 37), torch.randn(1, 8, 22, 37)
    grid = 2.0 ** -12
    cur64, other64 = (torch.round(x.double() / grid) * grid for x in (cur, other))
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                outs.append(fer(cur64, other64))
    finally:
        torch.set_num_threads(before)
    assert outs[0].dtype == torch.float64 and torch.equal(outs[0], outs[1])
    with torch.no_grad():
        assert torch.allclose(outs[0].float(), fer(cur64.float(), other64.float()), atol=2e-3)
