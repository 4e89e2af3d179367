"""Properties of mvcodec.entropy: exact round trips, real bits against estimates, one shared parameter quantizer."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvcodec.entropy import (
    CategoricalModel,
    EntropyBottleneck,
    GaussianConditional,
    IndexedConditional,
    LaplaceConditional,
    ScaleTable,
    conditional_tables,
    decode_indexed,
    encode_indexed,
    estimate_indexed_bits,
    quantize,
    quantize_pmf,
)
from mvcodec.entropy.coder import MAX_ABS_VALUE
from mvcodec.errors import BitstreamError

CONDITIONALS = [GaussianConditional, LaplaceConditional]


@pytest.fixture(autouse=True)
def _isolate():
    """Seed torch's global generator and restore the thread count after each test."""
    n = torch.get_num_threads()
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)


def _latents(n: int, seed: int = 0, shape: tuple[int, ...] | None = None) -> tuple[torch.Tensor, ...]:
    """y, scales, means with scales log-uniform over (and beyond) the table's range."""
    g = torch.Generator().manual_seed(seed)
    shape = shape or (n,)
    scales = torch.exp(torch.empty(shape).uniform_(np.log(0.05), np.log(400.0), generator=g))
    means = torch.randn(shape, generator=g) * 4
    y = means + torch.randn(shape, generator=g) * scales
    return y, scales, means


@pytest.fixture(scope="module")
def bottleneck() -> EntropyBottleneck:
    torch.manual_seed(0)
    eb = EntropyBottleneck(6)
    eb.update()
    return eb.eval()


# ------------------------------------------------------------------------------------------------- quantize
def test_quantize_modes() -> None:
    x = torch.linspace(-3, 3, 101, requires_grad=True)
    mean = torch.full_like(x, 0.3)
    r = quantize(x, "round", mean)
    assert torch.equal(r, torch.round(x - mean) + mean)
    n = quantize(x, "noise")
    assert (n - x).abs().max() <= 0.5
    s = quantize(x, "ste", mean)
    assert torch.equal(s.detach(), r.detach())
    s.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # straight through
    with pytest.raises(ValueError):
        quantize(x, "floor")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- tables
@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300), st.integers(9, 16))
def test_quantize_pmf_sums_and_floors(weights: list[float], precision: int) -> None:
    p = np.array(weights)
    if not p.sum() > 0:
        p[0] = 1.0
    counts = quantize_pmf(p, precision)
    assert counts.sum() == 1 << precision and counts.min() >= 1
    kept = quantize_pmf(p, precision, keep_zeros=True)
    assert kept.sum() == 1 << precision and np.array_equal(kept == 0, p == 0)
    assert np.array_equal(counts, quantize_pmf(p.copy(), precision))


def test_scale_index_is_nearest_in_log_and_total() -> None:
    table = ScaleTable()
    s = torch.tensor([0.0, -1.0, 1e-30, 0.11, 1.0, 255.9, 256.0, 1e30, float("inf"), float("nan")])
    idx = table.index(s)
    assert idx.tolist()[:3] == [0, 0, 0] and idx.tolist()[-4:] == [63] * 4
    grid = torch.exp(torch.linspace(np.log(0.12), np.log(250.0), 1000))
    nearest = np.abs(np.log(grid.numpy()[:, None].astype(np.float64)) - np.log(table.scales)[None]).argmin(1)
    assert np.abs(table.index(grid) - nearest).max() <= 1  # equal except within float32 noise of a midpoint
    assert np.all(np.diff(table.index(grid)) >= 0)


def test_tables_are_pinned() -> None:
    """The integer tables are a format: a change here breaks every existing bitstream."""
    t = conditional_tables(GaussianConditional().distribution, ScaleTable(), 2.0**-12, 16)
    assert t.counts.shape == (64, t.lengths.max() + 1)
    assert np.all(t.counts.sum(1) == 1 << 16)
    assert hashlib.sha256(ScaleTable().boundaries.tobytes()).hexdigest() == BOUNDARIES_SHA256
    assert t.digest() == GAUSSIAN_TABLES_SHA256
    assert LaplaceConditional().tables.digest() == LAPLACE_TABLES_SHA256


