"""The inter model and its parts: warping, flow net, decoded picture buffer, training forward over a sequence,
exact compress/decompress with 1, 2 and 3 references, the M-LVC ablation as config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mvcodec.errors import BitstreamError, InputError
from mvcodec.layers.flow import FlowNet, cost_volume
from mvcodec.layers.warp import compose, downsample_flow, upsample_flow, warp
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter import (
    FRAME_CODED,
    FRAME_SKIPPED,
    KEY_COPIED,
    PICTURE_COPIED,
    InterConfig,
    InterModel,
    build_inter,
)

TINY = InterConfig(N=8, M=16, Z=8, mv_channels=8, mv_M=8, mv_Z=8, qualities=3, flow_channels=8)
ABLATION = InterConfig(N=8, M=16, Z=8, mv_channels=8, mv_M=8, mv_Z=8, qualities=3, flow_channels=8, references=1,
                       mv_prediction=False, mv_refinement=False, reference_refinement=False)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def moving_clip(frames: int = 4, h: int = 64, w: int = 64, shift: int = 2) -> torch.Tensor:
    """(1, T, 3, H, W): a smooth pattern translating ``shift`` px right per frame."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w + shift * frames,
                                                                               dtype=torch.float32), indexing="ij")
    base = torch.stack([0.5 + 0.4 * torch.sin(xx / 5 + c) * torch.cos(yy / 7 - c) for c in range(3)])
    return torch.stack([base[:, :, shift * (frames - t): shift * (frames - t) + w] for t in range(frames)])[None]


# ------------------------------------------------------------------------------------------------ warping
def test_warp_by_an_integer_shift_moves_the_picture() -> None:
    x = torch.rand(1, 3, 8, 10, dtype=torch.float64)
    flow = torch.zeros(1, 2, 8, 10, dtype=torch.float64)
    flow[:, 0] = 2.0  # every pixel comes from 2 px to its right
    out = warp(x, flow)
    assert torch.allclose(out[..., :-2], x[..., 2:], atol=1e-12) and out.dtype == torch.float64
    assert torch.allclose(out[..., -2:], x[..., -1:].expand(-1, -1, -1, 2), atol=1e-12)  # border padding
    assert torch.allclose(warp(x, torch.zeros_like(flow)), x, atol=1e-12)


def test_compose_follows_both_fields_and_flow_rescaling() -> None:
    a = torch.full((1, 2, 8, 8), 1.0)
    b = torch.full((1, 2, 8, 8), 2.0)
    assert torch.allclose(compose(a, b), torch.full_like(a, 3.0))
    assert torch.allclose(downsample_flow(b, 2), torch.full((1, 2, 4, 4), 1.0))
    assert torch.allclose(upsample_flow(torch.full((1, 2, 4, 4), 1.0)), b)
    with pytest.raises(ValueError):
        warp(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_flow_net_shapes_and_a_few_steps_reduce_the_warping_error() -> None:
    clip = moving_clip(2, 32, 32)
    x, ref = clip[:, 1], clip[:, 0]
    net = FlowNet(levels=3, channels=8)
    assert torch.equal(net(x, ref), torch.zeros(1, 2, 32, 32))  # zero-initialised corrections
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = (warp(ref, net(x, ref)) - x)[..., 4:-4, 4:-4].pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 30, 32), torch.rand(1, 3, 30, 32))


def test_the_cost_volume_is_best_at_the_true_displacement() -> None:
    x = torch.rand(2, 3, 20, 24)
    ref = torch.roll(x, shifts=(1, -2), dims=(-2, -1))  # x(p) = ref(p + (dy, dx) = (1, -2))
    costs = cost_volume(x, ref, search=2)
    assert costs.shape == (2, 25, 20, 24)
    inner = costs[..., 4:-4, 4:-4]
    assert torch.equal(inner.argmax(1), torch.full_like(inner[:, 0], (1 + 2) * 5 + (-2 + 2), dtype=torch.long))
    assert inner.max(1).values.abs().max() == 0 and (inner < 0).any()


def _translated_pairs(seed: int, n: int, size: int = 32, reach: int = 2):
    """``n`` pairs (x, ref, flow): random smooth textures, each x its ref moved by its own integer displacement in
    [-reach, reach]^2, so that x(p) = ref(p + flow) with flow = (dx, dy) constant over the picture."""
    g = torch.Generator().manual_seed(seed)
    tex = F.avg_pool2d(torch.rand(n, 3, size + 2 * reach + 2, size + 2 * reach + 2, generator=g), 3, 1)
    d = torch.randint(-reach, reach + 1, (n, 2), generator=g)
    ref = tex[..., reach: reach + size, reach: reach + size]
    x = torch.stack([tex[i, :, reach + dy: reach + dy + size, reach + dx: reach + dx + size]
                     for i, (dx, dy) in enumerate(d.tolist())])
    return x, ref, d.float()[:, :, None, None].expand(n, 2, size, size)


