"""The ``lmvc`` codec: exact round trips on 2 and 4 views (low delay, all intra), view 0 through the single-view
decoder alone, the dependency set of a frame (packets counted), damaged packets cost only the views that depend
on them, weights and structure checks.  Random-init tiny weights, tiny clips."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import damage_packet, static_clip, synthetic_clip
from test_inter_codec import TINY_INTER, coming_back, shipped_weights_round_trip, write_weights
from test_multiview_model import perturb

from mvcodec.api import decode_file, encode_file
from mvcodec.bitstream import MvcReader
from mvcodec.codecs import learned_inter, learned_multiview
from mvcodec.codecs.base import DecodedFrame, EncodeSettings, Skipped
from mvcodec.codecs.learned_inter import B_FUTURE_PACKET, B_PAST_PACKET, INTRA_PACKET, MlvcCodec, header_frame_skip
from mvcodec.codecs.learned_multiview import (
    DEPENDENT_B_PACKET,
    DEPENDENT_B_PAST_PACKET,
    DEPENDENT_PACKET,
    INTERVIEW_KEY_PACKET,
    LmvcCodec,
    extract_base_view,
    save_lmvc_weights,
)
from mvcodec.errors import BitstreamError, InputError
from mvcodec.models.inter import FRAME_CODED, FRAME_SKIPPED, KEY_COPIED, PICTURE_COPIED, build_inter
from mvcodec.models.multiview import DependentConfig, from_single_view


def write_lmvc_weights(folder: Path, **switches: bool) -> tuple[Path, Path]:
    """Tiny random mlvc weights and an lmvc dependent model on them (inter-view branches moved off zero, ``switches``
    of :class:`DependentConfig` applied), written to ``folder``; returns (lmvc file, mlvc file)."""
    base = folder / "mlvc.safetensors"
    base_sha = write_weights(base)
    torch.manual_seed(0)
    single = build_inter(TINY_INTER)
    single.load_state_dict(learned_inter.read_weights_file(base).part("inter."))
    dep = from_single_view(DependentConfig(**TINY_INTER.to_json(), disparities=2, slices=4, **switches), single)
    perturb(dep)
    dep.update()
    path = folder / "lmvc.safetensors"
    save_lmvc_weights(dep, base_sha, path)
    return path, base


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_lmvc_weights(tmp_path_factory.mktemp("w"))


def codec(weights: tuple[Path, Path], **options: str) -> LmvcCodec:
    return LmvcCodec(weights_file=str(weights[0]), base_weights_file=str(weights[1]), **options)


def digest(frames: list) -> str:
    h = hashlib.sha256()
    for f in sorted((f for f in frames if isinstance(f, DecodedFrame)), key=lambda f: (f.view, f.frame)):
        h.update(f.rgb.tobytes())
    return h.hexdigest()


def decoded_psnr(frames: dict[tuple[int, int], np.ndarray], original: np.ndarray) -> float:
    """PSNR-RGB of decoded ``{(view, frame): rgb}`` against ``original (V, T, H, W, 3)``, as the encoder reports
    its reconstruction's (``psnr_rgb_encoder``)."""
    from mvcodec.metrics import MetricAccumulator
    acc = MetricAccumulator(ms_ssim=False)
    for (v, t), rgb in frames.items():
        acc.add(v, original[v, t], rgb)
    return acc.result().psnr_rgb