BOUNDARIES_SHA256 = "a05f76de9d371eb7478db19d77b503d7ff20e733b36992ab71e6dc109dc1471c"
GAUSSIAN_TABLES_SHA256 = "e3e6b0d927ca3e06e7d42f9cc64cbbf6519c005b7a0ee8c2a72b5e78994dbf53"
LAPLACE_TABLES_SHA256 = "d429ac9f9909ea56c7cc2970179632fde86cce7a6f1ccfb451ceb02cfdf98d0e"
PAYLOAD_SHA256 = "6da2693f1a4d62b3c79a40f76da2a9b9a298ab7e6106e226622fdf06209494f8"


def test_payload_bytes_are_pinned() -> None:
    rng = np.random.default_rng(7)
    scales = torch.from_numpy(rng.uniform(0.01, 400.0, 5000).astype(np.float32))
    means = torch.from_numpy(rng.normal(0.0, 4.0, 5000).astype(np.float32))
    y = means + torch.from_numpy(rng.normal(0.0, 1.0, 5000).astype(np.float32)) * scales
    data = GaussianConditional().compress(y, scales, means) + LaplaceConditional().compress(y, scales, means)
    assert hashlib.sha256(data).hexdigest() == PAYLOAD_SHA256


# ------------------------------------------------------------------------------------------------- the coder
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-MAX_ABS_VALUE, MAX_ABS_VALUE), st.integers(0, 63)), max_size=60))
def test_indexed_round_trip_any_values(pairs: list[tuple[int, int]]) -> None:
    tables = GaussianConditional().tables
    v = np.array([p[0] for p in pairs], dtype=np.int64)
    t = np.array([p[1] for p in pairs], dtype=np.int64)
    assert np.array_equal(decode_indexed(encode_indexed(v, t, tables), t, tables), v)


def test_every_escape_order_round_trips() -> None:
    tables = LaplaceConditional().tables
    k = np.arange(30)  # Exp-Golomb orders 0..29 (and 30 through MAX_ABS_VALUE)
    v = np.concatenate([(1 << k) + 40, -(1 << k) - 40, [MAX_ABS_VALUE, -MAX_ABS_VALUE, 0]])
    t = np.arange(v.size) % 64
    data = encode_indexed(v, t, tables)
    assert np.array_equal(decode_indexed(data, t, tables), v)
    assert len(data) * 8 >= estimate_indexed_bits(v, t, tables) - 64
    with pytest.raises(ValueError):
        encode_indexed(np.array([MAX_ABS_VALUE + 1]), np.array([0]), tables)


def test_corrupt_payloads_raise() -> None:
    model = GaussianConditional()
    scales = torch.full((1000,), 3.0)
    data = model.compress(torch.randn(1000, generator=torch.Generator().manual_seed(10)) * 5, scales)
    for bad in [b"abc", data[:-4], data[4:], bytes(8), data + b"\x01\x00\x00\x00"]:
        with pytest.raises(BitstreamError):
            model.decompress(bad, scales)


# ------------------------------------------------------------------------------------------------- conditionals
@pytest.mark.parametrize("cls", CONDITIONALS)
def test_conditional_round_trip_exact(cls: type[IndexedConditional]) -> None:
    model = cls().eval()
    y, scales, means = _latents(0, seed=1, shape=(2, 8, 16, 16))
    y[0, 0, 0, :4] = torch.tensor([1e6, -1e6, 3e8, -7e5])  # far outside every table row
    scales[0, 1, 0, :6] = torch.tensor([0.0, 1e-20, 1e-3, 1e4, 1e20, float("inf")])  # extremes
    data = model.compress(y, scales, means)
    y_hat = model.decompress(data, scales, means)
    assert torch.equal(y_hat, model(y, scales, means)[0])
    assert torch.equal(y_hat, torch.round(y - means) + means)


@pytest.mark.parametrize("cls", CONDITIONALS)
@pytest.mark.parametrize("shape", [(0,), (1,), (1, 1, 1, 1), (1, 3, 0, 5)])
def test_conditional_empty_and_single(cls: type[IndexedConditional], shape: tuple[int, ...]) -> None:
    model = cls()
    y, scales, means = _latents(0, seed=2, shape=shape)
    data = model.compress(y, scales, means)
    assert torch.equal(model.decompress(data, scales, means), torch.round(y - means) + means)
    assert torch.equal(model.decompress(model.compress(y, scales, None), scales, None), torch.round(y))


