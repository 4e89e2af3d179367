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
from conftest import synthetic_clip
from test_inter_codec import TINY_INTER, write_weights
from test_multiview_model import perturb

from mvcodec.api import decode_file, encode_file
from mvcodec.bitstream import MvcReader
from mvcodec.codecs.base import DecodedFrame, EncodeSettings, Skipped
from mvcodec.codecs.learned_inter import MlvcCodec
from mvcodec.codecs.learned_multiview import (
    DEPENDENT_PACKET,
    INTERVIEW_KEY_PACKET,
    LmvcCodec,
    extract_base_view,
    save_lmvc_weights,
)
from mvcodec.errors import BitstreamError, InputError
from mvcodec.models.inter import build_inter
from mvcodec.models.multiview import DependentConfig, from_single_view


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("w")
    base = folder / "mlvc.safetensors"
    base_sha = write_weights(base)
    torch.manual_seed(0)
    single = build_inter(TINY_INTER)
    from mvcodec.codecs.learned_inter import read_weights_file
    single.load_state_dict(read_weights_file(base).part("inter."))
    dep = from_single_view(DependentConfig(**TINY_INTER.to_json(), disparities=2, slices=4), single)
    perturb(dep)
    dep.update()
    path = folder / "lmvc.safetensors"
    save_lmvc_weights(dep, base_sha, path)
    return path, base


def codec(weights: tuple[Path, Path]) -> LmvcCodec:
    return LmvcCodec(weights_file=str(weights[0]), base_weights_file=str(weights[1]))


def digest(frames: list) -> str:
    h = hashlib.sha256()
    for f in sorted((f for f in frames if isinstance(f, DecodedFrame)), key=lambda f: (f.view, f.frame)):
        h.update(f.rgb.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def coded(weights, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, np.ndarray]:
    """2 views x 5 frames x 48x80, intra period 3: frames 0, 3 key pictures."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=5, height=48, width=80)
    path = tmp_path_factory.mktemp("c") / "clip.mvc"
    result = encode_file(clip, codec(weights), EncodeSettings(1, "ld", gop=3), path)
    return path, result.extra, clip.frames


def test_round_trip_is_exact_and_uses_every_packet_kind(coded, weights) -> None:
    path, extra, original = coded
    frames = list(decode_file(path, codec=codec(weights)))
    assert len(frames) == 10 and all(f.rgb.shape == (48, 80, 3) for f in frames)
    with MvcReader(path) as reader:
        kinds = {(e.view, e.first_frame): e.kind for e in reader.select()}
    assert kinds[(1, 0)] == INTERVIEW_KEY_PACKET and kinds[(1, 1)] == DEPENDENT_PACKET and kinds[(0, 3)] == 0
    assert extra["real_bits_dependent"] > 0 and extra["real_bits_interview_key"] > 0
    assert abs(extra["real_bits"] - extra["estimated_bits"]) <= 0.02 * extra["estimated_bits"] + 8 * 12 * 10


def test_encoder_reconstruction_equals_the_decoder(coded, weights) -> None:
    path, extra, original = coded
    frames = list(decode_file(path, codec=codec(weights)))
    from mvcodec.metrics import MetricAccumulator
    acc = MetricAccumulator(ms_ssim=False)
    for f in frames:
        acc.add(f.view, original[f.view, f.frame], f.rgb)
    assert acc.result().psnr_rgb == pytest.approx(extra["psnr_rgb_encoder"], abs=1e-9)


def test_view_0_decodes_with_the_single_view_decoder_alone(coded, weights, tmp_path) -> None:
    path, _, _ = coded
    base_file = tmp_path / "view0.mvc"
    assert extract_base_view(path, base_file, codec(weights)) == 5
    single = list(decode_file(base_file, codec=MlvcCodec(weights_file=str(weights[1]))))
    multi = list(decode_file(path, views=[0], codec=codec(weights)))
    assert [f.frame for f in single] == [0, 1, 2, 3, 4]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(single, multi))


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
    data = bytearray(path.read_bytes())
    with MvcReader(path) as reader:
        entry = reader.select(view=1, frames=range(1, 2))[0]
    data[entry.offset + 8 + entry.length // 2] ^= 0xFF
    broken = tmp_path / "broken.mvc"
    broken.write_bytes(bytes(data))
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


def test_random_access_and_missing_base_weights_are_refused(weights, tmp_path) -> None:
    clip = synthetic_clip(views=2, frames=2, height=32, width=64)
    with pytest.raises(InputError, match="random access"):
        encode_file(clip, codec(weights), EncodeSettings(0, "ra", gop=2), tmp_path / "ra.mvc")
    alone = LmvcCodec(weights_file=str(weights[0]))  # its mlvc base is neither shipped nor given
    assert "view 0" in (alone.unavailable_reason() or "")
    with pytest.raises(InputError, match="base_weights_file"):
        LmvcCodec(nope=1)


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