@pytest.fixture(scope="module")
def coded(weights, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, np.ndarray]:
    """2 views x 5 frames x 48x80, intra period 3: frames 0, 3 key pictures (inter-view, forced), the dependent P
    pictures coded with the inter-view model (forced), every frame latent coded (``frame_skip=off``: the format of
    files before the skip mode; ``coded_ra`` takes the default)."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=5, height=48, width=80)
    path = tmp_path_factory.mktemp("c") / "clip.mvc"
    result = encode_file(clip, codec(weights, key_picture="interview", dependent_picture="interview",
                                     frame_skip="off"), EncodeSettings(1, "ld", gop=3), path)
    return path, result.extra, clip.frames


def test_round_trip_is_exact_and_uses_every_packet_kind(coded, weights) -> None:
    path, extra, original = coded
    frames = list(decode_file(path, codec=codec(weights)))
    assert len(frames) == 10 and all(f.rgb.shape == (48, 80, 3) for f in frames)
    with MvcReader(path) as reader:
        kinds = {(e.view, e.first_frame): e.kind for e in reader.select()}
    assert kinds[(1, 0)] == INTERVIEW_KEY_PACKET and kinds[(1, 1)] == DEPENDENT_PACKET and kinds[(0, 3)] == 0
    assert extra["real_bits_dependent"] > 0 and extra["real_bits_interview_key"] > 0
    shares = extra["nonzero_symbol_share"]  # view 0's P latents and the dependent model's (HDC-EM slices)
    assert {"y", "y_mv", "dependent_y_mv", "dependent_y0", "dependent_y3"} <= set(shares)
    assert abs(extra["real_bits"] - extra["estimated_bits"]) <= 0.02 * extra["estimated_bits"] + 8 * 12 * 10


def test_encoder_reconstruction_equals_the_decoder(coded, weights) -> None:
    path, extra, original = coded
    frames = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=codec(weights))}
    assert decoded_psnr(frames, original) == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)


def test_view_0_decodes_with_the_single_view_decoder_alone(coded, weights, tmp_path) -> None:
    path, _, _ = coded
    base_file = tmp_path / "view0.mvc"
    assert extract_base_view(path, base_file, codec(weights)) == 5
    with MvcReader(base_file) as reader:
        assert reader.header.codec_config["key_quality"] == 2  # the key pictures' rung travels with them
    single = list(decode_file(base_file, codec=MlvcCodec(weights_file=str(weights[1]))))
    multi = list(decode_file(path, views=[0], codec=codec(weights)))
    assert [f.frame for f in single] == [0, 1, 2, 3, 4]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(single, multi))


def test_a_static_scenes_pictures_are_copied_in_every_view(weights, tmp_path) -> None:
    """Picture copy in lmvc: view 0's P pictures as mlvc copies them, a dependent view's from its own reference
    (whichever model codes it; its inter-view key picture may copy view 0's); the report counts them per view and
    the file decodes to the encoder's pictures."""
    torch.set_num_threads(1)
    clip = static_clip(views=2, frames=3, height=32, width=64)
    path = tmp_path / "static.mvc"
    c = codec(weights)
    extra = encode_file(clip, c, EncodeSettings(1, "ld", gop=3), path).extra
    copied = extra["pictures_copied_per_view"]  # view 1's key picture may be view 0's, copied inter-view
    assert copied[0] == 2 and copied[1] in (2, 3)
    frames = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=c)}
    assert decoded_psnr(frames, clip.frames) == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)
    assert all(np.array_equal(frames[(v, 0)], frames[(v, t)]) for v in range(2) for t in (1, 2))
    with MvcReader(path) as reader:
        assert reader.header.codec_config["picture_copy"] is True
        assert all(len(reader.read_packet(e)) == 1 for e in reader.select() if e.first_frame > 0)