def test_the_cost_volume_lets_the_flow_net_learn_motion_it_has_not_seen() -> None:
    """Why the flow net has a cost volume (mvcodec.layers.flow): trained on random translations, the net with it
    estimates the motion of new pairs; the same training without it (the net of mlvc-v1/v2) stays at zero flow,
    as it did on the synthetic training set."""
    def end_point_error(search: int) -> tuple[float, float]:
        torch.manual_seed(0)
        net = FlowNet(levels=2, channels=8, search=search)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for step in range(100):
            x, ref, flow = _translated_pairs(step, 8)
            loss = (net(x, ref) - flow)[..., 4:-4, 4:-4].pow(2).sum(1).add(1e-8).sqrt().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        x, ref, flow = _translated_pairs(10_000, 16)
        with torch.no_grad():
            error = (net(x, ref) - flow)[..., 4:-4, 4:-4].pow(2).sum(1).sqrt().mean().item()
        return error, flow[..., 4:-4, 4:-4].pow(2).sum(1).sqrt().mean().item()

    with_costs, zero_flow = end_point_error(search=2)
    without, _ = end_point_error(search=0)
    assert with_costs < 0.6 * zero_flow
    assert without > 0.9 * zero_flow


def test_stored_configs_without_flow_search_rebuild_the_net_they_were_made_with() -> None:
    stored = {k: v for k, v in TINY.to_json().items() if k != "flow_search"}
    assert InterConfig.from_json(stored).flow_search == 2  # a new model
    assert InterConfig.from_stored(stored).flow_search == 0  # weights written before the cost volume
    assert InterConfig.from_stored(TINY.to_json()) == TINY
    first_level = build_inter(InterConfig.from_stored(stored)).flow.level_nets[0].net[0]
    assert first_level.in_channels == 8
    with pytest.raises(InputError):
        InterConfig.from_stored("{not json")
    with pytest.raises(InputError):
        InterConfig(flow_search=5)


# ------------------------------------------------------------------------------------------------ the buffer
def test_dpb_capacity_keys_and_reference_chains() -> None:
    dpb = DecodedPictureBuffer(capacity=3)
    pic = lambda motion: DecodedPicture(torch.zeros(1, 3, 4, 4), None, motion)  # noqa: E731
    dpb.put(0, 0, pic(None))                     # I picture
    dpb.put(1, 0, pic(None))                     # another view's picture, its own key
    assert len(dpb.references(0, 1, 3)) == 1     # the chain stops at the I picture
    dpb.put(0, 1, pic(torch.zeros(1, 2, 4, 4)))
    dpb.put(0, 2, pic(torch.zeros(1, 2, 4, 4)))
    assert len(dpb.references(0, 3, 3)) == 3 and len(dpb.references(0, 3, 2)) == 2
    dpb.put(0, 3, pic(torch.zeros(1, 2, 4, 4)))  # evicts (0, 0): capacity is per view
    assert (0, 0) not in dpb and (1, 0) in dpb and len(dpb) == 4
    assert len(dpb.references(0, 4, 3)) == 3
    assert len(dpb.references(0, 3, 3)) == 2     # frame 0 is gone: the chain is shorter
    with pytest.raises(KeyError, match="not in the decoded picture buffer"):
        dpb.references(0, 9, 3)
    dpb.clear(0)
    assert dpb.keys() == [(1, 0)]


# ------------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("cfg", [TINY, ABLATION], ids=["mlvc", "ablation"])
def test_forward_sequence_keeps_gradients_across_p_frames(cfg: InterConfig) -> None:
    model = build_inter(cfg)
    clip = moving_clip(4, 64, 64).repeat(2, 1, 1, 1, 1)
    i_frame = clip[:, 0].clone().requires_grad_(True)
    outs = model.forward_sequence(clip, i_frame, torch.tensor([0, 2]))
    assert len(outs) == 3
    for o in outs:
        assert o["x_hat"].shape == (2, 3, 64, 64) and o["bits"].shape == (2,) and torch.all(o["bits"] > 0)
        assert set(o["likelihoods"]) == {"z_mv", "y_mv", "z", "y"}
    # the last frame's loss reaches the I picture through two reconstructed references
    outs[-1]["x_hat"].pow(2).mean().backward()
    assert i_frame.grad is not None and float(i_frame.grad.abs().sum()) > 0


def test_quality_changes_the_rate_and_is_checked() -> None:
    model = build_inter(TINY).eval()
    clip = moving_clip(2, 64, 64)
    refs = [DecodedPicture(clip[:, 0])]
    with torch.no_grad():
        model.gain[2].mul_(30.0)  # a larger gain quantizes finer: more bits
        model.mv_gain[2].mul_(30.0)
        low = model(clip[:, 1], refs, torch.tensor([0]))["bits"]
        high = model(clip[:, 1], refs, torch.tensor([2]))["bits"]
    assert float(high) > float(low)
    with pytest.raises(InputError):
        model(clip[:, 1], refs, torch.tensor([3]))
    with pytest.raises(InputError):
        model(torch.rand(1, 3, 60, 64), refs, torch.tensor([0]))


