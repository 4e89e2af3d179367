"""The container's format 2 (compact header and index) and the reading of format-1 files.

``data/format1_mlvc_ra.mvc`` is a real file of the previous format: mlvc-v3, random access (period 4, B GOP 2),
2 views x 4 frames of ``synthetic_clip(views=2, frames=4, height=32, width=48)`` at rung 5, written by mvcodec
before format 2 (2026-12-07).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_clip
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bitstream import make_header, write_sample

from mvcodec.api import decode_file
from mvcodec.bitstream import GLOBAL_VIEW, MvcReader, MvcWriter, PacketEntry
from mvcodec.bitstream.container import _TRAILER, file_preamble, file_trailer, sealed_index
from mvcodec.bitstream.header import pack_header
from mvcodec.bitstream.index import SHORT_PACKET, crc32, deflate, pack_index, packet_checksum, unpack_index
from mvcodec.cli.main import main
from mvcodec.errors import BitstreamError
from mvcodec.metrics import psnr_rgb

FORMAT1_FILE = Path(__file__).parent / "data" / "format1_mlvc_ra.mvc"


def test_index_round_trips_every_field():
    entries, offset = [], 100
    for i, (view, kind, first, count, length) in enumerate([
            (GLOBAL_VIEW, 3, 0, 32, 70_000), (0, 0, 0, 1, 1), (0, 2, 8, 1, 2), (1, 255, 4, 1, SHORT_PACKET),
            (0xFFFE, 1, 1_000_000, 0, SHORT_PACKET + 1), (1, 7, 2, 1, 5)]):
        payload = bytes([i]) * length
        entries.append(PacketEntry(view, kind, first, count, offset, length, packet_checksum(payload)))
        offset += length
    assert unpack_index(pack_index(entries), 100, offset - 100) == entries


def test_an_index_claims_at_most_a_packet_a_byte(tmp_path):
    """A few bytes of DEFLATE can claim millions of empty packets: the writer writes no empty packet and the
    reader refuses an index that claims more packets than the data section has bytes, before allocating them."""
    with pytest.raises(ValueError, match="empty packet"):
        with MvcWriter(tmp_path / "e.mvc", make_header()) as w:
            w.write_packet(0, 0, 1, b"")
    bomb = deflate(b"\x80\x89\x7a" + bytes(5 * 2_000_000) + bytes(2 * 2_000_000))  # 2,000,000 empty packets
    assert len(bomb) < 20_000
    with pytest.raises(BitstreamError, match="inflates to more than 560 bytes"):
        unpack_index(bomb, 0, 10)
    with pytest.raises(BitstreamError, match="claims 2000000 packets in a data section of 10 bytes"):
        unpack_index(deflate(b"\x80\x89\x7a"), 0, 10)
    empty = PacketEntry(0, 0, 0, 1, 0, 0, packet_checksum(b""))
    with pytest.raises(BitstreamError, match="empty packet"):
        unpack_index(pack_index([empty]), 0, 1)


def test_checksum_is_crc16_for_short_packets_and_crc32_for_long_ones():
    short, long = b"\x01" * SHORT_PACKET, b"\x01" * (SHORT_PACKET + 1)
    assert packet_checksum(short) < 1 << 16 and packet_checksum(short) != crc32(short)
    assert packet_checksum(long) == crc32(long)


def test_container_costs_a_few_bytes_a_packet(tmp_path):
    """64 one-byte packets (a learned codec's copied pictures) with a typical header: the container adds under
    5 bytes a packet, where format 1 added 35 (8 of packet head, 27 of index entry)."""
    header = make_header(views=2, frames=32, structure="ld", gop=32, cameras=None)
    path = tmp_path / "copies.mvc"
    with MvcWriter(path, header) as w:
        for v in range(2):
            w.write_packet(v, 0, 1, b"\x00" * 3000, kind=1)
            for t in range(1, 32):
                w.write_packet(v, t, 1, b"\x02", kind=2)
    fixed = len(file_preamble(pack_header(header))) + _TRAILER.size
    per_packet = (path.stat().st_size - fixed - 2 * 3000 - 62) / 64
    assert per_packet < 5, per_packet
    with MvcReader(path) as r:
        assert [r.read_packet(e) for e in r.select(view=1, frames=range(30, 32))] == [b"\x02", b"\x02"]


def test_header_is_stored_deflated(tmp_path):
    path = tmp_path / "h.mvc"
    config = {"model": {f"layer{i}": {"channels": 96, "kernel": 3} for i in range(40)}}
    with MvcWriter(path, make_header(codec_config=config)):
        pass
    assert path.stat().st_size < len(json.dumps(config)) / 3
    with MvcReader(path) as r:
        assert r.header.codec_config == config and r.version == (2, 0) and r.entries == []


@pytest.mark.parametrize("damage, pattern", [
    ("index_not_deflate", "not a valid DEFLATE stream|not one complete"),
    ("index_trailing", "trailing bytes|not one complete"),
    ("header_not_deflate", "not a valid DEFLATE stream|not one complete"),
    ("lengths_lie", "lengths do not add up"),
])
def test_malformed_compressed_parts_are_refused(tmp_path, damage, pattern):
    """Damage behind valid CRCs (a hostile or buggy writer): a one-line BitstreamError on open."""
    path = tmp_path / "m.mvc"
    write_sample(path)
    with MvcReader(path) as r:
        entries, data_start = list(r.entries), r.data_start
    data = path.read_bytes()
    payloads = data[data_start:entries[-1].offset + entries[-1].length]
    head = file_preamble(pack_header(make_header()))
    if damage == "header_not_deflate":
        raw = b"\xff" * 40
        head = head[:12] + struct.pack("<I", len(raw)) + raw + struct.pack("<I", crc32(raw))
        data = head + payloads + file_trailer(entries)
    else:
        index = {"index_not_deflate": b"\xff\x00\x13" * 5,
                 "index_trailing": pack_index(entries) + b"\x00\x00",
                 "lengths_lie": pack_index([e if i else PacketEntry(e.view, e.kind, e.first_frame, e.frame_count,
                                                                      e.offset, e.length + 1, e.crc)
                                            for i, e in enumerate(entries)])}[damage]
        data = head + payloads + sealed_index(index)
    path.write_bytes(data)
    with pytest.raises(BitstreamError, match=pattern):
        MvcReader(path)


def test_a_format1_file_is_still_read_and_decoded(tmp_path):
    """The previous format opens, its packets pass their CRC-32, and it decodes to the same pictures as the same
    packets rewritten in format 2 (the codec sees no difference)."""
    with MvcReader(FORMAT1_FILE) as r:
        assert r.version == (1, 0) and len(r.entries) == 8 and r.header.codec_id == "mlvc"
        packets = [(e, r.read_packet(e)) for e in r.entries]
        header = r.header
    repacked = tmp_path / "repacked.mvc"
    with MvcWriter(repacked, header) as w:
        for e, payload in packets:
            w.write_packet(e.view, e.first_frame, e.frame_count, payload, e.kind)
    assert repacked.stat().st_size < FORMAT1_FILE.stat().st_size - 8 * 30
    old, new = list(decode_file(FORMAT1_FILE)), list(decode_file(repacked))
    assert [(d.view, d.frame) for d in old] == [(d.view, d.frame) for d in new] and len(old) == 8
    for a, b in zip(old, new):
        np.testing.assert_array_equal(a.rgb, b.rgb)
    source = synthetic_clip(views=2, frames=4, height=32, width=48).frames
    assert min(psnr_rgb(source[d.view, d.frame], d.rgb) for d in old) > 25


def test_a_format1_packet_head_that_disagrees_is_a_damaged_packet(tmp_path):
    data = bytearray(FORMAT1_FILE.read_bytes())
    with MvcReader(FORMAT1_FILE) as r:
        entry = r.entries[-1]
    data[entry.offset - 8:entry.offset - 4] = (entry.length + 5).to_bytes(4, "little")
    path = tmp_path / "old.mvc"
    path.write_bytes(bytes(data))
    with MvcReader(path) as r:
        with pytest.raises(BitstreamError, match="disagrees with the index"):
            r.read_packet(entry)


def test_info_names_the_format_version(tmp_path, capsys):
    assert main(["info", str(FORMAT1_FILE)]) == 0
    assert ".mvc version 1.0" in capsys.readouterr().out


@pytest.mark.parametrize("change, pattern", [
    (None, None),                                                   # as written: the configs of mlvc-v3
    (("inter", "M", 64), "inter config is not that of weights"),
    (("intra", "groups", [8]), "intra config is not that of weights"),
    (("inter", None, "x"), "mlvc header"),
])
def test_a_format1_header_model_config_is_checked_against_the_weights(tmp_path, change, pattern):
    """Files of earlier versions spell out the model configs the weights' hash already implies: where they are
    present they must be the weights' own."""
    with MvcReader(FORMAT1_FILE) as r:
        header, packets = r.header, [(e, r.read_packet(e)) for e in r.entries]
    config = json.loads(json.dumps(header.codec_config))
    if change is not None:
        key, field, value = change
        if field is None:
            config[key] = value
        else:
            config[key][field] = value
    path = tmp_path / "old-config.mvc"
    with MvcWriter(path, dataclasses.replace(header, codec_config=config)) as w:
        for e, payload in packets:
            w.write_packet(e.view, e.first_frame, e.frame_count, payload, e.kind)
    if pattern is None:
        assert len(list(decode_file(path))) == 8
    else:
        with pytest.raises(BitstreamError, match=pattern):
            list(decode_file(path))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=200), st.booleans())
def test_any_index_bytes_parse_or_raise_a_bitstream_error(data, packed):
    """Arbitrary bytes as an index (raw, or DEFLATE-packed so they reach the column parser): entries or a
    BitstreamError, never another exception."""
    try:
        entries = unpack_index(deflate(data) if packed else data, 0, 100)
    except BitstreamError:
        return
    assert all(0 <= e.kind <= 0xFF and e.first_frame >= 0 and e.length >= 1 for e in entries)
    assert sum(e.length for e in entries) == 100
