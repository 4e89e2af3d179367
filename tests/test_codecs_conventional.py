"""Conventional codecs (x264, x265, SVT-AV1, VVenC through ffmpeg; MV-HEVC adapter) through real .mvc files.

Every test uses tiny clips (2 views x 6 frames x 64x48) so the whole file runs in seconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from mvcodec.bitstream import MvcHeader, MvcReader, MvcWriter
from mvcodec.codecs import EncodeSettings, codec_ids, get_codec
from mvcodec.codecs import ffmpeg_tools as ft
from mvcodec.codecs.mvhevc import ENCODER_ENV, KIND_SINGLE, MvHevcCodec, view_select, x265_command
from mvcodec.codecs.simulcast import SPECS, decode_stream
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import MultiViewClip
from mvcodec.io.colour import rgb_to_yuv420, yuv420_to_rgb

SIMULCAST = ("x264", "x265", "svtav1", "vvenc")
HIGH_QUALITY = {"x264": 22, "x265": 22, "svtav1": 27, "vvenc": 22}
LOW_QUALITY = {"x264": 37, "x265": 37, "svtav1": 51, "vvenc": 37}


def make_clip(views: int = 2, frames: int = 6, height: int = 48, width: int = 64, seed: int = 0) -> MultiViewClip:
    """Smooth texture panning right and down; each view sees it 4 pixels further right (a disparity)."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height + 2 * frames + 8, width + 4 * frames + 4 * views + 8
    yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float64)
    tex = np.stack([np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in (0.0, 1.0, 2.0)], axis=-1)
    tex = 128 + 70 * tex + 20 * rng.standard_normal((big_h, big_w, 1)).repeat(3, axis=-1) * 0.3
    out = np.empty((views, frames, height, width, 3), np.uint8)
    for v in range(views):
        for t in range(frames):
            y0, x0 = t, 2 * t + 4 * v
            out[v, t] = np.clip(tex[y0:y0 + height, x0:x0 + width], 0, 255).astype(np.uint8)
    return MultiViewClip(out, fps=30.0)


def encode_file(codec, clip: MultiViewClip, settings: EncodeSettings, path: Path) -> dict:
    """encode -> MvcWriter -> file, as ``mvcodec.api.encode_file`` does."""
    info = clip.info
    fps_num, fps_den = MvcHeader.fps_fraction(info.fps)
    header = MvcHeader(codec_id=codec.id, views=info.views, frames=info.frames, width=info.width,
                       height=info.height, fps_num=fps_num, fps_den=fps_den, structure=settings.structure,
                       gop=settings.gop, codec_config=codec.config(settings), weights_sha256=codec.weights_sha256(),
                       view_names=list(info.view_names))
    with MvcWriter(path, header) as writer:
        return codec.encode(clip, settings, writer)


def decode_file(codec, path: Path, views=None, frames=None) -> tuple[dict, int]:
    """{(view, frame): rgb} of a file, and the number of packets read."""
    with MvcReader(path) as reader:
        views = range(reader.header.views) if views is None else views
        frames = range(reader.header.frames) if frames is None else frames
        out = {(d.view, d.frame): d.rgb for d in codec.decode(reader, views, frames)}
        return out, reader.packets_read


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def available(codec_id: str, **options):
    codec = get_codec(codec_id, **options)
    reason = codec.unavailable_reason()
    if reason:
        pytest.skip(f"{codec_id} unavailable: {reason}")
    return codec


# ------------------------------------------------------------------------------------------ registry


def test_conventional_codecs_are_registered_with_ladders():
    assert set(SIMULCAST) | {"mvhevc"} <= set(codec_ids()) and set(SPECS) == set(SIMULCAST)
    for cid in (*SIMULCAST, "mvhevc"):
        codec = get_codec(cid)
        assert codec.id == cid
        assert len(codec.default_qualities) >= 4 and list(codec.default_qualities) == sorted(codec.default_qualities)
        assert codec.quality_help and codec.description and codec.requirements()
        for q in codec.default_qualities:
            codec.config(EncodeSettings(q, "ra", 32))  # every ladder point is a valid QP