def test_every_views_key_pictures_are_coded_at_the_key_rung(weights, tmp_path) -> None:
    """The key pictures of every view (view 0's intra picture, a dependent view's inter-view key picture) are coded
    at the key rung: rung 0 with the default key_offset (3 rungs higher: the top rung, 2) writes the key pictures
    that rung 2 with key_offset=0 writes, and decodes exactly."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=3, height=32, width=64, seed=4)
    coded = {}
    for name, q, options in (("top", 0, {}), ("same", 2, {"key_offset": "0"}), ("same-q0", 0, {"key_offset": "0"})):
        path = tmp_path / f"{name}.mvc"
        c = codec(weights, key_picture="interview", frame_skip="off", **options)
        extra = encode_file(clip, c, EncodeSettings(q, "ld", gop=3), path).extra
        frames = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=c)}
        assert decoded_psnr(frames, clip.frames) == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)
        with MvcReader(path) as reader:
            coded[name] = ({(e.view, e.first_frame): (e.kind, reader.read_packet(e)) for e in reader.select()},
                           reader.header.codec_config.get("key_quality"))
    assert coded["top"][1] == 2 and coded["same"][1] is None
    assert coded["top"][0][(1, 0)][0] == INTERVIEW_KEY_PACKET
    assert all(coded["top"][0][key] == coded["same"][0][key] for key in ((0, 0), (1, 0)))
    assert coded["top"][0][(1, 1)] != coded["same"][0][(1, 1)]  # the P pictures at their own rungs
    assert coded["top"][0][(1, 0)] != coded["same-q0"][0][(1, 0)]  # and the key picture's rung matters


@pytest.mark.parametrize("view, frames, packets", [(1, range(1, 2), 4), (0, range(4, 5), 2), (1, range(3, 4), 2)])
def test_a_frame_reads_only_its_dependency_set(coded, weights, view: int, frames: range, packets: int) -> None:
    path, _, _ = coded
    c = codec(weights)
    with MvcReader(path) as reader:
        c.check_decodable(reader.header)
        out = list(c.decode(reader, [view], frames))
        assert [(f.view, f.frame) for f in out] == [(view, t) for t in frames]
        assert reader.packets_read == packets
    full = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=c)}
    assert all(np.array_equal(f.rgb, full[(f.view, f.frame)]) for f in out)


def test_a_damaged_dependent_packet_costs_only_its_view(coded, weights, tmp_path) -> None:
    path, _, _ = coded
    broken = damage_packet(path, tmp_path / "broken.mvc", view=1, frame=1, flip=0xFF)
    with pytest.raises(BitstreamError):
        list(decode_file(broken, codec=codec(weights)))
    out = list(decode_file(broken, codec=codec(weights), skip_damaged=True))
    skipped = [s for s in out if isinstance(s, Skipped)]
    assert [(s.view, s.frames) for s in skipped] == [(1, range(1, 3))]
    assert sorted(f.frame for f in out if isinstance(f, DecodedFrame) and f.view == 0) == [0, 1, 2, 3, 4]
    assert sorted(f.frame for f in out if isinstance(f, DecodedFrame) and f.view == 1) == [0, 3, 4]


def test_four_views_and_all_intra_round_trip(weights, tmp_path) -> None:
    torch.set_num_threads(1)
    clip = synthetic_clip(views=4, frames=3, height=32, width=64)
    for structure in ("ld", "intra"):
        path = tmp_path / f"{structure}.mvc"
        result = encode_file(clip, codec(weights), EncodeSettings(0, structure, gop=2), path)
        frames = list(decode_file(path, codec=codec(weights)))
        assert len(frames) == 12
        with MvcReader(path) as reader:
            assert reader.packets_read == 0 and len(reader.select()) == 12
        dec = {(f.view, f.frame): f.rgb for f in frames}
        sub = list(decode_file(path, views=[3], frames=range(1, 2), codec=codec(weights)))
        assert np.array_equal(sub[0].rgb, dec[(3, 1)])
        assert result.extra["real_bits"] > 0


def test_missing_base_weights_and_bad_options_are_refused(weights, tmp_path) -> None:
    alone = LmvcCodec(weights_file=str(weights[0]))  # its mlvc base is neither shipped nor given
    assert "view 0" in (alone.unavailable_reason() or "")
    with pytest.raises(InputError, match="base_weights_file"):
        LmvcCodec(nope=1)
    with pytest.raises(InputError, match="ra_gop"):
        LmvcCodec(weights_file=str(weights[0]), base_weights_file=str(weights[1]), ra_gop=3)
    with pytest.raises(InputError, match="key_picture must be one of rd, interview, intra"):
        codec(weights, key_picture="both")
    with pytest.raises(InputError, match="dependent_picture must be one of rd, interview, temporal"):
        codec(weights, dependent_picture="simulcast")


def test_a_dependent_key_picture_is_intra_or_inter_view_whichever_costs_less(weights, tmp_path) -> None:
    """key_picture=intra codes the dependent view's key pictures as I pictures (kind 0): exact, and frame 0 of
    view 1 then reads its own packet only; key_picture=rd (the default) codes both ways and keeps the lower
    lambda * MSE + real bpp, packet for packet the forced mode's."""
    from mvcodec.codecs.learned_inter import INTRA_PACKET

    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=4, height=32, width=64)
    packets, cost = encode_modes(weights, clip, tmp_path, "key_picture", ("interview", "intra", "rd"), (1, 0))
    assert {packets["interview"][(1, t)][0] for t in (0, 2)} == {INTERVIEW_KEY_PACKET}
    assert {packets["intra"][(1, t)][0] for t in (0, 2)} == {INTRA_PACKET}
    cheaper = min(("interview", "intra"), key=lambda m: cost[m])
    assert packets["rd"][(1, 0)] == packets[cheaper][(1, 0)]
    with MvcReader(tmp_path / "key_picture-intra.mvc") as reader:
        c = codec(weights)
        c.check_decodable(reader.header)
        out = list(c.decode(reader, [1], range(0, 1)))
        assert reader.packets_read == 1 and out[0].frame == 0