def test_motion_only_codes_the_motion_alone() -> None:
    model = build_inter(TINY)
    clip = moving_clip(2, 64, 64)
    out = model(clip[:, 1], [DecodedPicture(clip[:, 0])], torch.tensor([1]), motion_only=True)
    assert torch.equal(out["x_hat"], out["prediction"]) and out["feature"] is None
    assert torch.allclose(out["bits"], out["bits_motion"]) and set(out["likelihoods"]) == {"z_mv", "y_mv"}


# ------------------------------------------------------------------------------------------------ coding
def wide_priors(model: InterModel, sigma: float = 2.0) -> InterModel:
    """An untrained model whose Gaussian priors predict ``sigma`` everywhere: its latents (near the rounding step
    at initialisation, inter.ANALYSIS_INIT_GAIN) then stay inside the coding tables, so the -log2 p estimate
    is tight (an untrained prior's tiny scales would send them through the coder's escape, which costs more)."""
    with torch.no_grad():
        for last, m in ((model.prior_fusion[-1], model.cfg.M), (model.motion.mv_hs[-1], model.cfg.mv_M)):
            last.weight[m:].zero_()
            last.bias[m:].fill_(sigma)
    return model


def coded_sequence(cfg: InterConfig, frames: int, threads: tuple[int, int] = (1, 1)) -> tuple[list, list, list]:
    """Code P frames 1..frames-1 of a 60x70 clip after a ground-truth I picture; returns per frame the encoder's
    reconstruction, the decoder's, and (real bits, estimated bits)."""
    torch.manual_seed(1)
    model = wide_priors(build_inter(cfg)).eval()
    model.update()
    clip = moving_clip(frames, 60, 70)[0]
    enc, dec = DecodedPictureBuffer(4), DecodedPictureBuffer(4)
    i_picture = (clip[:1] + 0.01 * torch.randn(1, 3, 60, 70)).clamp(0, 1)  # a noisy "I picture"
    for dpb in (enc, dec):
        dpb.put(0, 0, InterModel.reference(i_picture))
    x_enc, x_dec, bits = [], [], []
    for t in range(1, frames):
        torch.set_num_threads(threads[0])
        payload, x_hat = model.compress(clip[t:t + 1], enc, 0, t, 1)
        bits.append((8 * len(payload), model.last_estimated_bits))
        torch.set_num_threads(threads[1])
        x_dec.append(model.decompress(payload, dec, 0, t, 60, 70, 1))
        x_enc.append(x_hat)
    torch.set_num_threads(1)
    return x_enc, x_dec, bits


@pytest.mark.parametrize("cfg", [TINY, ABLATION], ids=["mlvc", "ablation"])
def test_decoder_reproduces_the_encoder_with_1_2_and_3_references(cfg: InterConfig) -> None:
    x_enc, x_dec, bits = coded_sequence(cfg, 5)  # P frames 1..4 see 1, 2, 3, 3 references
    for a, b in zip(x_enc, x_dec):
        assert a.shape == (1, 3, 60, 70) and torch.equal(a, b)
    for real, est in bits:
        assert abs(real - est) <= 0.02 * est + 8 * 12  # within 2 % plus a few bytes (the ANS coder's flush)
        assert est > 1000  # the latents are coded, not all zero


@pytest.mark.slow  # two threads on a shared 2-core machine: seconds to minutes
def test_decoder_reproduces_the_encoder_across_thread_counts() -> None:
    x_enc, x_dec, _ = coded_sequence(TINY, 4, threads=(2, 1))
    assert all(torch.equal(a, b) for a, b in zip(x_enc, x_dec))


def test_references_change_the_reconstruction() -> None:
    """With 3 references the M-LVC modules see more than the last picture; the ablation ignores them."""
    model = build_inter(TINY).eval()
    for module in (model.mv_predictor, model.mv_refiner, model.refiner):
        torch.nn.init.normal_(module.net[-1].weight, std=0.1)  # leave the identity start
    clip = moving_clip(4, 64, 64)
    motion = torch.randn(1, 2, 64, 64)
    refs = [DecodedPicture(clip[:, 2], torch.rand(1, 8, 64, 64), motion),
            DecodedPicture(clip[:, 1], None, 0.5 * motion), DecodedPicture(clip[:, 0])]
    with torch.no_grad():
        one = model(clip[:, 3], refs[:1], torch.tensor([1]))["x_hat"]
        three = model(clip[:, 3], refs, torch.tensor([1]))["x_hat"]
    assert not torch.allclose(one, three)


def test_a_corrupt_payload_is_a_bitstream_error() -> None:
    model = build_inter(TINY).eval()
    model.update()
    clip = moving_clip(2, 64, 64)[0]
    enc, dec = DecodedPictureBuffer(), DecodedPictureBuffer()
    for dpb in (enc, dec):
        dpb.put(0, 0, InterModel.reference(clip[:1]))
    payload, _ = model.compress(clip[1:2], enc, 0, 1, 0)
    with pytest.raises(BitstreamError):
        model.decompress(payload[:-4] + b"\x01\x02\x03", dec, 0, 1, 64, 64, 0)