@pytest.mark.parametrize("cid", SIMULCAST)
def test_quality_must_be_an_integer_qp_in_range(cid):
    codec = get_codec(cid)
    with pytest.raises(InputError):
        codec.config(EncodeSettings(27.5))
    with pytest.raises(InputError):
        codec.config(EncodeSettings(99))
    with pytest.raises(InputError):
        get_codec(cid, bogus=1)


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("cid", SIMULCAST)
def test_round_trip_through_a_real_file(cid, tmp_path):
    codec = available(cid)
    clip = make_clip()
    path = tmp_path / f"{cid}.mvc"
    report = encode_file(codec, clip, EncodeSettings(HIGH_QUALITY[cid], "ld", gop=32), path)
    assert report["packets"] == 2 and report["payload_bytes"] < path.stat().st_size
    out, read = decode_file(get_codec(cid), path)
    assert sorted(out) == [(v, t) for v in range(2) for t in range(6)]
    assert read == 2
    for (v, t), rgb in out.items():
        assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    psnr = np.mean([psnr_rgb(rgb, clip.frames[v, t]) for (v, t), rgb in out.items()])
    assert psnr > 32.0, f"{cid}: PSNR-RGB {psnr:.2f} dB at QP {HIGH_QUALITY[cid]}"


@pytest.mark.parametrize("structure", ["ra", "intra"])
def test_x265_every_structure_round_trips(structure, tmp_path):
    codec = available("x265")
    clip = make_clip()
    encode_file(codec, clip, EncodeSettings(22, structure, gop=32), tmp_path / "a.mvc")
    out, _ = decode_file(codec, tmp_path / "a.mvc")
    assert len(out) == 12
    assert min(psnr_rgb(rgb, clip.frames[v, t]) for (v, t), rgb in out.items()) > 32.0


@pytest.mark.parametrize("structure", ["ra", "intra"])
@pytest.mark.parametrize("cid", ["x264", "svtav1", "vvenc"])
def test_other_codecs_every_structure_round_trips(cid, structure, tmp_path):
    codec = available(cid)
    clip = make_clip()
    encode_file(codec, clip, EncodeSettings(HIGH_QUALITY[cid], structure, gop=4), tmp_path / "a.mvc")
    out, _ = decode_file(codec, tmp_path / "a.mvc")
    assert len(out) == 12
    assert min(psnr_rgb(rgb, clip.frames[v, t]) for (v, t), rgb in out.items()) > 30.0


def test_intra_structure_costs_more_than_inter(tmp_path):
    codec = available("x265")
    clip = make_clip()
    sizes = {}
    for structure in ("ld", "intra"):
        encode_file(codec, clip, EncodeSettings(27, structure, gop=32), tmp_path / f"{structure}.mvc")
        sizes[structure] = (tmp_path / f"{structure}.mvc").stat().st_size
    assert sizes["intra"] > sizes["ld"]


@pytest.mark.parametrize("cid", SIMULCAST)
def test_lower_qp_gives_more_bytes(cid, tmp_path):
    codec = available(cid)
    clip = make_clip(views=1)
    sizes = []
    for q in (HIGH_QUALITY[cid], LOW_QUALITY[cid]):
        encode_file(codec, clip, EncodeSettings(q, "ra", gop=32), tmp_path / f"{q}.mvc")
        sizes.append((tmp_path / f"{q}.mvc").stat().st_size)
    assert sizes[0] > sizes[1]


@pytest.mark.parametrize("cid", SIMULCAST)
def test_odd_frame_size(cid, tmp_path):
    codec = available(cid)
    clip = make_clip(views=1, frames=3, height=47, width=63)
    encode_file(codec, clip, EncodeSettings(HIGH_QUALITY[cid], "ra", gop=32), tmp_path / "odd.mvc")
    out, _ = decode_file(codec, tmp_path / "odd.mvc")
    assert all(rgb.shape == (47, 63, 3) for rgb in out.values())
    assert min(psnr_rgb(rgb, clip.frames[v, t]) for (v, t), rgb in out.items()) > 30.0


