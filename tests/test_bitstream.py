"""The .mvc container: round trip, random access, atomic writes, and every corruption case."""

from __future__ import annotations

import struct

import pytest

from mvcodec.bitstream import GLOBAL_VIEW, HEADER_FIELDS, MvcHeader, MvcReader, MvcWriter
from mvcodec.bitstream.container import MAGIC
from mvcodec.bitstream.header import MAX_FRAMES, pack_header, unpack_header
from mvcodec.errors import BitstreamError


def make_header(**kw) -> MvcHeader:
    base = dict(codec_id="test", views=2, frames=8, width=64, height=48, fps_num=30000, fps_den=1001,
                structure="ra", gop=4, codec_config={"qp": 27, "nested": [1, 2]}, weights_sha256="ab" * 32,
                view_names=["left", "right"], cameras=[{"K": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}] * 2)
    base.update(kw)
    return MvcHeader(**base)


def write_sample(path) -> dict:
    payloads = {(v, g): bytes([v * 16 + g]) * (100 + 37 * g + v) for v in range(2) for g in range(2)}
    with MvcWriter(path, make_header()) as w:
        w.write_packet(GLOBAL_VIEW, 0, 0, b"shared-weights", kind=1)
        for (v, g), data in payloads.items():
            w.write_packet(v, 4 * g, 4, data)
    return payloads


def test_header_fields_round_trip():
    h = make_header()
    assert unpack_header(pack_header(h)) == h
    assert [f.name for f in HEADER_FIELDS][0] == "codec_id"
    assert MvcHeader.fps_fraction(29.97) == (30000, 1001)


def test_round_trip_and_random_access(tmp_path):
    path = tmp_path / "a.mvc"
    payloads = write_sample(path)
    assert not (tmp_path / ".a.mvc.partial").exists()
    with MvcReader(path) as r:
        assert r.header == make_header()
        assert len(r.entries) == 5
        (entry,) = r.select(view=1, frames=range(5, 6))
        assert r.read_packet(entry) == payloads[(1, 1)]
        assert r.packets_read == 1  # nothing else was read
        (glob,) = r.select(view=GLOBAL_VIEW)
        assert r.read_packet(glob) == b"shared-weights" and glob.kind == 1
        assert [e.first_frame for e in r.select(view=0, frames=range(3, 5))] == [0, 4]


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "b.mvc"
    with pytest.raises(RuntimeError):
        with MvcWriter(path, make_header()) as w:
            w.write_packet(0, 0, 4, b"x" * 1000)
            raise RuntimeError("encoder crashed")
    assert list(tmp_path.iterdir()) == []


def test_unfinished_write_is_not_a_valid_file(tmp_path):
    path = tmp_path / "c.mvc"
    w = MvcWriter(path, make_header())
    w.write_packet(0, 0, 4, b"x" * 1000)
    w._file.flush()  # a crash now: the partial file has no index and another name
    assert not path.exists()
    with pytest.raises(BitstreamError, match="truncated|trailer"):
        MvcReader(w.tmp_path)
    w.abort()


def corrupt(path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + len(new)] = new
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case, pattern", [
    ("bad_magic", "bad magic"),
    ("wrong_version", "version 9.0 is not supported"),
    ("header_bit_flip", "header CRC mismatch"),
    ("truncated_end", "truncated|trailer"),
    ("truncated_start", "truncated|magic"),
    ("index_bit_flip", "index CRC mismatch"),
    ("empty_file", "bad magic"),
])
def test_corrupted_files_are_refused_on_open(tmp_path, case, pattern):
    path = tmp_path / "d.mvc"
    write_sample(path)
    data = path.read_bytes()
    if case == "bad_magic":
        corrupt(path, 0, b"XXXX")
    elif case == "wrong_version":
        corrupt(path, 8, struct.pack("<H", 9))
    elif case == "header_bit_flip":
        corrupt(path, 30, bytes([data[30] ^ 0x01]))
    elif case == "truncated_end":
        path.write_bytes(data[:-7])
    elif case == "truncated_start":
        path.write_bytes(data[:10])
    elif case == "index_bit_flip":
        corrupt(path, len(data) - 40, bytes([data[len(data) - 40] ^ 0x80]))
    elif case == "empty_file":
        path.write_bytes(b"")
    with pytest.raises(BitstreamError, match=pattern):
        MvcReader(path)


def test_packet_bit_flip_is_reported_with_view_and_frames(tmp_path):
    path = tmp_path / "e.mvc"
    write_sample(path)
    with MvcReader(path) as r:
        entry = r.select(view=1, frames=range(4, 8))[0]
    data = path.read_bytes()
    pos = entry.offset + 10
    corrupt(path, pos, bytes([data[pos] ^ 0x10]))
    with MvcReader(path) as r:  # the index is intact: opening works, the packet is refused
        with pytest.raises(BitstreamError, match="CRC mismatch in the packet of view 1, frames 4:8"):
            r.read_packet(entry)
        assert r.read_packet(r.select(view=0, frames=range(0, 1))[0])  # others still decode


def test_packet_cut_short_is_refused(tmp_path):
    path = tmp_path / "f.mvc"
    write_sample(path)
    data = path.read_bytes()
    with MvcReader(path) as r:
        entry = r.entries[-1]
    index_start = entry.offset + entry.length  # the last payload is followed by the index
    path.write_bytes(data[:entry.offset + 3] + data[index_start:])  # the last payload loses its tail
    with pytest.raises(BitstreamError, match="lengths do not add up"):
        MvcReader(path)


@pytest.mark.parametrize("field, value", [("frames", 10**9), ("width", 100_000), ("views", 0),
                                          ("height", 0), ("fps_den", 0)])
def test_absurd_header_values_are_refused_before_allocation(tmp_path, field, value):
    with pytest.raises(BitstreamError, match="header claims"):
        make_header(**{field: value})
    # the same value written into a file by a hostile writer: refused by the reader
    h = make_header()
    raw = bytearray(pack_header(h))
    good = pack_header(h)
    object.__setattr__(h, field, value)
    bad = pack_header(h)
    assert len(bad) == len(good)
    with pytest.raises(BitstreamError, match="header claims"):
        unpack_header(bad)
    assert raw == good
    assert MAX_FRAMES < 10**9


def test_missing_file(tmp_path):
    with pytest.raises(BitstreamError, match="no such file"):
        MvcReader(tmp_path / "nope.mvc")


def test_no_pickle_in_the_format():
    import inspect

    import mvcodec.bitstream.container as container
    import mvcodec.bitstream.header as header
    for module in (container, header):
        assert "pickle" not in inspect.getsource(module)
    assert MAGIC.startswith(b"\x89MVC")