@pytest.mark.parametrize("prefer", ["coded", "skipped"])
def test_frame_latent_skip_picks_the_cheaper_mode_and_decodes_exactly(prefer: str) -> None:
    """compress(skip_cost=..) codes the motion once and the frame latent both ways: the mode byte says which was
    kept, a skipped picture's payload is the motion's alone (shorter), and the decoder reproduces the encoder's
    picture in both modes."""
    torch.manual_seed(1)
    model = wide_priors(build_inter(TINY)).eval()
    model.update()
    clip = moving_clip(3, 64, 64)[0]
    enc, dec = DecodedPictureBuffer(4), DecodedPictureBuffer(4)
    for dpb in (enc, dec):
        dpb.put(0, 0, InterModel.reference(clip[:1]))
    tried: list[int] = []

    def cost(x_hat: torch.Tensor, bits: int) -> float:  # the first trial is the coded mode
        tried.append(bits)
        return float(len(tried) == (1 if prefer == "skipped" else 2))

    plain, _ = model.compress(clip[1:2], _fresh(clip), 0, 1, 1)
    payload, x_hat = model.compress(clip[1:2], enc, 0, 1, 1, skip_cost=cost)
    assert len(tried) == 2 and tried[1] < tried[0]  # skipping leaves z and y out of the stream
    assert payload[0] == (FRAME_SKIPPED if prefer == "skipped" else FRAME_CODED)
    assert model.last_frame_skipped == (prefer == "skipped")
    if prefer == "coded":
        assert payload[1:] == plain  # the payload of files without the skip mode, after the mode byte
    assert torch.equal(model.decompress(payload, dec, 0, 1, 64, 64, 1, frame_skip=True), x_hat)
    with pytest.raises(BitstreamError, match="mode byte"):
        model.decompress(b"\x07" + payload[1:], dec, 0, 1, 64, 64, 1, frame_skip=True)


def test_a_copied_picture_is_its_reference_and_the_mode_byte_alone() -> None:
    """compress(copy=True) adds a third candidate, the nearest reference unchanged: where it is the cheapest the
    payload is the mode byte alone, the picture and its feature are the reference's, its motion zero (so a later
    picture's motion chain runs through it); the decoder reproduces it, refuses the mode without
    ``picture_copy`` and a copied payload with more bytes."""
    torch.manual_seed(1)
    model = wide_priors(build_inter(TINY)).eval()
    model.update()
    clip = moving_clip(3, 64, 64)[0]
    enc, dec = _fresh(clip), _fresh(clip)
    tried: list[int] = []

    def cost(x_hat: torch.Tensor, bits: int) -> float:  # the third trial is the copy
        tried.append(bits)
        return float(len(tried) != 3)

    for frame in (1, 2):
        payload, x_hat = model.compress(clip[frame:frame + 1], enc, 0, frame, 1, skip_cost=cost, copy=True)
        assert len(tried) == 3 and tried[2] == 8 and payload == bytes([PICTURE_COPIED])
        assert model.last_picture_copied and not model.last_frame_skipped
        assert torch.equal(x_hat, clip[:1])  # the I picture, copied on along the chain
        assert torch.equal(model.decompress(payload, dec, 0, frame, 64, 64, 1, frame_skip=True, picture_copy=True),
                           x_hat)
        tried.clear()
    copied = dec.get(0, 2)
    assert torch.equal(copied.frame, dec.get(0, 0).frame) and copied.feature is None
    assert copied.motion is not None and not copied.motion.any()
    assert len(dec.references(0, 3, 3)) == 3  # the chain goes on through the copies to the I picture
    with pytest.raises(BitstreamError, match="mode byte 2"):
        model.decompress(payload, dec, 0, 1, 64, 64, 1, frame_skip=True)
    with pytest.raises(BitstreamError, match="copied but its payload has 1 more"):
        model.decompress(payload + b"\x00", dec, 0, 1, 64, 64, 1, frame_skip=True, picture_copy=True)
    payload, _ = model.compress(clip[1:2], _fresh(clip), 0, 1, 1, skip_cost=lambda x_hat, bits: float(bits))
    assert payload[0] != PICTURE_COPIED  # without copy=True: two candidates only


