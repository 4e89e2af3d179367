"""MV-MGINR (codec ``mv-mginr``): shapes, exact decode, random access, pruning, quantization, bits, resume.

Tiny clips and a few epochs only; fits run single-threaded so the tests are fast on a loaded machine."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from conftest import synthetic_clip

from mvcodec.api import decode_file, encode_file, measure_file
from mvcodec.bitstream import GLOBAL_VIEW, MvcReader
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.codecs.inr_payload import (
    ALPHABET,
    QMAX,
    CodedWeights,
    dequantize_tensor,
    estimate_bits,
    pack_weights,
    prune_masks,
    unpack_weights,
)
from mvcodec.errors import BitstreamError, InputError
from mvcodec.models.inr import InrArch, MvMgInr, build_inr, inr_config
from mvcodec.train.inr_fit import FitSchedule, fit
from mvcodec.train.motion import motion_mask

TINY = dict(fit_epochs=3, qat_epochs=2)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=4, height=27, width=37, seed=5)
    codec = get_codec("mv-mginr", **TINY)
    path = tmp_path_factory.mktemp("inr") / "clip.mvc"
    result = encode_file(clip, codec, EncodeSettings(quality=1, structure="ld", gop=4), path)
    torch.set_num_threads(before)
    return clip, codec, path, result


@pytest.mark.parametrize("size", [(27, 37), (37, 61), (9, 5), (1, 1), (40, 56)])
def test_shapes_for_any_size(size):
    h, w = size
    cfg = inr_config(InrArch(grid_side=4, grid_channels=6, local_channels=2, width=8, min_width=4), 2, 3, h, w)
    model = build_inr(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.parameter_count()
    ph, pw = cfg.padded_size
    assert ph >= h and pw >= w and ph - h < ph / cfg.grid_h + 1
    out = model(torch.tensor([1, 0]), torch.tensor([2, 0]))
    assert out.shape == (2, 3, ph, pw) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("flags", [{"time_view_grids": False}, {"local_grid": False}, {"grid_embedding": False}])
def test_ablations_build(flags):
    cfg = inr_config(InrArch(grid_channels=6, local_channels=2, width=8, min_width=4, **flags), 2, 3, 20, 30)
    assert build_inr(cfg)(torch.tensor([0]), torch.tensor([1])).shape[:2] == (1, 3)
    with pytest.raises(ValueError):
        InrArch(time_view_grids=False, local_grid=False)


def test_decode_reproduces_the_encoder_bit_for_bit_with_1_and_2_threads(encoded):
    clip, codec, path, result = encoded
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            decoded = np.stack([f.rgb for f in decode_file(path)]).reshape(codec.last_reconstruction.shape)
            assert np.array_equal(decoded, codec.last_reconstruction), f"{threads} threads"
    finally:
        torch.set_num_threads(before)
    assert hashlib.sha256(decoded.tobytes()).hexdigest() == result.extra["reconstruction_sha256"]
    assert measure_file(clip, path).psnr_rgb == result.extra["psnr_rgb_encoder"]  # to the last digit


def test_random_access_renders_only_the_requested_frame(encoded, monkeypatch):
    _, codec, path, _ = encoded
    calls = []
    original = MvMgInr.forward
    monkeypatch.setattr(MvMgInr, "forward", lambda self, v, t: calls.append((int(v), int(t))) or original(self, v, t))
    frames = list(decode_file(path, views=[1], frames=range(2, 3)))
    assert [(f.view, f.frame) for f in frames] == [(1, 2)] and calls == [(1, 2)]
    assert np.array_equal(frames[0].rgb, codec.last_reconstruction[1, 2])


def test_header_rebuilds_the_decoder_and_weights_are_one_global_packet(encoded):
    _, _, path, _ = encoded
    with MvcReader(path) as r:
        assert r.header.codec_config["arch"] == InrArch(**r.header.codec_config["arch"]).to_json()
        assert [(e.view, e.kind) for e in r.entries] == [(GLOBAL_VIEW, 1)]


def test_real_and_estimated_bits_side_by_side(encoded):
    _, _, path, result = encoded
    extra = result.extra
    assert extra["real_bits"] >= extra["estimated_symbol_bits"]
    assert extra["real_bits"] == pytest.approx(extra["estimated_bits"], rel=0.02, abs=256)
    assert result.bytes > extra["real_bits"] / 8            # the file adds header and index
    assert extra["sparsity"] == pytest.approx(0.4, abs=0.01)


def test_pruning_reaches_the_sparsity():
    g = torch.Generator().manual_seed(0)
    params = {"g_t1": torch.randn(4, 3, 5, 5, generator=g), "blocks.0.conv.weight": 0.01 * torch.randn(16, 8, 3, 3,
              generator=g), "blocks.0.conv.bias": torch.randn(16, generator=g)}
    for sparsity in (0.2, 0.4, 0.7):
        masks = prune_masks(params, sparsity)
        assert set(masks) == {"g_t1", "blocks.0.conv.weight"}      # biases are never pruned
        removed = sum(int((~m).sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
        assert removed == pytest.approx(sparsity, abs=0.005)
        assert all(0 < m.float().mean() < 1 for m in masks.values())  # the threshold is global yet adaptive


def test_quantized_weights_round_trip_through_the_entropy_coder():
    g = torch.Generator().manual_seed(1)
    params = {"g_tv": torch.randn(3, 2, 2, 4, 4, generator=g), "head.weight": torch.randn(3, 8, 3, 3, generator=g),
              "head.bias": torch.randn(3, generator=g), "g_v": torch.zeros(2, 3, 4, 4)}
    coded = CodedWeights.from_params(params, prune_masks(params, 0.4))
    for n, q in coded.q.items():
        assert q.abs().max() <= QMAX and ALPHABET == 2 * QMAX + 1
        if n in coded.masks:
            assert not q[~coded.masks[n]].any()
    payload = pack_weights(coded)
    back = unpack_weights(payload, {n: tuple(p.shape) for n, p in params.items()})
    assert all(torch.equal(back.q[n], coded.q[n]) for n in params)
    assert all(torch.equal(back.masks[n], coded.masks[n]) for n in coded.masks)
    assert back.scales == coded.scales
    w = dequantize_tensor(coded.q["head.weight"], coded.scales["head.weight"])
    error = (w - params["head.weight"] * coded.masks["head.weight"]).abs().max()
    assert error <= coded.scales["head.weight"] / 2 + 1e-6
    assert 8 * len(payload) >= estimate_bits(coded)["symbol_bits"]
    with pytest.raises(BitstreamError):
        unpack_weights(payload[:-3], {n: tuple(p.shape) for n, p in params.items()})


def test_corrupted_weights_packet_is_a_bitstream_error(encoded, tmp_path):
    _, _, path, _ = encoded
    data = bytearray(path.read_bytes())
    with MvcReader(path) as r:
        entry = r.entries[0]
    data[entry.offset + entry.length // 2] ^= 0x40
    bad = tmp_path / "bad.mvc"
    bad.write_bytes(bytes(data))
    with pytest.raises(BitstreamError):
        list(decode_file(bad))


def test_motion_mask_range():
    clip = synthetic_clip(views=2, frames=3, height=24, width=32)
    m = motion_mask(clip.frames)
    assert m.shape == (2, 3, 24, 32) and m.min() >= 0 and m.max() == pytest.approx(1)
    static = np.repeat(clip.frames[:, :1], 3, axis=1)
    assert motion_mask(static).max() < 0.1          # Farneback noise on identical frames stays small


class _Stop(Exception):
    pass


def test_checkpoint_resume_continues_exactly(tmp_path, one_thread):
    clip = synthetic_clip(views=1, frames=3, height=16, width=24, seed=2)
    cfg = inr_config(InrArch(grid_side=4, grid_channels=4, local_channels=1, width=8, min_width=4), 1, 3, 16, 24)
    sched = FitSchedule(fit_epochs=2, qat_epochs=2)
    straight = build_inr(cfg)
    fit(straight, clip.frames, sched)

    def stop_after(epoch: int) -> None:
        if epoch == 2:     # interrupted in the QAT phase, after the masks were made
            raise _Stop

    resumed = build_inr(cfg)
    with pytest.raises(_Stop):
        fit(resumed, clip.frames, sched, checkpoint=tmp_path / "ck", on_epoch_end=stop_after)
    fresh = build_inr(cfg)
    result = fit(fresh, clip.frames, sched, checkpoint=tmp_path / "ck", resume=True)
    assert result.start_epoch == 3
    for (n, a), (_, b) in zip(straight.named_parameters(), fresh.named_parameters()):
        assert torch.equal(a, b), n
    with pytest.raises(InputError):
        fit(build_inr(cfg), clip.frames[:, ::-1].copy(), sched, checkpoint=tmp_path / "ck", resume=True)


def test_options_are_checked():
    with pytest.raises(InputError):
        get_codec("mv-mginr", preset="ultra")
    with pytest.raises(InputError):
        get_codec("mv-mginr", colour="blue")
    with pytest.raises(InputError):
        get_codec("mv-mginr").config(EncodeSettings(quality=7))
    with pytest.raises(InputError):
        get_codec("mv-mginr", resume="maybe")
    with pytest.raises(InputError, match="precision must be auto, fp32 or bf16"):
        get_codec("mv-mginr", precision="fp16")
    assert get_codec("mv-mginr", precision="fp32").schedule.precision == "fp32"
    codec = get_codec("mv-mginr", fit_epochs="5", local_grid="false", sparsity="0.5")
    assert codec.schedule.fit_epochs == 5 and codec.schedule.sparsity == 0.5
    assert codec.config(EncodeSettings(quality=2))["arch"]["local_grid"] is False


def test_last_qat_epochs_run_in_float32(one_thread):
    """Forced bf16: the fitting epochs and the first QAT epochs autocast, the last ``fp32_epochs`` do not, so the
    fit ends on the decoder's float32 arithmetic."""
    clip = synthetic_clip(views=1, frames=2, height=16, width=24, seed=3)
    cfg = inr_config(InrArch(grid_side=4, grid_channels=4, local_channels=1, width=8, min_width=4), 1, 2, 16, 24)
    model = build_inr(cfg)
    dtypes: list[torch.dtype] = []
    model.head.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    epochs: list[int] = []
    fit(model, clip.frames, FitSchedule(fit_epochs=2, qat_epochs=3, fp32_epochs=2, precision="bf16", batch=2),
        on_epoch_end=lambda e: epochs.append(len(dtypes)))
    per_epoch = [dtypes[a] for a in [0, *epochs[:-1]]]   # the first forward of each epoch
    assert per_epoch == [torch.bfloat16] * 3 + [torch.float32] * 2


def test_fp32_epochs_option():
    assert get_codec("mv-mginr").schedule.fp32_epochs == 2
    assert get_codec("mv-mginr", preset="slow").schedule.fp32_epochs == 20
    assert get_codec("mv-mginr", fp32_epochs="4").schedule.fp32_epochs == 4
    with pytest.raises(InputError):
        get_codec("mv-mginr", fp32_epochs=-1)