def encode_modes(weights: tuple[Path, Path], clip, folder: Path, option: str, modes: tuple[str, ...],
                 picture: tuple[int, int], structure: str = "ld", distortion_weight: float = 1.0,
                 **fixed: str) -> tuple[dict, dict]:
    """Encode ``clip`` (``structure``, rung 2; intra period 2 for ``key_picture``, else 4 in ld, 8 in ra) once per
    value of ``option``, check each decodes to the encoder's reconstruction; returns ({mode: {(view, frame):
    (kind, payload)}}, {mode: rd cost of ``picture``, its distortion weighed by ``distortion_weight``})."""
    from mvcodec.codecs.learned_structure import rd_cost

    packets, cost = {}, {}
    for mode in modes:
        path = folder / f"{option}-{mode}.mvc"
        c = codec(weights, **{option: mode}, **fixed)
        gop = 2 if option == "key_picture" else 4 if structure == "ld" else 8
        extra = encode_file(clip, c, EncodeSettings(2, structure, gop=gop), path).extra
        frames = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=codec(weights))}
        assert decoded_psnr(frames, clip.frames) == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)
        with MvcReader(path) as reader:
            packets[mode] = {(e.view, e.first_frame): (e.kind, reader.read_packet(e)) for e in reader.select()}
        assert sum(extra["real_bits_per_view"]) == extra["real_bits"]
        x, x_hat = (torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255
                    for a in (clip.frames[picture], frames[picture]))
        cost[mode] = rd_cost(x, x_hat, 8 * len(packets[mode][picture][1]), 2, distortion_weight)
    return packets, cost


@pytest.mark.parametrize("alpha", [0.0, 1000.0])
def test_random_access_decisions_weigh_the_distortion_of_a_picture_others_are_coded_from(weights, tmp_path,
                                                                                          alpha: float) -> None:
    """Option reference_weight=A: in random access (GOP 4) the anchor P picture of view 1 at frame 4, which the
    three B pictures before it are coded from, is kept as the coding of least (1 + 3A) * lambda * MSE + bpp: the
    cheaper one at A = 0, the more faithful one at A = 1000 (packet for packet the forced mode's)."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=5, height=32, width=64)
    packets, cost = encode_modes(weights, clip, tmp_path, "dependent_picture", ("interview", "temporal", "rd"),
                                 (1, 4), "ra", 1 + 3 * alpha, key_picture="intra", ra_gop="4",
                                 reference_weight=str(alpha))
    kept = min(("interview", "temporal"), key=lambda m: cost[m])
    assert packets["rd"][(1, 4)] == packets[kept][(1, 4)]


def test_a_dependent_p_picture_is_coded_with_the_other_views_or_alone_whichever_costs_less(weights, tmp_path) -> None:
    """dependent_picture=temporal codes a dependent view as mlvc codes it alone (kind 1: with intra key pictures
    its packets are those of mlvc on that view, byte for byte, and a frame reads its own view's packets only);
    =interview uses the dependent model (kind 3); =rd (the default) codes both and keeps the lower
    lambda * MSE + real bpp, packet for packet the forced mode's; every file decodes to the encoder's pictures."""
    from mvcodec.codecs.learned_inter import INTER_PACKET

    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=4, height=32, width=64)
    packets, cost = encode_modes(weights, clip, tmp_path, "dependent_picture", ("interview", "temporal", "rd"),
                                 (1, 1), key_picture="intra")
    assert {packets["interview"][(1, t)][0] for t in (1, 2, 3)} == {DEPENDENT_PACKET}
    assert {packets["temporal"][(1, t)][0] for t in (1, 2, 3)} == {INTER_PACKET}
    cheaper = min(("interview", "temporal"), key=lambda m: cost[m])
    assert packets["rd"][(1, 1)] == packets[cheaper][(1, 1)]
    assert {packets["rd"][(1, t)][0] for t in (1, 2, 3)} <= {DEPENDENT_PACKET, INTER_PACKET}

    from mvcodec.io.clip import MultiViewClip
    alone = MultiViewClip(clip.frames[1:], fps=clip.fps)
    mlvc = MlvcCodec(weights_file=str(weights[1]))
    encode_file(alone, mlvc, EncodeSettings(2, "ld", gop=4), tmp_path / "alone.mvc")
    with MvcReader(tmp_path / "alone.mvc") as reader:
        assert all(packets["temporal"][(1, e.first_frame)][1] == reader.read_packet(e) for e in reader.select())
    with MvcReader(tmp_path / "dependent_picture-temporal.mvc") as reader:
        c = codec(weights)
        c.check_decodable(reader.header)
        assert [f.frame for f in c.decode(reader, [1], range(3, 4))] == [3] and reader.packets_read == 4


@pytest.fixture(scope="module")
def coded_ra(weights, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """2 views x 20 frames x 32x64, random access, one intra period, GOP 8, B pictures from the past: anchors
    0 (I / inter-view key), 8, 16, 19 (P), B pictures between (17 = B(16, 19), 18 = B(17, 19))."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=20, height=32, width=64)
    path = tmp_path_factory.mktemp("ra") / "ra.mvc"
    c = codec(weights, ra_gop=8, b_reference="past", key_picture="interview", dependent_picture="interview")
    return path, encode_file(clip, c, EncodeSettings(1, "ra", gop=32), path).extra


def test_random_access_round_trip_is_exact(coded_ra, weights) -> None:
    path, extra = coded_ra
    frames = list(decode_file(path, codec=codec(weights)))
    assert sorted((f.view, f.frame) for f in frames) == [(v, t) for v in range(2) for t in range(20)]
    with MvcReader(path) as reader:
        kinds = {(e.view, e.first_frame): e.kind for e in reader.select()}
    assert kinds[(1, 0)] == INTERVIEW_KEY_PACKET and kinds[(1, 8)] == DEPENDENT_PACKET
    assert kinds[(0, 17)] == B_PAST_PACKET and kinds[(1, 17)] == DEPENDENT_B_PAST_PACKET
    assert extra["real_bits_dependent_b_past"] > 0 and extra["real_bits_b_past"] > 0
    with MvcReader(path) as reader:  # frame-latent skip (the default): every predicted picture's mode byte
        assert header_frame_skip(reader.header, "lmvc")
        modes = [[reader.read_packet(e)[0] for e in reader.select() if e.view == v and e.kind != INTRA_PACKET]
                 for v in range(2)]  # view 1's inter-view key picture (frame 0) is a predicted picture too
    assert all(m in (FRAME_CODED, FRAME_SKIPPED, PICTURE_COPIED) for m in modes[0] + modes[1])
    assert extra["frame_latent_skipped_per_view"] == [m.count(FRAME_SKIPPED) for m in modes]
    assert extra["pictures_copied_per_view"] == [m.count(PICTURE_COPIED) for m in modes]
    original = synthetic_clip(views=2, frames=20, height=32, width=64).frames
    decoded = {(f.view, f.frame): f.rgb for f in frames}
    assert decoded_psnr(decoded, original) == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)