def test_a_key_copied_picture_is_the_key_picture_and_the_mode_byte_alone() -> None:
    """compress(copy=True, key=..) adds a fourth candidate, the period's key picture unchanged: where it is the
    cheapest the payload is mode byte 3 alone, the picture and feature are the key picture's and its motion None
    (the reference chain starts again there); the decoder reproduces it given the key, refuses mode 3 without
    one and a copied payload with more bytes."""
    torch.manual_seed(1)
    model = wide_priors(build_inter(TINY)).eval()
    model.update()
    clip = moving_clip(4, 64, 64)[0]
    enc, dec = _fresh(clip), _fresh(clip)
    key_enc, key_dec = enc.get(0, 0), dec.get(0, 0)
    for frame in (1, 2):  # two coded pictures move away from the key picture
        payload, _ = model.compress(clip[frame:frame + 1], enc, 0, frame, 1, skip_cost=lambda x_hat, bits: 0.0)
        model.decompress(payload, dec, 0, frame, 64, 64, 1, frame_skip=True)
    tried: list[int] = []

    def cost(x_hat: torch.Tensor, bits: int) -> float:  # the fourth trial is the key copy
        tried.append(bits)
        return float(len(tried) != 4)

    payload, x_hat = model.compress(clip[3:4], enc, 0, 3, 1, skip_cost=cost, copy=True, key=key_enc)
    assert len(tried) == 4 and tried[2:] == [8, 8] and payload == bytes([KEY_COPIED])
    assert model.last_picture_copied and model.last_key_copied
    assert torch.equal(x_hat, clip[:1])
    assert torch.equal(model.decompress(payload, dec, 0, 3, 64, 64, 1, frame_skip=True, picture_copy=True,
                                        key=key_dec), x_hat)
    copied = dec.get(0, 3)
    assert torch.equal(copied.frame, key_dec.frame) and copied.motion is None
    assert len(dec.references(0, 4, 3)) == 1  # the chain starts again at the copy
    with pytest.raises(BitstreamError, match="mode byte 3"):
        model.decompress(payload, dec, 0, 3, 64, 64, 1, frame_skip=True, picture_copy=True)
    with pytest.raises(BitstreamError, match="copied but its payload has 1 more"):
        model.decompress(payload + b"\x00", dec, 0, 3, 64, 64, 1, frame_skip=True, picture_copy=True, key=key_dec)
    tried.clear()
    model.compress(clip[3:4], _fresh(clip), 0, 1, 1, skip_cost=cost, copy=True)
    assert len(tried) == 3  # without a key: three candidates


def _fresh(clip: torch.Tensor) -> DecodedPictureBuffer:
    dpb = DecodedPictureBuffer(4)
    dpb.put(0, 0, InterModel.reference(clip[:1]))
    return dpb


def test_config_round_trip_and_validation() -> None:
    assert InterConfig.from_json(TINY.to_json()) == TINY
    with pytest.raises(InputError):
        InterConfig.from_json({"N": 8, "bogus": 1})
    with pytest.raises(InputError):
        InterConfig(references=4)
    assert build_inter(ABLATION).mv_predictor is None and build_inter(TINY).refiner is not None


# ------------------------------------------------------------------------------------------------ the task
def hand_batch(items: int = 1, views: int = 2, frames: int = 3, quality: int = 1) -> dict[str, torch.Tensor]:
    """A batch like the data factory's: (B, V, T, 3, H, W) frames, forward flow (B, V, T-1, 2, H, W)."""
    clip = moving_clip(frames, 64, 64)  # 2 px per frame to the right: forward flow +2, backward -2
    flow = torch.zeros(items, views, frames - 1, 2, 64, 64)
    flow[:, :, :, 0] = 2.0
    return {"frames": clip[:, None].repeat(items, views, 1, 1, 1, 1), "flow": flow,
            "quality": torch.full((items,), quality, dtype=torch.int64)}


def test_task_is_registered_and_its_default_schedule_is_data() -> None:
    from mvcodec.train.task import get_task
    task = get_task("inter")
    stages = task.default_stages()
    assert [s.options["loss"] for s in stages] == ["flow", "motion", "reconstruction", "context", "rd", "rd"]
    assert stages[0].trainable == ("flow.",) and stages[-1].frames > 2
    assert "flow." not in stages[1].trainable  # a fresh motion coder's rate term would shrink the flow to zero
    model = task.build_model(TINY.to_json())
    names = [n for n, _ in model.named_parameters()]
    for stage in stages[1:4]:  # every prefix of the motion and frame stages names parameters
        for prefix in stage.trainable:
            assert any(n.startswith(prefix) for n in names), prefix
    flow, motion, frame = set(stages[0].trainable), set(stages[1].trainable), set(stages[2].trainable)
    assert not motion & frame and stages[2].trainable == stages[3].trainable
    # the flow, motion and frame stages together train every parameter of the model
    assert all(any(n == p.rstrip(".") or n.startswith(p) for p in flow | motion | frame) for n in names)


def test_the_default_schedule_also_trains_the_m_lvc_ablation() -> None:
    """A trainable prefix that names a module the ablation switched off is not a typo (engine.check_trainable)."""
    from mvcodec.train.engine import check_trainable
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    check_trainable(task.build_model(ABLATION.to_json()), tuple(task.default_stages()))
    with pytest.raises(InputError, match="names no parameter"):
        check_trainable(task.build_model(ABLATION.to_json()), (Stage(name="s", steps=1, trainable=("ctx_dek.",)),))


def test_reconstruction_charges_no_rate_and_context_only_the_frame_rate() -> None:
    """DCVC-TCM's reconstruction stage (lambda * D alone) and context stage (+ the frame latent's rate): the loss
    is what each charges, the logged bpp is always the whole picture's estimate."""
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    lmbda = torch.tensor([400.0])
    results = {}
    for loss in ("reconstruction", "context", "rd"):
        torch.manual_seed(0)
        model = task.build_model(TINY.to_json())
        torch.manual_seed(1)  # the same noise in every loss
        results[loss] = task.loss(model, hand_batch(frames=2), Stage(name=loss, steps=1, frames=2,
                                                                     options={"loss": loss}), lmbda)
    mse, bpp, motion = (float(results["rd"][k]) for k in ("mse", "bpp", "bpp_motion"))
    for loss, charged in (("reconstruction", 0.0), ("context", bpp - motion), ("rd", bpp)):
        out = results[loss]
        assert float(out["bpp"]) == pytest.approx(bpp) and float(out["mse"]) == pytest.approx(mse)
        assert float(out["loss"].detach()) == pytest.approx(400.0 * mse + charged, rel=1e-5), loss


