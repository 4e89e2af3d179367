"""The learned intra model (mvcodec.models.intra) and its layers: shapes, exact decode across thread counts, real
bits against the estimate, the quality gains, corrupt payloads, the exact fixed-point convolutions, the checkerboard
context, and the training task's loss.  Tiny models and a few training steps only."""

from __future__ import annotations

import random

import pytest
import torch

from mvcodec.errors import BitstreamError, InputError
from mvcodec.layers.blocks import Conv2d, ConvTranspose2d, ExactOverflowError, integer_weight
from mvcodec.layers.checkerboard import CheckerboardContext, anchor_mask
from mvcodec.models.intra import IntraConfig, IntraModel, build_intra
from mvcodec.train.task import Stage, get_task

TINY = IntraConfig(N=16, M=40, Z=16, groups=(4, 4, 8, 16), qualities=3, context=16)


@pytest.fixture
def threads():
    """Restores torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def train_briefly(model: IntraModel, steps: int = 15, seed: int = 0) -> IntraModel:
    """A few Adam steps of lambda * MSE + bpp on two fixed smooth pictures, every quality, then update()."""
    torch.manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 6, 64), torch.linspace(0, 6, 64), indexing="ij")
    x = torch.stack([0.5 + 0.4 * torch.sin(xx + c) * torch.cos(yy - c) for c in range(3)]).unsqueeze(0)
    x = torch.cat([x, x.flip(-1)])
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    lmbda = torch.tensor([300.0, 1200.0, 4800.0])
    model.train()
    for i in range(steps):
        q = torch.tensor([i % 3, (i + 1) % 3])
        out = model(x, q)
        mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
        loss = (lmbda[q] * mse + out["bits"] / (64 * 64)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.update()
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> IntraModel:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        return train_briefly(build_intra(TINY))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def random_init() -> IntraModel:
    torch.manual_seed(1)
    model = build_intra(TINY)
    model.update()
    return model.eval()


def picture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g), size=(h, w),
                                             mode="bilinear", align_corners=False)
    return (0.8 * smooth + 0.2 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


# ------------------------------------------------------------------------------------------ shapes and config
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (1, 1), (65, 30)])
def test_forward_shapes_for_any_size(size):
    h, w = size
    model = build_intra(TINY)
    out = model(torch.rand(2, 3, h, w), torch.tensor([0, 2]))
    ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
    assert out["x_hat"].shape == (2, 3, h, w)
    assert out["likelihoods"]["y"].shape == (2, TINY.M, ph // 16, pw // 16)
    assert out["likelihoods"]["z"].shape == (2, TINY.Z, ph // 64, pw // 64)
    assert out["bits"].shape == (2,) and torch.all(out["bits"] > 0)


def test_default_config_sizes():
    cfg = IntraConfig()
    assert cfg.channel_groups == (16, 16, 32, 64, cfg.M - 128)
    params = sum(p.numel() for p in build_intra(cfg).parameters())
    assert params * 4 < 16e6  # float32 weights well under the zoo's 20 MB


def test_config_round_trip_and_bad_configs():
    assert IntraConfig.from_json(TINY.to_json()) == TINY
    assert IntraConfig.from_json('{"N": 8, "groups": [4, 4]}') == IntraConfig(N=8, groups=(4, 4))
    for bad in ({"nope": 1}, {"M": 100}, {"N": 0}, [1, 2]):  # M=100 <= sum(groups)=128
        with pytest.raises(InputError):
            IntraConfig.from_json(bad)


def test_bad_quality_is_an_input_error(random_init):
    with pytest.raises(InputError):
        random_init(torch.rand(1, 3, 16, 16), torch.tensor([3]))
    with pytest.raises(InputError):
        random_init.compress(torch.rand(1, 3, 16, 16), -1)
    with pytest.raises(InputError):
        random_init.compress(torch.rand(2, 3, 16, 16), 0)


# ------------------------------------------------------------------------------------------ exact decode
@pytest.mark.parametrize("which", ["random_init", "trained"])
def test_decode_reproduces_the_encoder_across_thread_counts(which, request, threads):
    model = request.getfixturevalue(which)
    # at this size the float32 forward of TINY differs between 1 and 2 threads (MKL/oneDNN split their sums;
    # 64x128 happens not to), so only the exact fixed-point coding path can pass
    x = picture(128, 192)
    coded = {}
    for n in (1, 2):
        threads(n)
        coded[n] = model.encode(x, 1)
    assert coded[1].payload == coded[2].payload
    assert torch.equal(coded[1].x_hat, coded[2].x_hat)
    for enc, dec in ((2, 1), (1, 2)):
        threads(dec)
        assert torch.equal(model.decompress(coded[enc].payload, 128, 192, 1), coded[enc].x_hat)


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 128)])
def test_compress_round_trip_shapes(trained, size):
    h, w = size
    payload, x_hat = trained.compress(picture(max(h, 8), max(w, 8))[..., :h, :w], 2)
    assert x_hat.shape == (1, 3, h, w) and x_hat.dtype == torch.float32
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
    assert torch.equal(trained.decompress(payload, h, w, 2), x_hat)


def test_real_bits_match_the_estimates(trained):
    """Real bits = the integer-table estimate + the ANS coder's flush (a few bytes); the training estimate (the
    continuous likelihoods) is the same number in forward's eval mode and in encode, and bounds the real bits from
    above (the tables cap an outlier's cost near 16 + escape bits where the continuous law charges up to 30: a
    briefly trained prior has many outliers, so the bound is loose here)."""
    x = picture(96, 160, seed=3)
    for q in range(TINY.qualities):
        coded = trained.encode(x, q)
        real = 8 * len(coded.payload)
        assert abs(real - coded.table_bits) <= 0.02 * coded.table_bits + 8 * 8, (q, real, coded.table_bits)
        assert real <= 1.02 * coded.estimated_bits + 8 * 8, (q, real, coded.estimated_bits)
        with torch.no_grad():
            forward_bits = float(trained(x, torch.tensor([q]))["bits"])
        assert forward_bits == pytest.approx(coded.estimated_bits, rel=0.01)


def test_quality_gains_order_the_rates(trained):
    x = picture(64, 96, seed=4)
    rates = [len(trained.compress(x, q)[0]) for q in range(TINY.qualities)]
    assert rates == sorted(rates) and len(set(rates)) == len(rates), rates


def test_corrupt_payloads_raise_bitstream_errors(trained):
    x = picture(64, 64, seed=5)
    payload, x_hat = trained.compress(x, 1)
    rng = random.Random(0)
    corrupt = [b"", payload[:-4], payload[:4], bytes(len(payload)), payload + bytes(4), b"\xff" * 64]
    for _ in range(12):
        b = bytearray(payload)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        corrupt.append(bytes(b))
    for data in corrupt:
        try:
            out = trained.decompress(data, 64, 64, 1)
        except BitstreamError:
            continue
        assert out.shape == (1, 3, 64, 64)  # a flip the coder cannot detect still gives a picture, never a crash
    for data in corrupt[:6]:  # empty, truncated, zeros, padded, junk: detected
        with pytest.raises(BitstreamError):
            trained.decompress(data, 64, 64, 1)


def test_decompress_without_tables_or_with_wrong_size(trained):
    payload, _ = trained.compress(picture(64, 64), 0)
    with pytest.raises(BitstreamError):
        trained.decompress(payload, 128, 128, 0)
    with pytest.raises(InputError):
        trained.decompress(payload, 0, 64, 0)
    with pytest.raises(InputError):  # a header could claim 16384 x 16384: refused before any allocation
        trained.decompress(payload, 16384, 16384, 0)


# ------------------------------------------------------------------------------------------ layers
def test_exact_convolutions_follow_the_float_ones():
    torch.manual_seed(0)
    for layer in (Conv2d(8, 6, 3, 2, 1), ConvTranspose2d(8, 6, 5, 2, 2, output_padding=1)):
        x = torch.randn(1, 8, 9, 11)
        exact = layer(x.double())
        assert exact.dtype == torch.float64
        assert torch.allclose(exact.float(), layer(x), atol=2e-3)


def test_integer_weights_are_bounded_integers():
    w = torch.randn(5, 3, 3, 3) * torch.tensor([1e-3, 1.0, 7.0, 0.0, 100.0]).view(-1, 1, 1, 1)
    w_int, shift = integer_weight(w, 0, bits=14)
    assert torch.equal(w_int, w_int.round()) and float(w_int.abs().max()) <= 2**13
    back = w_int * torch.pow(2.0, -shift).view(-1, 1, 1, 1)
    assert torch.allclose(back.float(), w, rtol=0, atol=float(w.abs().max()) * 2**-13)


def test_exact_convolution_refuses_overflowing_inputs():
    layer = Conv2d(4, 4, 3, 1, 1)
    with pytest.raises(ExactOverflowError):
        layer(torch.full((1, 4, 5, 5), 2.0**30, dtype=torch.float64))


def test_checkerboard_context_sees_only_anchors():
    torch.manual_seed(0)
    ctx = CheckerboardContext(3, 4)
    mask = anchor_mask(6, 7)
    y = torch.randn(1, 3, 6, 7)
    y2 = torch.where(mask, y, torch.randn(1, 3, 6, 7))  # same anchors, other non-anchors
    assert torch.equal(ctx(y), ctx(y2))
    assert bool(mask[0, 0, 0, 0]) and not bool(mask[0, 0, 0, 1]) and int(mask.sum()) == 21


# ------------------------------------------------------------------------------------------ training task
def test_intra_task_loss_and_finalize():
    task = get_task("intra")
    model = task.build_model(TINY.to_json())
    batch = {"frames": torch.rand(2, 1, 2, 3, 32, 48), "quality": torch.tensor([0, 2])}
    out = task.loss(model, batch, Stage("intra", steps=1), torch.tensor([100.0, 400.0]))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.gain.grad is not None and float(model.gain.grad.abs().sum()) > 0
    assert float(out["bpp"]) > 0 and float(out["psnr"]) > 0
    task.finalize(model)
    assert model.entropy_bottleneck.table_lengths.numel() == TINY.Z
    with pytest.raises(InputError):
        task.loss(model, {"frames": torch.rand(2, 3, 32, 32), "quality": torch.tensor([0, 1])},
                  Stage("intra", steps=1), torch.tensor([1.0, 1.0]))
    assert task.default_stages()[0].frames == 1


def test_intra_task_on_the_data_factory():
    """The task's dataset (the procedural generator) feeds its loss: one optimizer step on two items."""
    from torch.utils.data import default_collate

    task = get_task("intra")
    data = task.dataset({"kind": "synthetic", "crop": [64, 64], "length": 2}, "train")
    batch = default_collate([data[0], data[1]])
    batch["quality"] = torch.tensor([0, 2])
    model = task.build_model(TINY.to_json())
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    out = task.loss(model, batch, task.default_stages()[0], torch.tensor([100.0, 400.0]))
    out["loss"].backward()
    opt.step()
    assert torch.isfinite(out["loss"]) and float(out["bpp"]) > 0


def test_run_config_of_the_intra_codec():
    """configs/intra.yaml parses, and its model has one gain vector per lambda."""
    from pathlib import Path

    from mvcodec.train.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "intra.yaml")
    model_cfg = IntraConfig.from_json(cfg.model)
    assert cfg.task == "intra" and model_cfg.qualities == len(cfg.lambdas)
    assert list(cfg.lambdas) == sorted(cfg.lambdas) and cfg.data["kind"] == "synthetic"