@pytest.mark.parametrize("view, frame, packets", [(1, 17, 8), (0, 17, 4), (1, 4, 4), (0, 18, 5)])
def test_random_access_reads_only_the_dependency_set(coded_ra, weights, view: int, frame: int,
                                                     packets: int) -> None:
    """(1, 17): views 0 and 1 at 17 (B from 16), 16, 8, 0;  (0, 18): 18 -> 17 -> 16 -> 8 -> 0;
    (1, 4): 4 -> 0 in views 0 and 1."""
    path, _ = coded_ra
    c = codec(weights)
    with MvcReader(path) as reader:
        c.check_decodable(reader.header)
        out = list(c.decode(reader, [view], range(frame, frame + 1)))
        assert [(f.view, f.frame) for f in out] == [(view, frame)]
        assert reader.packets_read == packets
    full = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=c)}
    assert np.array_equal(out[0].rgb, full[(view, frame)])


def test_a_dependent_b_picture_takes_its_own_cheaper_reference_and_older_kind_6_files_still_decode(
        coded_ra, weights, tmp_path) -> None:
    """With b_reference=rd a dependent B picture codes both of its references and keeps the cheaper, whatever view
    0's picture of its instant took (kinds 7 / 8); a file whose dependent B pictures carry the kind of lmvc before
    this (6: the direction view 0's took) decodes to the same pictures."""
    from mvcodec.bitstream import MvcWriter
    from mvcodec.codecs.learned_multiview import DEPENDENT_B_FUTURE_PACKET

    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=6, height=32, width=64)
    allowed = {DEPENDENT_B_PAST_PACKET, DEPENDENT_B_FUTURE_PACKET}
    for mode, kinds_b in (("interview", allowed), ("rd", allowed | {B_PAST_PACKET, B_FUTURE_PACKET})):
        path = tmp_path / f"{mode}.mvc"
        extra = encode_file(clip, codec(weights, ra_gop=4, dependent_picture=mode), EncodeSettings(1, "ra", gop=8),
                            path).extra
        with MvcReader(path) as reader:
            kinds = {(e.view, e.first_frame): e.kind for e in reader.select()}
        assert {kinds[(1, t)] for t in (1, 2, 3)} <= kinds_b
        frames = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=codec(weights))}
        assert len(frames) == 12
        assert decoded_psnr(frames, clip.frames) == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)

    path, _ = coded_ra  # b_reference=past in both views: kind 7 means what kind 6 meant
    with MvcReader(path) as reader, MvcWriter(tmp_path / "old.mvc", reader.header) as writer:
        for e in reader.select():
            kind = DEPENDENT_B_PACKET if e.kind == DEPENDENT_B_PAST_PACKET else e.kind
            writer.write_packet(e.view, e.first_frame, e.frame_count, reader.read_packet(e), kind)
    old = {(f.view, f.frame): f.rgb for f in decode_file(tmp_path / "old.mvc", codec=codec(weights))}
    new = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=codec(weights))}
    assert old.keys() == new.keys() and all(np.array_equal(old[k], new[k]) for k in new)