@pytest.mark.parametrize("loss, frames", [("flow", 2), ("motion", 3), ("reconstruction", 2), ("context", 2),
                                          ("rd", 2), ("rd", 3)])
def test_task_losses_train(loss: str, frames: int) -> None:
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    model = task.build_model(TINY.to_json())
    stage = Stage(name=loss, steps=1, frames=frames, options={"loss": loss})
    out = task.loss(model, hand_batch(frames=frames), stage, torch.tensor([400.0]))
    assert out["loss"].requires_grad and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
    assert any(n.startswith("flow.") for n in grads)
    if loss == "flow":
        assert "epe" in out and float(out["epe"]) > 0 and not any(n.startswith("motion.") for n in grads)
    elif loss == "motion":
        assert not any(n.startswith("ctx_dec.") for n in grads) and float(out["bpp_motion"]) > 0
    else:
        assert any(n.startswith("ctx_dec.") for n in grads) and float(out["bpp"]) > float(out["bpp_motion"])
        assert 0 < float(out["psnr_prediction"]) < 100
    assert float(out["images"]) == 2 * (frames - 1)  # 2 views x P pictures (flow: consecutive pairs)


def test_the_motion_losss_flow_target_adds_the_decoded_motions_error_and_reaches_the_motion_coder() -> None:
    """Stage option flow_target w: the "motion" loss gains w * the end-point error of the decoded motion against
    the (detached) flow estimate; its gradient reaches both transforms of the motion coder."""
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    out = {}
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        model = task.build_model(TINY.to_json())
        torch.manual_seed(1)
        out[weight] = task.loss(model, hand_batch(frames=3), Stage(name="m", steps=1, frames=3, options={
            "loss": "motion", "flow_target": weight}), torch.tensor([400.0]))
    epe = float(out[0.0]["epe_motion"])
    assert epe > 0 and float(out[2.0]["epe_motion"]) == pytest.approx(epe)
    assert float(out[2.0]["loss"].detach()) == pytest.approx(float(out[0.0]["loss"].detach()) + 2.0 * epe, rel=1e-5)

    for bad in ("strong", -1.0, float("nan")):
        with pytest.raises(InputError, match="flow_target is a number >= 0"):
            task.loss(model, hand_batch(frames=3), Stage(name="m", steps=1, frames=3, options={
                "loss": "motion", "flow_target": bad}), torch.tensor([400.0]))

    from mvcodec.train.tasks.inter import flow_target_loss
    model = task.build_model(TINY.to_json())
    x = hand_batch(frames=2)["frames"][:, 0]
    o = model.forward_sequence(x, x[:, 0], torch.zeros(1, dtype=torch.long), motion_only=True)
    flow_target_loss(o, 1.0, torch.zeros(()))["loss"].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
    assert all(any(n.startswith(f"motion.{net}") for n in grads) for net in ("mv_enc", "mv_dec"))


@pytest.mark.parametrize("options, frames, fragment", [
    ({"flow_targt": 20.0}, 4, "option 'flow_targt', which this task does not read"),
    ({"loss": "motoin"}, 4, "has loss 'motoin'"),
    ({"loss": "rd"}, 1, "needs frames >= 2"),
    ({"decoder_quantization": "round"}, 2, "decoder_quantization is one of"),
    ({"loss": "motion", "flow_target": "strong"}, 4, "flow_target is a number >= 0"),
    ({"i_frame_noise": -0.1}, 2, "i_frame_noise is a number >= 0"),
    ({"intra_weights": "zoo:mvc-intra-v9"}, 2, "intra_weights 'zoo:mvc-intra-v9': no shipped weights"),
    ({"intra_weights": 3}, 2, "intra_weights is a weights file or zoo:ID"),
])
def test_the_inter_tasks_stage_options_are_checked_before_the_run_starts(
        tmp_path: Path, options: dict, frames: int, fragment: str) -> None:
    """task.check_stage, called by the engine before the run folder exists: a misspelt or bad option is a
    one-line InputError and nothing is written; the default schedule and configs/inter.yaml pass."""
    from mvcodec.train.config import load_config
    from mvcodec.train.engine import train
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    for stage in task.default_stages():
        task.check_stage(stage)
    cfg = load_config(base={"task": "inter", "lambdas": [100.0 * (q + 1) for q in range(TINY.qualities)],
                            "out": str(tmp_path / "run"), "model": TINY.to_json(),
                            "data": {"kind": "synthetic", "crop": [64, 64], "frames": 4, "length": 4},
                            "stages": [{"name": "s", "steps": 1, "frames": frames, "options": options}],
                            "num_workers": 0, "device": "cpu", "batch_size": 1})
    with pytest.raises(InputError, match=fragment):
        train(cfg)
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match=fragment):
        task.check_stage(Stage(name="s", steps=1, frames=frames, options=options))


