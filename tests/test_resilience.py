"""Damaged packets: reported with their (view, frames); ``decode --skip-damaged`` decodes everything else.

Also the regression tests of what the fuzzer (tests/test_fuzz.py) found: decoder output bounded by the header,
overlapping packets, the mv-mginr render-size bound.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import damage_packet, synthetic_clip
from PIL import Image
from test_fuzz import ParsedMvc, check_input, make_seed

from mvcodec.api import decode_file, encode_file
from mvcodec.bitstream import DamagedPacket, MvcReader
from mvcodec.bitstream.container import sealed_index
from mvcodec.bitstream.index import deflate
from mvcodec.cli.main import main
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.codecs.base import Skipped
from mvcodec.errors import BitstreamError

TINY_INR = dict(fit_epochs=2, qat_epochs=1)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def x264_file(tmp_path_factory) -> Path:
    """2 views x 6 frames, intra period 2: packets (view, frames 0:2, 2:4, 4:6)."""
    path = tmp_path_factory.mktemp("res") / "x264.mvc"
    encode_file(synthetic_clip(views=2, frames=6, height=16, width=24), get_codec("x264"),
                EncodeSettings(27, "ld", gop=2), path)
    return path


@pytest.fixture(scope="module")
def inr_file(tmp_path_factory) -> Path:
    return make_seed("mv-mginr", tmp_path_factory.mktemp("res-inr"))


def corrupt_packet(src: Path, dst: Path, view: int, first_frame: int) -> None:
    """Copy ``src`` to ``dst`` with one payload byte of packet (view, first_frame) flipped: its CRC fails."""
    damage_packet(src, dst, view, first_frame)


def test_damaged_packet_names_view_and_frames(x264_file: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.mvc"
    corrupt_packet(x264_file, bad, view=1, first_frame=2)
    with MvcReader(bad) as r, pytest.raises(DamagedPacket) as info:
        for e in r.entries:
            r.read_packet(e)
    assert (info.value.entry.view, info.value.entry.first_frame, info.value.entry.frame_count) == (1, 2, 2)
    status, _, err = run_cli(capsys, "decode", str(bad), "-o", str(tmp_path / "out"))
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "CRC mismatch in the packet of view 1, frames 2:4" in err
    assert not (tmp_path / "out").exists()


def test_skip_damaged_simulcast_skips_exactly_that_packet(x264_file: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.mvc"
    corrupt_packet(x264_file, bad, view=1, first_frame=2)
    out = tmp_path / "out"
    status, stdout, err = run_cli(capsys, "decode", str(bad), "-o", str(out), "--skip-damaged")
    assert status == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mvcodec: skipped view 1 frames 2:4: "), err
    assert "skipped 2 frames" in stdout
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(f"v{v}_f{t:03d}.png" for v in (0, 1) for t in range(6) if (v, t) not in {(1, 2), (1, 3)})
    meta = json.loads((out / "meta.json").read_text())
    assert meta["frames"] == 6
    assert [(s["view"], s["frames"]) for s in meta["skipped"]] == [(1, [2, 4])]
    # what was decoded is exactly what a clean decode gives
    clean = {(f.view, f.frame): f.rgb for f in decode_file(x264_file)}
    for v, t in clean:
        if (v, t) not in {(1, 2), (1, 3)}:
            assert np.array_equal(np.asarray(Image.open(out / f"v{v}_f{t:03d}.png")), clean[v, t])


def test_skip_damaged_api_yields_skipped_markers(x264_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mvc"
    corrupt_packet(x264_file, bad, view=0, first_frame=0)
    items = list(decode_file(bad, views=[0], frames=range(1, 5), skip_damaged=True))
    assert isinstance(items[0], Skipped) and (items[0].view, items[0].frames) == (0, range(1, 2))
    assert [(f.view, f.frame) for f in items[1:]] == [(0, 2), (0, 3), (0, 4)]
    with pytest.raises(BitstreamError, match="view 0, frames 0:2"):
        list(decode_file(bad, views=[0], frames=range(1, 5)))
    # a request that does not touch the damaged packet is not affected at all
    assert len(list(decode_file(bad, views=[1]))) == 6


def test_skip_damaged_garbage_payload_with_valid_crc(x264_file: Path, tmp_path: Path, capsys) -> None:
    """A payload that passes its CRC but that ffmpeg rejects is skipped the same way."""
    parsed = ParsedMvc.parse(x264_file)
    (i,) = [i for i, p in enumerate(parsed.packets) if (p.view, p.first_frame) == (0, 4)]
    parsed.packets[i].payload = b"\x00\x00\x01" + bytes(range(200))
    bad = tmp_path / "garbage.mvc"
    bad.write_bytes(parsed.build())
    status, _, err = run_cli(capsys, "decode", str(bad), "-o", str(tmp_path / "out"), "--skip-damaged")
    assert status == 0, err
    assert err.startswith("mvcodec: skipped view 0 frames 4:6: ")
    assert len(list((tmp_path / "out").glob("*.png"))) == 10


def test_skip_damaged_mginr_weights_packet_means_nothing_decodes(inr_file: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.mvc"
    corrupt_packet(inr_file, bad, view=0xFFFF, first_frame=0)
    items = list(decode_file(bad, skip_damaged=True))
    assert [(s.view, s.frames) for s in items] == [(0, range(4)), (1, range(4))]
    assert all(isinstance(s, Skipped) and "every frame depends on the weights packet" in s.reason for s in items)
    status, _, err = run_cli(capsys, "decode", str(bad), "-o", str(tmp_path / "out"), "--skip-damaged")
    assert status == 2 and "nothing could be decoded" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_skip_damaged_needs_png(x264_file: Path, tmp_path: Path, capsys) -> None:
    status, _, err = run_cli(capsys, "decode", str(x264_file), "-o", str(tmp_path / "o"), "--format", "y4m",
                             "--skip-damaged")
    assert status == 2 and "--format png" in err


def test_clean_file_with_skip_damaged_is_a_normal_decode(x264_file: Path, tmp_path: Path, capsys) -> None:
    status, _, err = run_cli(capsys, "decode", str(x264_file), "-o", str(tmp_path / "o"), "--skip-damaged")
    assert status == 0 and err == ""
    assert "skipped" not in json.loads((tmp_path / "o" / "meta.json").read_text())


# ------------------------------------------------------------------------------------ fuzzer findings


def test_ffmpeg_output_is_bounded_by_the_header(tmp_path: Path, monkeypatch) -> None:
    """Finding: a tiny header with a packet holding a long, large stream made ffmpeg write every picture of it
    to memory before the size check.  Now pictures over the header's size are refused by the decoder and at most
    frame_count + 1 pictures come out."""
    import mvcodec.codecs.simulcast as simulcast

    big = tmp_path / "big.mvc"
    encode_file(synthetic_clip(views=1, frames=12, height=256, width=320), get_codec("x264"),
                EncodeSettings(40, "ld", gop=12), big)
    small = tmp_path / "small.mvc"
    encode_file(synthetic_clip(views=1, frames=12, height=16, width=24), get_codec("x264"),
                EncodeSettings(40, "ld", gop=12), small)
    outputs = []
    real = simulcast.run_ffmpeg

    def spy(args, *a, **k):
        out = real(args, *a, **k)
        outputs.append(len(out))
        return out

    monkeypatch.setattr(simulcast, "run_ffmpeg", spy)
    # a big stream under a small header: refused, nothing large comes out
    parsed = ParsedMvc.parse(small)
    parsed.packets[0].payload = ParsedMvc.parse(big).packets[0].payload
    hostile = tmp_path / "hostile.mvc"
    hostile.write_bytes(parsed.build())
    assert check_input(hostile.read_bytes(), "big stream, small header") is None
    assert all(n <= 13 * 16 * 24 * 3 // 2 for n in outputs), outputs
    # a packet claiming fewer frames than its stream holds: at most frame_count + 1 pictures are read
    parsed = ParsedMvc.parse(small)
    parsed.fields["frames"], parsed.packets[0].frame_count = 2, 2
    short = tmp_path / "short.mvc"
    short.write_bytes(parsed.build())
    outputs.clear()
    with pytest.raises(BitstreamError, match="3 pictures decoded, 2 expected"):
        list(decode_file(short))
    assert outputs == [] or max(outputs) <= 3 * 16 * 24 * 3 // 2


def test_overlapping_packets_are_refused(x264_file: Path, tmp_path: Path) -> None:
    """Finding: a duplicated index entry made the decoder yield the same frames twice (the PNG writer then
    misnamed every later frame); overlapping packets are now a one-line error, and decode_file checks that a
    codec yields each requested frame once, in order."""
    parsed = ParsedMvc.parse(x264_file)
    parsed.packets.insert(1, parsed.packets[0])
    dup = tmp_path / "dup.mvc"
    dup.write_bytes(parsed.build())
    with pytest.raises(BitstreamError, match="overlap"):
        list(decode_file(dup))


def test_mginr_refuses_a_picture_too_large_to_render(inr_file: Path, tmp_path: Path, capsys) -> None:
    """Finding: the parameter-count bound let a 16384 x 16384 header through (5.8 M parameters), and rendering
    one frame of it would need ~54 GiB of activations; the render size is now checked before building."""
    parsed = ParsedMvc.parse(inr_file)
    parsed.fields["width"] = parsed.fields["height"] = 16384
    big = tmp_path / "big.mvc"
    big.write_bytes(parsed.build())
    status, _, err = run_cli(capsys, "decode", str(big), "-o", str(tmp_path / "o"))
    assert status == 2 and "would need about" in err, err


@pytest.mark.parametrize("field,value", [("frames", 10 ** 9), ("width", 10 ** 5), ("height", 10 ** 5),
                                         ("views", 0xFFFF), ("gop", 0)])
def test_extreme_header_fields_are_refused_on_open(x264_file: Path, field: str, value: int) -> None:
    parsed = ParsedMvc.parse(x264_file)
    parsed.fields[field] = value
    assert check_input(parsed.build(), f"{field}={value}") is None


def test_huge_index_count_and_packet_length_are_refused(x264_file: Path) -> None:
    data = x264_file.read_bytes()
    (index_len,) = struct.unpack_from("<I", data, len(data) - 16)
    index = deflate(b"\xff\xff\xff\xff\x0f")  # a count of 2**32 - 1 packets, behind a valid CRC
    huge_count = data[:len(data) - 16 - index_len] + sealed_index(index)
    assert check_input(huge_count, "index count") is None
    parsed = ParsedMvc.parse(x264_file)
    parsed.entry_overrides[0] = {"length": 0xFFFFFFFF}
    assert check_input(parsed.build(), "packet length") is None
