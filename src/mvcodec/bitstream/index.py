"""The packet index of a ``.mvc`` file and the checksums of its packets.

Format 2 (written since 2026-12) stores the index compactly, because a learned codec's packet can be one byte (a
copied picture) and format 1 spent 35 bytes of container on each::

    index (format 2) = raw DEFLATE of
        count varint
        view column         count varints  (view + 1; 0 is GLOBAL_VIEW)
        kind column         count varints
        first_frame column  count zigzag varints, each the difference from the previous entry's first frame
        frame_count column  count varints
        length column       count varints
        checksum column     per entry 2 bytes (CRC-16) if its length <= SHORT_PACKET, else 4 bytes (CRC-32)

Payloads lie back to back after the header, in index order, so each offset is the sum of the lengths before it
and nothing precedes a payload.  Columns make the repetitive fields (views, kinds, counts of 1, frame steps of 1)
compress to almost nothing; the checksums are what is left.

Checksums: CRC-16/CCITT (``binascii.crc_hqx``, initial value 0xFFFF) for packets of up to :data:`SHORT_PACKET`
bytes, where it detects every error of up to 3 bits and every burst of up to 16 bits (Hamming distance 4 up to
32,751 bits); CRC-32 for longer ones.  FLAC protects its frames with a CRC-16 in the same way.  The header and the
index themselves keep CRC-32.

Varints are LEB128 (7 bits a byte, low group first), written here: the standard library has none and a
protobuf dependency for 20 lines would be out of proportion.
"""

from __future__ import annotations

import binascii
import zlib
from dataclasses import dataclass
from typing import Sequence

from mvcodec.errors import BitstreamError

GLOBAL_VIEW = 0xFFFF
MAX_PACKETS = 4_000_000
SHORT_PACKET = 4096  # bytes: packets up to this length carry a CRC-16, longer ones a CRC-32
_MAX_VARINT_BYTES = 10
_MAX_ENTRY_BYTES = 5 * _MAX_VARINT_BYTES + 4  # of one entry, inflated


@dataclass(frozen=True)
class PacketEntry:
    """Where one packet lies in the file and what it covers."""

    view: int
    kind: int
    first_frame: int
    frame_count: int
    offset: int  # of the payload's first byte
    length: int  # of the payload
    crc: int     # :func:`packet_checksum` (format 2) or CRC-32 (format 1) of the payload

    @property
    def frames(self) -> range:
        return range(self.first_frame, self.first_frame + self.frame_count)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def packet_checksum(payload: bytes) -> int:
    """The format-2 checksum of ``payload``: CRC-16/CCITT up to :data:`SHORT_PACKET` bytes, else CRC-32."""
    return binascii.crc_hqx(payload, 0xFFFF) if len(payload) <= SHORT_PACKET else crc32(payload)


def _checksum_size(length: int) -> int:
    return 2 if length <= SHORT_PACKET else 4


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE (no zlib wrapper: the container has its own CRC-32), at the best compression."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return packer.compress(data) + packer.flush()


def inflate(data: bytes, limit: int, what: str) -> bytes:
    """Undo :func:`deflate`, refusing more than ``limit`` bytes of output, a damaged stream or trailing bytes."""
    unpacker = zlib.decompressobj(-15)
    try:
        out = unpacker.decompress(data, limit)
    except zlib.error:
        raise BitstreamError(f"the {what} is not a valid DEFLATE stream (corrupted)") from None
    if unpacker.unconsumed_tail:
        raise BitstreamError(f"the {what} inflates to more than {limit} bytes (corrupted)")
    if not unpacker.eof or unpacker.unused_data:
        raise BitstreamError(f"the {what} is not one complete DEFLATE stream (corrupted)")
    return out


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


class _Cursor:
    """Reads varints and bytes from ``data``; running out or an overlong varint is a BitstreamError."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def varint(self) -> int:
        value = shift = 0
        for _ in range(_MAX_VARINT_BYTES):
            if self.pos >= len(self.data):
                raise BitstreamError("the index is cut short (corrupted)")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise BitstreamError("the index holds an overlong number (corrupted)")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError("the index is cut short (corrupted)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def pack_index(entries: Sequence[PacketEntry]) -> bytes:
    """The format-2 index of ``entries`` (module docstring); offsets are implied by the lengths."""
    out = bytearray()
    _put_varint(out, len(entries))
    for e in entries:
        _put_varint(out, 0 if e.view == GLOBAL_VIEW else e.view + 1)
    for e in entries:
        _put_varint(out, e.kind)
    previous = 0
    for e in entries:
        step = e.first_frame - previous
        _put_varint(out, 2 * step if step >= 0 else -2 * step - 1)
        previous = e.first_frame
    for column in ("frame_count", "length"):
        for e in entries:
            _put_varint(out, getattr(e, column))
    for e in entries:
        out += e.crc.to_bytes(_checksum_size(e.length), "little")
    return deflate(bytes(out))


def unpack_index(data: bytes, data_start: int, data_bytes: int) -> list[PacketEntry]:
    """Parse :func:`pack_index`'s bytes into entries whose payloads start at ``data_start`` and fill the
    ``data_bytes`` bytes there.  Every packet holds at least one byte (:class:`~mvcodec.bitstream.container.
    MvcWriter` writes no empty one), so an index claims at most ``data_bytes`` packets: what the reader allocates
    stays in proportion to the file, whatever a DEFLATE stream would inflate to.  Every malformation is a
    :class:`BitstreamError` (the caller checks the entries against the header)."""
    most = min(MAX_PACKETS, data_bytes)
    cursor = _Cursor(inflate(data, 2 * _MAX_VARINT_BYTES + most * _MAX_ENTRY_BYTES, "index"))
    count = cursor.varint()
    if count > most:
        raise BitstreamError(f"index claims {count} packets in a data section of {data_bytes} bytes "
                             f"(at most one a byte, and {MAX_PACKETS} in all)")
    views = [cursor.varint() for _ in range(count)]
    kinds = [cursor.varint() for _ in range(count)]
    firsts, previous = [], 0
    for _ in range(count):
        z = cursor.varint()
        previous += z // 2 if z % 2 == 0 else -(z + 1) // 2
        firsts.append(previous)
    counts = [cursor.varint() for _ in range(count)]
    lengths = [cursor.varint() for _ in range(count)]
    entries, offset = [], data_start
    for i in range(count):
        view = GLOBAL_VIEW if views[i] == 0 else views[i] - 1
        if views[i] > GLOBAL_VIEW or kinds[i] > 0xFF or firsts[i] < 0:
            raise BitstreamError(f"index entry {i} has view {views[i] - 1}, kind {kinds[i]}, first frame {firsts[i]} "
                                 "(corrupted)")
        if lengths[i] == 0:
            raise BitstreamError(f"index entry {i} is an empty packet (corrupted)")
        crc = int.from_bytes(cursor.take(_checksum_size(lengths[i])), "little")
        entries.append(PacketEntry(view, kinds[i], firsts[i], counts[i], offset, lengths[i], crc))
        offset += lengths[i]
    if cursor.pos != len(cursor.data):
        raise BitstreamError(f"the index has {len(cursor.data) - cursor.pos} unexpected trailing bytes")
    if offset != data_start + data_bytes:
        raise BitstreamError("the index's packet lengths do not add up to the data section (corrupted)")
    return entries