def test_cli_decodes_one_frame_of_a_dependent_view(coded_ra, weights, tmp_path, monkeypatch) -> None:
    """``mvcodec decode --views 1 --frames 17:18`` writes exactly that frame, equal to the full decode's."""
    from mvcodec.cli.main import main
    from mvcodec.codecs.learned_weights import WEIGHTS_ENV

    path, _ = coded_ra
    monkeypatch.setenv(WEIGHTS_ENV, os.pathsep.join(str(w) for w in weights))
    assert main(["decode", str(path), "-o", str(tmp_path / "out"), "--views", "1", "--frames", "17:18"]) == 0
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert written == ["v1_f017.png"]
    import cv2
    one = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "v1_f017.png")), cv2.COLOR_BGR2RGB)
    full = {(f.view, f.frame): f.rgb for f in decode_file(path, codec=codec(weights))}
    assert np.array_equal(one, full[(1, 17)])


def test_four_views_random_access_round_trip(weights, tmp_path) -> None:
    torch.set_num_threads(1)
    clip = synthetic_clip(views=4, frames=5, height=32, width=64)
    c = LmvcCodec(weights_file=str(weights[0]), base_weights_file=str(weights[1]), ra_gop=4)
    encode_file(clip, c, EncodeSettings(0, "ra", gop=8), tmp_path / "ra4.mvc")
    frames = {(f.view, f.frame): f.rgb for f in decode_file(tmp_path / "ra4.mvc", codec=codec(weights))}
    assert len(frames) == 20
    sub = list(decode_file(tmp_path / "ra4.mvc", views=[3], frames=range(2, 3), codec=codec(weights)))
    assert np.array_equal(sub[0].rgb, frames[(3, 2)])
    # view 0 alone keeps the file's GOP (4), whatever the extracting codec's own option (default 8)
    extract_base_view(tmp_path / "ra4.mvc", tmp_path / "v0.mvc", codec(weights))
    single = list(decode_file(tmp_path / "v0.mvc", codec=MlvcCodec(weights_file=str(weights[1]))))
    assert all(np.array_equal(f.rgb, frames[(0, f.frame)]) for f in single) and len(single) == 5


def test_view_0_of_a_random_access_file_decodes_with_the_single_view_decoder(coded_ra, weights, tmp_path) -> None:
    path, _ = coded_ra
    assert extract_base_view(path, tmp_path / "v0.mvc", codec(weights)) == 20
    single = list(decode_file(tmp_path / "v0.mvc", codec=MlvcCodec(weights_file=str(weights[1]))))
    multi = list(decode_file(path, views=[0], codec=codec(weights)))
    assert len(single) == 20 and all(np.array_equal(a.rgb, b.rgb) for a, b in zip(single, multi))


def test_a_file_whose_base_weights_are_missing_is_refused_on_open(coded, weights, monkeypatch) -> None:
    from mvcodec.api import open_decoder
    from mvcodec.codecs.learned_weights import WEIGHTS_ENV

    path, _, _ = coded
    monkeypatch.setenv(WEIGHTS_ENV, str(weights[0]))   # the dependent weights only
    with pytest.raises(BitstreamError, match="needs weights"):
        open_decoder(path)
    monkeypatch.setenv(WEIGHTS_ENV, os.pathsep.join(str(w) for w in weights))
    reader, _ = open_decoder(path)
    reader.close()