@pytest.mark.parametrize("cls", CONDITIONALS)
def test_conditional_real_bits_match_estimate(cls: type[IndexedConditional]) -> None:
    model = cls()
    y, scales, means = _latents(200_000, seed=3)
    real = 8 * len(model.compress(y, scales, means))
    estimate = model.estimate_bits(y, scales, means)
    assert abs(real - estimate) <= 0.01 * estimate
    assert real >= estimate - 64  # never meaningfully below the estimate


@pytest.mark.parametrize("cls", CONDITIONALS)
def test_float_noise_in_parameters_changes_nothing(cls: type[IndexedConditional]) -> None:
    """Both sides call the same quantizer, so noise that crosses no bin boundary gives identical bytes."""
    model = cls()
    y, _, means = _latents(20_000, seed=4)
    table = model.scale_table
    scales = torch.from_numpy(table.scales[torch.randint(0, 64, (20_000,)).numpy()].astype(np.float32))
    noisy = scales * (1 + 1e-7 * torch.randn(scales.shape))
    data = model.compress(y, scales, means)
    assert model.compress(y, noisy, means) == data
    assert torch.equal(model.decompress(data, noisy, means), model.decompress(data, scales, means))


def test_decode_does_not_depend_on_thread_count(bottleneck: EntropyBottleneck) -> None:
    """Encoder with 2 torch threads, decoder with 1: the parameters come from a network run on each side."""
    torch.manual_seed(5)
    nn = torch.nn
    h_s = nn.Sequential(nn.Conv2d(6, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 16, 3, padding=1))
    model = GaussianConditional()
    z = torch.randn(1, 6, 16, 16) * 3
    y = torch.randn(1, 8, 16, 16) * 5

    def params(z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            means, log_scales = h_s(z_hat).chunk(2, dim=1)
        return torch.exp(log_scales), means

    torch.set_num_threads(2)
    z_data = bottleneck.compress(z)
    scales, means = params(bottleneck.decompress(z_data, z.shape))
    y_data = model.compress(y, scales, means)
    torch.set_num_threads(1)
    z_hat = bottleneck.decompress(z_data, z.shape)
    scales_d, means_d = params(z_hat)
    q = torch.round(model.decompress(y_data, scales_d, means_d) - means_d)  # the decoded integers
    assert torch.equal(q, torch.round(y - means))


@pytest.mark.parametrize("cls", CONDITIONALS)
def test_conditional_training_forward(cls: type[IndexedConditional]) -> None:
    model = cls().train()
    y, scales, means = _latents(0, seed=6, shape=(2, 4, 8, 8))
    for mode in ("noise", "ste"):
        y_ = y.clone().requires_grad_()
        s_ = scales.clone().requires_grad_()
        m_ = means.clone().requires_grad_()
        y_hat, likelihoods = model(y_, s_, m_, mode=mode)
        assert likelihoods.shape == y.shape and likelihoods.min() > 0 and likelihoods.max() <= 1
        (-torch.log2(likelihoods).sum() + y_hat.square().sum()).backward()
        for t in (y_, s_, m_):
            assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------- factorized
def test_factorized_round_trip_and_state_dict(bottleneck: EntropyBottleneck) -> None:
    z = torch.randn(2, 6, 9, 7) * 6
    z[0, 0, 0, :3] = torch.tensor([1e6, -2e7, 1e5])
    data = bottleneck.compress(z)
    z_hat = bottleneck.decompress(data, z.shape)
    assert torch.equal(z_hat, bottleneck(z)[0])
    fresh = EntropyBottleneck(6)
    fresh.load_state_dict(bottleneck.state_dict())
    assert torch.equal(fresh.decompress(data, z.shape), z_hat)
    for shape in [(0, 6, 3, 3), (1, 6), (1, 6, 1, 1)]:
        zz = torch.randn(shape)
        assert torch.equal(bottleneck.decompress(bottleneck.compress(zz), shape), bottleneck(zz)[0])


def test_factorized_needs_tables() -> None:
    with pytest.raises(RuntimeError):
        EntropyBottleneck(3).compress(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError):
        EntropyBottleneck(3)(torch.zeros(1, 4, 2, 2))


def test_factorized_tables_match_the_network(bottleneck: EntropyBottleneck) -> None:
    """The tabulated model and the network's likelihood agree, and real bits match the table estimate."""
    g = torch.Generator().manual_seed(8)
    z = bottleneck.medians.view(1, -1, 1, 1) + torch.randn(4, 6, 64, 128, generator=g) * 4  # ~200k values
    network_bits = -torch.log2(bottleneck(z)[1]).sum().item()
    estimate = bottleneck.estimate_bits(z)
    real = 8 * len(bottleneck.compress(z))
    assert abs(estimate - network_bits) <= 0.01 * network_bits
    assert abs(real - estimate) <= 0.01 * estimate


def test_factorized_training_forward() -> None:
    eb = EntropyBottleneck(4).train()
    z = (torch.randn(2, 4, 8, 8) * 3).requires_grad_()
    for mode in ("noise", "ste"):
        z_hat, likelihoods = eb(z, mode=mode)
        assert likelihoods.min() > 0 and likelihoods.max() <= 1
        eb.zero_grad()
        z.grad = None
        (-torch.log2(likelihoods).sum()).backward()
        assert z.grad is not None and torch.isfinite(z.grad).all()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in eb.parameters())