def test_backward_flow_of_a_uniform_motion_is_its_negation() -> None:
    from mvcodec.train.tasks.inter import backward_flow
    fwd = torch.full((1, 2, 16, 16), 3.0)
    assert torch.allclose(backward_flow(fwd), -fwd)


def test_task_refuses_short_clips_and_unknown_losses() -> None:
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    model = task.build_model(TINY.to_json())
    with pytest.raises(InputError, match="needs 4 frames"):
        task.loss(model, hand_batch(frames=3), Stage(name="c", steps=1, frames=4), torch.tensor([1.0]))
    with pytest.raises(InputError, match="loss"):
        task.loss(model, hand_batch(), Stage(name="c", steps=1, frames=2, options={"loss": "bogus"}),
                  torch.tensor([1.0]))


def test_finalize_builds_the_coding_tables() -> None:
    from mvcodec.train.task import get_task
    task = get_task("inter")
    model = task.build_model(TINY.to_json())
    task.finalize(model)
    assert model.entropy_bottleneck.table_lengths.numel() == TINY.Z
    assert model.mv_entropy_bottleneck.table_lengths.numel() == TINY.mv_Z


def test_the_cascade_can_start_from_a_frozen_intra_models_reconstruction(tmp_path) -> None:
    from mvcodec.codecs.learned_intra import save_intra_weights
    from mvcodec.models.intra import IntraConfig, build_intra
    from mvcodec.train.task import Stage, get_task
    intra = build_intra(IntraConfig(N=16, M=32, Z=16, groups=(8, 8), qualities=3, blocks=0, context=16))
    intra.update()
    path = tmp_path / "intra.safetensors"
    save_intra_weights(intra, path)
    task = get_task("inter")
    batch = hand_batch(frames=2)
    stage = Stage(name="rd", steps=1, frames=2, options={"loss": "rd", "intra_weights": str(path)})
    with torch.no_grad():
        expected = intra.eval()(batch["frames"][:, :, 0].flatten(0, 1), torch.tensor([1, 1]))["x_hat"].clamp(0, 1)
    x0 = batch["frames"][:, :, 0].flatten(0, 1)
    assert torch.allclose(task.i_picture(x0, torch.tensor([1, 1]), stage), expected)
    out = task.loss(task.build_model(TINY.to_json()), batch, stage, torch.tensor([100.0]))
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad


def test_decoder_noise_lets_latents_below_the_rounding_step_reach_the_decoder() -> None:
    """Straight-through rounding zeroes a latent smaller than 1/2 around its mean (what the decoder sees); the
    training option decoder_quantization=noise passes it with noise; evaluation always rounds."""
    from mvcodec.entropy import GaussianConditional
    from mvcodec.models.inter import TrainCoder

    g = GaussianConditional()
    y = torch.full((1, 4, 2, 2), 0.2)
    mu, sigma = torch.zeros_like(y), torch.ones_like(y)
    assert torch.equal(TrainCoder(g, True).y("y", y, mu, sigma), torch.zeros_like(y))
    torch.manual_seed(0)
    noisy = TrainCoder(g, True, "noise").y("y", y, mu, sigma)
    assert noisy.abs().sum() > 0 and (noisy - y).abs().max() <= 0.5
    assert torch.equal(TrainCoder(g, False, "noise").y("y", y, mu, sigma), torch.zeros_like(y))
    frame_only = TrainCoder(g, True, "frame-noise")  # the frame latent (and HDC-EM's slices y0..) noisy, motion rounded
    assert frame_only.y("y", y, mu, sigma).abs().sum() > 0 and frame_only.y("y2", y, mu, sigma).abs().sum() > 0
    assert torch.equal(frame_only.y("y_mv", y, mu, sigma), torch.zeros_like(y))
    with pytest.raises(InputError, match="decoder quantization"):
        TrainCoder(g, True, "dither")


def test_configs_write_out_the_default_schedule_and_the_fix_starts_from_mlvc_v1() -> None:
    """configs/inter.yaml is the task's default schedule written out (names, options, trainable, frames); the
    collapse fix (configs/inter-rate-collapse-fix.yaml) takes the P model of the shipped mlvc-v1 (every tensor
    fits the model of its config) and re-runs the frame stages."""
    from pathlib import Path

    from mvcodec.train.checkpoint import initial_weights
    from mvcodec.train.config import load_config
    from mvcodec.train.task import get_task
    configs = Path(__file__).resolve().parents[1] / "configs"
    task = get_task("inter")
    written = load_config(configs / "inter.yaml").stages
    default = task.default_stages()
    def described(s):  # every option but the I pictures' weights, which the config names and the default leaves open
        return s.name, s.trainable, s.frames, {k: v for k, v in s.options.items() if k != "intra_weights"}
    assert [described(s) for s in written] == [described(s) for s in default]
    fix = load_config(configs / "inter-rate-collapse-fix.yaml")
    assert [s.options["loss"] for s in fix.stages] == ["reconstruction", "context", "rd", "rd"] and fix.init_exclude
    model = task.build_model(dict(fix.model))
    digest, count = initial_weights(model, fix.init, fix.init_prefix, fix.init_exclude)
    assert 0 < count < len(model.state_dict()) and len(digest) == 64  # flow and motion taken, frame coder fresh