def test_shipped_lmvc_v2_codes_its_dependent_latents_where_lmvc_v1_codes_nothing(tmp_path: Path) -> None:
    """lmvc-v2 (trained on mlvc-v2, whose P pictures code their frame latent) codes non-zero symbols in the
    dependent view's HDC-EM slices and decodes them exactly; lmvc-v1 (on the collapsed mlvc-v1) codes none."""
    for weights in ("lmvc-v1", "lmvc-v2"):
        codec = LmvcCodec(weights=weights, dependent_picture="interview", picture_copy="off")  # the model
        shares, _ = shipped_weights_round_trip(codec, 2, tmp_path / f"{weights}.mvc")
        dependent = max((v for k, v in shares.items() if k.startswith("dependent_y") and k != "dependent_y_mv"),
                        default=0.0)  # no slice coded at all: every frame latent skipped
        assert (dependent > 0.01) if weights == "lmvc-v2" else dependent == 0.0


def test_shipped_lmvc_v3_codes_the_dependent_views_motion_where_lmvc_v2_codes_none(tmp_path: Path) -> None:
    """lmvc-v3 (trained on mlvc-v3, whose flow net follows motion) codes non-zero motion symbols in the dependent
    view, decodes them exactly and reconstructs the clip better than lmvc-v2, whose motion path carries nothing
    (BENCHMARKS.md, "lmvc-v3")."""
    psnr = {}
    for weights in ("lmvc-v2", "lmvc-v3"):
        codec = LmvcCodec(weights=weights, dependent_picture="interview", picture_copy="off")  # the model
        shares, psnr[weights] = shipped_weights_round_trip(codec, 2, tmp_path / f"{weights}.mvc")
        assert (shares["dependent_y_mv"] > 0.01) if weights == "lmvc-v3" else shares["dependent_y_mv"] == 0.0
    assert psnr["lmvc-v3"] > psnr["lmvc-v2"] + 1.0


def test_shipped_lmvc_v4_codes_its_dependent_p_pictures_with_the_other_view(tmp_path: Path) -> None:
    """lmvc-v4 (lmvc-v3's priors, then its inter-view modules trained on chains that start from the dependent
    view's own I picture) decodes exactly, and with the inter-view model its dependent P pictures code motion and
    cost fewer bytes than the view coded alone, at no lower PSNR (BENCHMARKS.md, "lmvc-v4")."""
    size, psnr = {}, {}
    for mode in ("interview", "temporal"):
        path = tmp_path / f"{mode}.mvc"
        c = LmvcCodec(weights="lmvc-v4", key_picture="intra", dependent_picture=mode)
        shares, psnr[mode] = shipped_weights_round_trip(c, 2, path)
        size[mode] = path.stat().st_size
        assert (shares["dependent_y_mv"] > 0.01) if mode == "interview" else "dependent_y_mv" not in shares
    assert size["interview"] < size["temporal"] and psnr["interview"] >= psnr["temporal"]


def test_shipped_lmvc_v11_codes_random_access_b_pictures_with_the_other_view(tmp_path: Path) -> None:
    """lmvc-v11 (the default: lmvc-v9's dependent model over mlvc-v5, whose I pictures are mvc-intra-v3's; lmvc-v9
    is lmvc-v6, whose whole dependent model trained on 9-frame intra periods in both structures, retrained without
    the inter-view contexts and HDC-FER as lmvc-v7, then trained further with HDC-EM's shift off; lmvc-v5 to
    lmvc-v10 passed the same test)
    codes view 1's B pictures of a random-access GOP with the other view by its own decision (kinds 7 / 8, motion
    coded), in at least 10% fewer bits than coding the view alone within 0.1 dB, and both files decode to the
    encoder's pictures (BENCHMARKS.md, "lmvc-v6" to "lmvc-v9")."""
    from mvcodec.api import measure_file

    assert LmvcCodec().weights().id == "lmvc-v11"
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=5, height=64, width=64, seed=5)
    bits, psnr, extra = {}, {}, {}
    for mode in ("rd", "temporal"):
        path = tmp_path / f"{mode}.mvc"
        c = LmvcCodec(key_picture="intra", dependent_picture=mode, ra_gop="4")
        extra[mode] = encode_file(clip, c, EncodeSettings(2, "ra", gop=8), path).extra
        bits[mode], psnr[mode] = extra[mode]["real_bits_per_view"][1], extra[mode]["psnr_rgb_encoder_per_view"][1]
        assert measure_file(clip, path, codec=c).psnr_rgb == pytest.approx(extra[mode]["psnr_rgb_encoder"], abs=1e-9)
    kinds = extra["rd"]["dependent_view_kinds"]
    assert kinds.get("dependent_b_past", 0) + kinds.get("dependent_b_future", 0) == 3
    assert extra["rd"]["nonzero_symbol_share"]["dependent_y_mv"] > 0.01
    assert bits["rd"] < 0.9 * bits["temporal"] and psnr["rd"] > psnr["temporal"] - 0.1