def test_lossless_x264_returns_exactly_the_colour_converted_input(tmp_path):
    """QP 0 in x264 is lossless: any colour conversion or rounding inside ffmpeg would show up here."""
    codec = available("x264")
    clip = make_clip(views=1, frames=3, height=47, width=63)
    encode_file(codec, clip, EncodeSettings(0, "ld", gop=32), tmp_path / "ll.mvc")
    out, _ = decode_file(codec, tmp_path / "ll.mvc")
    for (v, t), rgb in out.items():
        np.testing.assert_array_equal(rgb, yuv420_to_rgb(*rgb_to_yuv420(clip.frames[v, t])))


# ------------------------------------------------------------------------------------------ random access


def test_frame_range_reads_only_the_packets_it_needs(tmp_path):
    codec = available("x265")
    clip = make_clip()
    encode_file(codec, clip, EncodeSettings(27, "ra", gop=2), tmp_path / "g2.mvc")  # 3 packets per view
    full, read_all = decode_file(codec, tmp_path / "g2.mvc")
    assert read_all == 6
    part, read = decode_file(codec, tmp_path / "g2.mvc", views=[1], frames=range(2, 4))
    assert read == 1 and sorted(part) == [(1, 2), (1, 3)]
    for key, rgb in part.items():
        np.testing.assert_array_equal(rgb, full[key])
    part, read = decode_file(codec, tmp_path / "g2.mvc", views=[0], frames=range(1, 3))
    assert read == 2 and sorted(part) == [(0, 1), (0, 2)]
    with pytest.raises(InputError):
        decode_file(codec, tmp_path / "g2.mvc", views=[0], frames=range(5, 7))
    with pytest.raises(InputError):
        decode_file(codec, tmp_path / "g2.mvc", views=[2])


@pytest.mark.parametrize("cid", SIMULCAST)
def test_encoding_and_decoding_are_deterministic(cid, tmp_path):
    codec = available(cid)
    clip = make_clip(views=1, frames=4)
    settings = EncodeSettings(HIGH_QUALITY[cid], "ra", gop=32)
    encode_file(codec, clip, settings, tmp_path / "a.mvc")
    encode_file(get_codec(cid), clip, settings, tmp_path / "b.mvc")
    assert (tmp_path / "a.mvc").read_bytes() == (tmp_path / "b.mvc").read_bytes()
    first, _ = decode_file(codec, tmp_path / "a.mvc")
    second, _ = decode_file(get_codec(cid), tmp_path / "a.mvc")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_av1_decoders_agree(tmp_path):
    """Two independent AV1 decoders (dav1d, libaom) give the same pictures: the decode is the normative one."""
    codec = available("svtav1")
    if ft.ffmpeg_missing(decoder="libaom-av1"):
        pytest.skip("ffmpeg has no libaom-av1 decoder")
    clip = make_clip(views=1, frames=4)
    encode_file(codec, clip, EncodeSettings(35, "ra", gop=32), tmp_path / "a.mvc")
    with MvcReader(tmp_path / "a.mvc") as reader:
        payload = reader.read_packet(reader.entries[0])
    cfg = {"decoder": "libdav1d", "container": "obu", "bit_depth": 8}
    dav1d = decode_stream(payload, cfg, 48, 64, 4, "dav1d")
    aom = decode_stream(payload, {**cfg, "decoder": "libaom-av1"}, 48, 64, 4, "libaom")
    for a, b in zip(dav1d, aom):
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa, pb)


# ------------------------------------------------------------------------------------------ errors


def test_damaged_packet_is_a_bitstream_error(tmp_path):
    codec = available("x265")
    encode_file(codec, make_clip(), EncodeSettings(27, "ld", gop=32), tmp_path / "a.mvc")
    with MvcReader(tmp_path / "a.mvc") as reader:
        entry = reader.entries[1]
    data = bytearray((tmp_path / "a.mvc").read_bytes())
    data[entry.offset + entry.length // 2] ^= 0x40  # a byte in the middle of view 1's payload
    (tmp_path / "a.mvc").write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match="CRC"):
        decode_file(codec, tmp_path / "a.mvc", views=[1])
    out, _ = decode_file(codec, tmp_path / "a.mvc", views=[0])  # the other view is untouched
    assert len(out) == 6