@pytest.mark.parametrize("gain, low, high", [(None, 0.3, 3.0), (1.0, 0.0, 0.1)])
def test_a_fresh_models_frame_latent_starts_near_the_rounding_step(monkeypatch, gain, low, high) -> None:
    """The root of mlvc-v1's rate collapse: with PyTorch's default initialisation the frame latent of a fresh
    model is far below the rounding step (std < 0.1 at the top rung), so the decoder only ever sees the prior's
    mean; ANALYSIS_INIT_GAIN starts it near the step.  Synthetic 128x128 frames of the training generator."""
    import mvcodec.models.inter as inter_module
    from mvcodec.data.datasets import build_dataset
    if gain is not None:
        monkeypatch.setattr(inter_module, "ANALYSIS_INIT_GAIN", gain)
    torch.manual_seed(0)
    model = build_inter(InterConfig()).train()
    data = build_dataset({"kind": "synthetic", "crop": [128, 128], "views": 1, "frames": 2, "textures": ["skimage"]},
                         "train")
    frames = torch.stack([data[i]["frames"][0] for i in range(2)])  # (2, T, 3, H, W)
    seen = {}
    frame_latent = model._frame_latent

    def capture(coder, y, prior, side):
        seen["y"] = y.detach()
        return frame_latent(coder, y, prior, side)

    model._frame_latent = capture
    with torch.no_grad():
        model(frames[:, 1], [DecodedPicture(frames[:, 0])], torch.full((2,), 5))
    assert low < float(seen["y"].std()) < high


def test_the_inter_task_codes_low_delay_as_the_cascade_did() -> None:
    """Stage option structure "ld" (the default) codes the intra period through the decoded picture buffer as
    ``forward_sequence``'s cascade does: the same loss on the same batch."""
    from mvcodec.train.task import Stage, get_task
    task = get_task("inter")
    torch.manual_seed(0)
    model = task.build_model(TINY.to_json())
    stage = Stage(name="s", steps=1, lr=1e-4, frames=4, options={"loss": "rd", "structure": "ld"})
    task.check_stage(stage)
    batch = hand_batch(frames=4)
    lmbda = torch.tensor([400.0])
    torch.manual_seed(1)
    out = task.loss(model, batch, stage, lmbda)
    x = batch["frames"].flatten(0, 1)
    torch.manual_seed(1)
    i_frame = task.i_picture(x[:, 0], batch["quality"].repeat_interleave(2), stage)
    outs = model.forward_sequence(x, i_frame, batch["quality"].repeat_interleave(2))
    cascade = torch.stack([400.0 * (o["x_hat"] - x[:, t + 1]).pow(2).flatten(1).mean(1)
                           + o["bits"] / (64 * 64) for t, o in enumerate(outs)]).mean()
    assert int(out["images"]) == 2 * 3
    torch.testing.assert_close(out["loss"], cascade)


@pytest.mark.parametrize("structure", ["ra", "mixed"])
def test_the_inter_task_trains_on_random_access_gops(monkeypatch, structure: str) -> None:
    """Stage option structure "ra": one hierarchical GOP as mlvc codes it in random access (I 0, P 4 from 0, then
    B 2, 1, 3, each from one of its two references), a loss term per picture, gradients across them; "mixed" draws
    ld or ra per step; frames that are not a GOP + 1 and unknown structures are refused before the run."""
    from mvcodec.train import structure as structures
    from mvcodec.train.task import Stage, get_task
    from mvcodec.train.tasks import inter

    task = get_task("inter")
    torch.manual_seed(0)
    model = task.build_model(TINY.to_json())
    stage = Stage(name="s", steps=1, lr=1e-4, frames=5, options={"loss": "rd", "structure": structure})
    task.check_stage(stage)
    plans, refs = [], []
    monkeypatch.setattr(inter, "training_plan", lambda *a: plans.append(structures.training_plan(*a)) or plans[-1])
    monkeypatch.setattr(inter, "draw_candidate", lambda p: refs.append(structures.draw_candidate(p)) or refs[-1])
    out = task.loss(model, hand_batch(frames=5), stage, torch.tensor([400.0]))
    assert int(out["images"]) == 2 * 4 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    if structure == "ra":
        assert [(p.frame, p.type, p.refs) for p in plans[0]] == [
            (0, "I", ()), (4, "P", (0,)), (2, "B", (0, 4)), (1, "B", (0, 2)), (3, "B", (2, 4))]
        assert len(refs) == 4 and refs[0] == 0 and set(refs[1:]) <= {0, 1}
    with pytest.raises(InputError, match="inter task: stage s .*frames - 1 must be one of"):
        task.check_stage(Stage(name="s", steps=1, lr=1e-4, frames=4, options={"structure": structure}))
    with pytest.raises(InputError, match="structure 'hier'"):
        task.check_stage(Stage(name="s", steps=1, lr=1e-4, frames=5, options={"structure": "hier"}))