def test_a_model_trained_without_inter_view_contexts_and_hdc_fer_round_trips_from_its_file(tmp_path) -> None:
    """The ablation switches are part of the weights file (``model_config``): a dependent model built without the
    inter-view contexts and HDC-FER (as lmvc-v7 to lmvc-v9 are) is rebuilt so from the file, codes both structures and
    decodes to the encoder's reconstruction."""
    path, base = write_lmvc_weights(tmp_path, iv_context=False, hdc_fer=False)
    weights = learned_multiview.read_weights_file(path)
    assert weights.config == DependentConfig(**TINY_INTER.to_json(), disparities=2, slices=4, iv_context=False,
                                             hdc_fer=False)
    dep = weights.model()
    assert dep.iv_predict is None and dep.hdc_fer is None and dep.iv_pyramid is None
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=3, height=32, width=64)
    for structure in ("ld", "ra"):
        c = codec((path, base), dependent_picture="interview", **({"ra_gop": "2"} if structure == "ra" else {}))
        out = tmp_path / f"{structure}.mvc"
        result = encode_file(clip, c, EncodeSettings(2, structure, gop=4), out)
        frames = {(f.view, f.frame): f.rgb for f in decode_file(out, codec=codec((path, base)))}
        assert len(frames) == 6
        assert decoded_psnr(frames, clip.frames) == pytest.approx(result.extra["psnr_rgb_encoder"], abs=1e-9)


@pytest.mark.parametrize("structure, frames, key_copied_frame", [("ld", "ABAA", 2), ("ra", "AAAABBBBA", 8)])
def test_a_picture_that_comes_back_copies_its_views_key_picture(tmp_path, structure, frames, key_copied_frame):
    """Key copy in lmvc (shipped weights, as mlvc's test): every view's picture that comes back to where the
    period began is its own key picture copied (view 1's whichever model codes it), the report counts them per
    view, the file decodes to the encoder's pictures, and view 1's frame alone decodes through its dependency
    set; ``picture_copy=nearest`` writes no key copies."""
    torch.set_num_threads(1)
    clip = coming_back(list(frames), views=2)
    settings = EncodeSettings(1, structure, gop=len(frames))
    out = {}
    for mode in ("rd", "nearest"):
        path = tmp_path / f"{mode}.mvc"
        out[mode] = path, encode_file(clip, LmvcCodec(picture_copy=mode, ra_gop=4), settings, path).extra
        decoded = {(f.view, f.frame): f.rgb for f in decode_file(path)}
        assert decoded_psnr(decoded, clip.frames) == pytest.approx(out[mode][1]["psnr_rgb_encoder"], abs=1e-9)
    (path, extra), (_, plain) = out["rd"], out["nearest"]
    assert extra["pictures_copied_from_key_per_view"] == [1, 1] and plain["pictures_copied_from_key_per_view"] == [0, 0]
    assert extra["psnr_rgb_encoder"] > plain["psnr_rgb_encoder"] + 0.5 and extra["real_bits"] <= plain["real_bits"]
    with MvcReader(path) as reader:
        assert reader.header.codec_config["key_copy"] is True
        (entry,) = reader.select(view=1, frames=range(key_copied_frame, key_copied_frame + 1))
        assert reader.read_packet(entry) == bytes([KEY_COPIED])
    (alone,) = decode_file(path, views=[1], frames=range(key_copied_frame, key_copied_frame + 1))
    (first,) = decode_file(path, views=[1], frames=range(0, 1))
    np.testing.assert_array_equal(alone.rgb, first.rgb)