def test_file_of_another_codec_is_refused(tmp_path):
    encode_file(available("x264"), make_clip(views=1, frames=2), EncodeSettings(30, "ld"), tmp_path / "a.mvc")
    with pytest.raises(BitstreamError, match="x264"):
        decode_file(get_codec("x265"), tmp_path / "a.mvc")


def test_ffmpeg_failure_is_one_line_codec_error():
    if ft.ffmpeg_exe() is None:
        pytest.skip("no ffmpeg")
    with pytest.raises(CodecError) as exc:
        ft.run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "63x47", "-i", "pipe:0",
                       "-c:v", "libx264", "-f", "null", "-"], "test encode", stdin=bytes(63 * 47 + 2 * 32 * 24))
    message = str(exc.value)
    assert "\n" not in message and message.startswith("test encode failed") and "divisible by 2" in message


def test_hung_tool_times_out_with_codec_error():
    with pytest.raises(CodecError, match="timed out"):
        ft.run_tool([sys.executable, "-c", "import time; time.sleep(10)"], "sleeper", timeout=0.5)


def test_missing_encoder_is_reported():
    assert "libnosuchcodec" in ft.ffmpeg_missing(encoder="libnosuchcodec")


# ------------------------------------------------------------------------------------------ raw frames


def test_padding_and_raw_frame_packing():
    assert ft.padded_size(47, 63) == (48, 64)
    assert ft.padded_size(8, 200) == (16, 200)
    rng = np.random.default_rng(1)
    frames = [tuple(rng.integers(0, 256, s, dtype=np.uint8) for s in ((4, 6), (2, 3), (2, 3))) for _ in range(2)]
    for depth in (8, 10):
        back = ft.unpack_frames(ft.pack_frames(frames, depth), 4, 6, depth)
        for f, g in zip(frames, back):
            for p, q in zip(f, g):
                np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError):
        ft.unpack_frames(b"\0" * 37, 4, 6, 8)


# ------------------------------------------------------------------------------------------ MV-HEVC


def test_mvhevc_without_encoder_is_unavailable_and_says_what_to_provide(monkeypatch, tmp_path):
    monkeypatch.delenv(ENCODER_ENV, raising=False)
    codec = get_codec("mvhevc")
    reason = codec.unavailable_reason()
    assert reason and ENCODER_ENV in reason and "encoder=" in reason and "\n" not in reason
    with pytest.raises(CodecError, match=ENCODER_ENV):
        encode_file(codec, make_clip(), EncodeSettings(27), tmp_path / "mv.mvc")
    assert not (tmp_path / "mv.mvc").exists()
    assert "not an executable" in get_codec("mvhevc", encoder=str(tmp_path / "nope")).unavailable_reason()


def test_mvhevc_round_trip_or_skip_with_reason(tmp_path):
    codec = available("mvhevc")  # skipped, with the reason, unless MVCODEC_MVHEVC_ENCODER names an x265
    clip = make_clip(views=3)
    encode_file(codec, clip, EncodeSettings(22, "ra", gop=4), tmp_path / "mv.mvc")
    out, read = decode_file(codec, tmp_path / "mv.mvc", views=[1], frames=range(0, 2))
    assert sorted(out) == [(1, 0), (1, 1)] and read == 1
    out, _ = decode_file(codec, tmp_path / "mv.mvc")
    assert len(out) == 18
    assert min(psnr_rgb(rgb, clip.frames[v, t]) for (v, t), rgb in out.items()) > 32.0


