"""HDC-EM (models/hdc_entropy.py): slice order and causality, the cross-view prior in use (and off in the
ablation), exact encode/decode round trips through the entropy coder on the float64 path, input checks."""

from __future__ import annotations

import pytest
import torch

from mvcodec.entropy import GaussianConditional
from mvcodec.entropy.coder import SegmentDecoder, encode_segments
from mvcodec.models.hdc_entropy import HdcSliceEntropy
from mvcodec.models.inter import DecodeCoder, EncodeCoder, TrainCoder

M, P, S = 16, 12, 4


def inputs(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    y = 4 * torch.randn(2, M, 6, 10, generator=g)
    prior = torch.randn(2, P, 6, 10, generator=g)
    ref = torch.round(4 * torch.randn(2, M, 6, 10, generator=g))
    return y.to(dtype), prior.to(dtype), ref.to(dtype)


def model(**kw) -> HdcSliceEntropy:
    torch.manual_seed(0)
    return HdcSliceEntropy(M, P, S, disparities=range(-2, 3), **kw).eval()


def test_slices_are_coded_in_order_and_each_sees_only_earlier_slices() -> None:
    em = model()
    y, prior, ref = inputs()
    coder = TrainCoder(GaussianConditional(), training=False)
    with torch.no_grad():
        y_hat = em.code(coder, "y", y, prior, ref)
    assert list(coder.likelihoods) == [f"y{i}" for i in range(S)]
    assert y_hat.shape == y.shape and float((y_hat - y).abs().max()) <= 0.5 + 1e-6  # round(y - mu) + mu
    changed = y.clone()
    changed[:, 2 * (M // S):] += 7  # slices 2 and 3
    other = TrainCoder(GaussianConditional(), training=False)
    em.code(other, "y", changed, prior, ref)
    for i in range(S):
        same = torch.equal(coder.likelihoods[f"y{i}"], other.likelihoods[f"y{i}"])
        assert same == (i < 2), i  # slices 0, 1 do not depend on slices 2, 3; slices 2, 3 change


def test_the_reference_view_is_used_and_the_ablation_ignores_it() -> None:
    y, prior, ref = inputs()
    for cross_view in (True, False):
        em = model(cross_view=cross_view)
        a, b = (TrainCoder(GaussianConditional(), training=False) for _ in range(2))
        em.code(a, "y", y, prior, ref)
        em.code(b, "y", y, prior, ref.roll(3, dims=-1))
        differs = not torch.equal(a.likelihoods["y0"], b.likelihoods["y0"])
        assert differs == cross_view


def test_encode_decode_round_trip_is_exact_on_the_float64_path() -> None:
    em = model()
    y, prior, ref = inputs(1, torch.float64)
    gaussian = GaussianConditional()
    enc = EncodeCoder(gaussian)
    with torch.no_grad():
        y_hat = em.code(enc, "y", y, prior, ref)
    payload = encode_segments(enc.segments)
    assert 0 < 8 * len(payload) < 1.2 * enc.estimated_bits + 64
    dec = SegmentDecoder(payload)
    with torch.no_grad():
        decoded = em.code(DecodeCoder(dec, gaussian), "y", None, prior, ref)
    dec.finish()
    assert torch.equal(decoded, y_hat)


def test_training_gradients_reach_every_net() -> None:
    em = HdcSliceEntropy(M, P, S, disparities=range(-2, 3)).train()
    y, prior, ref = inputs()
    coder = TrainCoder(GaussianConditional(), training=True)
    em.code(coder, "y", y.requires_grad_(), prior, ref)
    bits = sum(-torch.log2(v).sum() for v in coder.likelihoods.values())
    bits.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in em.named_parameters() if "weight" in n)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="do not divide"):
        HdcSliceEntropy(M, P, 5)
    em = model()
    y, prior, ref = inputs()
    coder = TrainCoder(GaussianConditional(), training=False)
    with pytest.raises(ValueError, match="reference latent"):
        em.code(coder, "y", y, prior, None)
    with pytest.raises(ValueError, match="prior has"):
        em.code(coder, "y", y, prior[:, :5], ref)