# ------------------------------------------------------------------------------------------------- categorical
def test_categorical_round_trip_and_header() -> None:
    rng = np.random.default_rng(9)
    s = rng.choice(17, size=200_000, p=np.r_[np.full(16, 0.5 / 16), 0.5])
    model = CategoricalModel.from_symbols(s, 20)
    assert model.counts.sum() == 1 << 16 and np.all(model.counts[17:] == 0)
    data = model.encode(s)
    decoder_model = CategoricalModel.from_bytes(model.to_bytes())
    assert decoder_model == model
    assert np.array_equal(decoder_model.decode(data, s.size), s)
    real, estimate = 8 * len(data), model.estimate_bits(s)
    assert abs(real - estimate) <= 0.01 * estimate
    with pytest.raises(ValueError):
        model.encode(np.array([18]))


@pytest.mark.parametrize(
    "symbols,alphabet", [(np.zeros(0, np.int64), 4), (np.array([2]), 3), (np.zeros(50, np.int64), 1)]
)
def test_categorical_small_cases(symbols: np.ndarray, alphabet: int) -> None:
    model = CategoricalModel.from_symbols(symbols, alphabet)
    assert np.array_equal(model.decode(model.encode(symbols), symbols.size), symbols)


def test_categorical_rejects_corrupt_headers() -> None:
    for bad in [b"", b"\x03\x01\x01", b"\x02\x00\x00", b"\x80"]:
        with pytest.raises(BitstreamError):
            CategoricalModel.from_bytes(bad)


def test_huffman_code_lengths_are_optimal_prefix_codes():
    from mvcodec.entropy import huffman_bits, huffman_code_lengths

    # the textbook example: counts 45,13,12,16,9,5 -> lengths 1,3,3,3,4,4 (224 bits for 100 symbols)
    lengths = huffman_code_lengths(np.array([45, 13, 12, 16, 9, 5]))
    assert lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert (2.0 ** -lengths.astype(float)).sum() == 1.0  # Kraft equality: a complete prefix code
    assert huffman_code_lengths(np.array([0, 7, 0])).tolist() == [0, 1, 0]
    symbols = np.repeat(np.arange(6), [45, 13, 12, 16, 9, 5])
    assert huffman_bits(symbols, 6) == 224
    # ANS comes closer to the entropy than Huffman on a skewed source
    rng = np.random.default_rng(1)
    skewed = rng.choice(4, size=20000, p=[0.9, 0.05, 0.03, 0.02])
    model = CategoricalModel.from_symbols(skewed, 4)
    assert 8 * len(model.encode(skewed)) < huffman_bits(skewed, 4)