def test_x265_multiview_command_line():
    argv, config = x265_command("/opt/x265", ["/t/view0.yuv", "/t/view1.yuv"], "/t/out.hevc", 64, 48, "30/1", 6,
                                27, "ra", 32, "medium", "/t/mv.cfg")
    assert config == '--num-views 2\n--format 0\n--input "/t/view0.yuv"\n--input "/t/view1.yuv"\n'
    assert argv[:3] == ["/opt/x265", "--multiview-config", "/t/mv.cfg"]
    opts = " ".join(argv[3:])
    for part in ("--input-res 64x48", "--input-csp i420", "--fps 30/1", "--frames 6", "--output /t/out.hevc",
                 "--preset medium", "--qp 27", "--keyint 32 --min-keyint 32", "--no-scenecut", "--no-open-gop",
                 "--bframes 7 --b-adapt 0 --b-pyramid", "--frame-threads 1", "--pools none", "--no-info",
                 "--range limited", "--colormatrix bt709"):
        assert part in opts, part
    assert "--input " not in opts  # the views come from the config file
    argv, config = x265_command("x265", ["/t/v.yuv"], "/t/o.hevc", 64, 48, "30/1", 6, 30, "intra", 32, "fast",
                                "/t/mv.cfg")
    assert config is None and "--multiview-config" not in argv
    assert argv[1:3] == ["--input", "/t/v.yuv"] and "--keyint 1" in " ".join(argv)
    assert view_select(1) == ["-map", "0:v:0:vidx:1"]


def test_mvhevc_decodes_single_layer_packets(tmp_path):
    """The decoding half of the adapter on a file whose one view is a plain HEVC stream (made by libx265),
    the form x265 writes for an unpaired view; a real two-layer stream needs the external encoder."""
    x265 = available("x265")
    clip = make_clip(views=1, frames=4)
    encode_file(x265, clip, EncodeSettings(22, "ld", gop=2), tmp_path / "plain.mvc")
    mv = MvHevcCodec()
    settings = EncodeSettings(22, "ld", gop=2)
    header = MvcHeader(codec_id="mvhevc", views=1, frames=4, width=64, height=48, fps_num=30, fps_den=1,
                       structure="ld", gop=2, codec_config=mv.config(settings), view_names=["v0"])
    with MvcReader(tmp_path / "plain.mvc") as src, MvcWriter(tmp_path / "mv.mvc", header) as writer:
        for e in src.entries:
            writer.write_packet(e.view, e.first_frame, e.frame_count, src.read_packet(e), kind=KIND_SINGLE)
    out, read = decode_file(mv, tmp_path / "mv.mvc", frames=range(2, 4))
    reference, _ = decode_file(x265, tmp_path / "plain.mvc", frames=range(2, 4))
    assert read == 1 and sorted(out) == [(0, 2), (0, 3)]
    for key in out:
        np.testing.assert_array_equal(out[key], reference[key])


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as a stand-in encoder")
def test_mvhevc_encoder_failure_is_a_codec_error(tmp_path):
    fake = tmp_path / "x265"
    fake.write_text("#!/bin/sh\necho 'x265 [error]: unknown option multiview-config' >&2\nexit 1\n")
    fake.chmod(0o755)
    codec = get_codec("mvhevc", encoder=str(fake))
    if codec.unavailable_reason():
        pytest.skip(codec.unavailable_reason())
    with pytest.raises(CodecError, match="unknown option multiview-config"):
        encode_file(codec, make_clip(), EncodeSettings(27, "ld", gop=32), tmp_path / "mv.mvc")


@pytest.mark.parametrize("cid, preset", [("x265", "ultrafast"), ("x264", "ultrafast")])
def test_random_access_works_with_the_fastest_presets(cid, preset, tmp_path):
    """x265's ultrafast lookahead (5) is shorter than the 7 B frames of 'ra' unless we set it."""
    from conftest import synthetic_clip

    from mvcodec.api import encode_file, measure_file

    clip = synthetic_clip(views=1, frames=9)
    path = tmp_path / f"{cid}.mvc"
    encode_file(clip, get_codec(cid, preset=preset), EncodeSettings(quality=27, structure="ra", gop=9), path)
    assert measure_file(clip, path).psnr_rgb > 30
