"""The fitting losses: SSIM against pytorch-msssim (the field's reference implementation), the motion weighting."""

from __future__ import annotations

import pytest
import torch
from pytorch_msssim import ssim as library_ssim

from mvcodec.train.losses import motion_aware_loss, ssim


@pytest.mark.parametrize("size", [(48, 64), (37, 53)])
def test_ssim_matches_pytorch_msssim(size: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, *size, generator=gen)
    y = (x + 0.1 * torch.randn(2, 3, *size, generator=gen)).clamp(0, 1)
    assert float(ssim(x, y)) == pytest.approx(float(library_ssim(x, y, data_range=1.0)), abs=1e-5)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)


def test_ssim_small_frames_shrink_the_window_and_have_gradients() -> None:
    x = torch.rand(1, 3, 6, 9, requires_grad=True)
    value = ssim(x, torch.rand(1, 3, 6, 9))
    value.backward()
    assert torch.isfinite(value) and x.grad is not None and torch.isfinite(x.grad).all()


def test_motion_mask_weights_the_l1_term() -> None:
    x = torch.zeros(1, 3, 16, 16)
    x_hat = torch.full_like(x, 0.5)
    still, moving = torch.zeros(1, 16, 16), torch.ones(1, 16, 16)
    l_still = motion_aware_loss(x_hat, x, still, alpha=1.0)
    assert float(l_still) == pytest.approx(0.5)
    assert float(motion_aware_loss(x_hat, x, moving, alpha=1.0)) == pytest.approx(1.0)
    assert float(motion_aware_loss(x_hat, x, None, alpha=1.0)) == pytest.approx(0.5)
