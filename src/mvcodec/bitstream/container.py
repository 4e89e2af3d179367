"""The ``.mvc`` container: atomic writer and random-access reader.

Layout of format 2, the one written (integers little-endian; the index: :mod:`mvcodec.bitstream.index`)::

    MAGIC (8) | major u16 = 2 | minor u16 | header_len u32 | DEFLATE(header) | header_crc u32
    payload*  :  the packets' payloads back to back, in index order
    index     :  DEFLATE(columns of view, kind, first_frame, frame_count, length, checksum)
    trailer   :  index_len u32 | index_crc u32 | END_MAGIC (8)

Format 1 (files written before 2026-12; still read)::

    MAGIC (8) | major u16 = 1 | minor u16 | header_len u32 | header | header_crc u32
    packet*  :  payload_len u32 | payload_crc u32 | payload
    index    :  count u32 | entry* (view u16, kind u8, first_frame u32, frame_count u32, offset u64,
                                    length u32, crc u32)
    trailer  :  index_offset u64 | index_len u32 | index_crc u32 | END_MAGIC (8)

Format 2 exists because format 1 cost a learned codec's file about 3 kB at its lowest rung (half the file): the
model configuration in plain JSON and 35 bytes of container a packet, where a copied picture's payload is one byte.

A packet is one coded unit of one view (``view``) covering frames ``first_frame : first_frame + frame_count``;
``view == GLOBAL_VIEW`` marks a packet shared by all views (e.g. network weights); ``kind`` is the codec's own
packet type.  The index sits at the end so packets can be streamed out as they are coded; the trailer points to
it, so a reader seeks straight to any packet.  The writer writes ``.NAME.partial`` and renames it to ``NAME`` only
when the trailer is on disk: a crash never leaves a file that looks complete.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Iterable

from mvcodec.atomic import AtomicFile, CloseOnSuccess
from mvcodec.bitstream.header import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    HEADER_FIELDS,
    MAX_TEXT,
    MvcHeader,
    pack_header,
    unpack_header,
)
from mvcodec.bitstream.index import (
    GLOBAL_VIEW,
    MAX_PACKETS,
    PacketEntry,
    crc32,
    deflate,
    inflate,
    pack_index,
    packet_checksum,
    unpack_index,
)
from mvcodec.errors import BitstreamError

MAGIC = b"\x89MVC\r\n\x1a\n"
END_MAGIC = b"MVCINDEX"
READABLE_MAJORS = (1, 2)
MAX_HEADER_BYTES = len(HEADER_FIELDS) * (MAX_TEXT + 4)  # of the header fields, inflated

_PREAMBLE = struct.Struct("<8sHHI")
_TRAILER = struct.Struct("<II8s")
_V1_PACKET_HEAD = struct.Struct("<II")
_V1_ENTRY = struct.Struct("<HBIIQII")
_V1_TRAILER = struct.Struct("<QII8s")

__all__ = ["DamagedPacket", "END_MAGIC", "GLOBAL_VIEW", "MAGIC", "MvcReader", "MvcWriter", "PacketEntry",
           "file_preamble", "file_trailer", "sealed_index"]


class DamagedPacket(BitstreamError):
    """A packet whose bytes fail the container's checks (cut short, length/CRC disagreeing with the index, CRC
    mismatch).  ``entry`` says which (view, frames) it held, so a decoder can skip what depends on it."""

    def __init__(self, message: str, entry: PacketEntry) -> None:
        super().__init__(message)
        self.entry = entry


def file_preamble(header_fields: bytes, major: int = FORMAT_MAJOR, minor: int = FORMAT_MINOR) -> bytes:
    """What precedes the first payload of a format-2 file: preamble, DEFLATE of the serialised header fields
    (:func:`~mvcodec.bitstream.header.pack_header`) and its CRC-32."""
    head = deflate(header_fields)
    return _PREAMBLE.pack(MAGIC, major, minor, len(head)) + head + struct.pack("<I", crc32(head))


def file_trailer(entries: list[PacketEntry]) -> bytes:
    """What follows the last payload of a format-2 file: the index of ``entries`` and the trailer."""
    return sealed_index(pack_index(entries))


def sealed_index(index: bytes) -> bytes:
    """Format-2 ``index`` bytes (:func:`~mvcodec.bitstream.index.pack_index`, or any bytes a test puts there)
    followed by the trailer that points to them and checks them."""
    return index + _TRAILER.pack(len(index), crc32(index), END_MAGIC)


class MvcWriter(CloseOnSuccess):
    """Write a ``.mvc`` file (format 2) atomically.  Use as a context manager; an exception discards the partial
    file."""

    def __init__(self, path: str | os.PathLike, header: MvcHeader) -> None:
        self.path = Path(path)
        self.header = header
        self._atomic = AtomicFile(self.path)
        self.tmp_path = self._atomic.tmp
        self.entries: list[PacketEntry] = []
        self._file: BinaryIO | None = open(self.tmp_path, "wb")
        self._file.write(file_preamble(pack_header(header)))

    def write_packet(self, view: int, first_frame: int, frame_count: int, payload: bytes, kind: int = 0) -> None:
        """Append one packet; ``view`` is a view index or :data:`GLOBAL_VIEW`."""
        assert self._file is not None, "writer is closed"
        if view != GLOBAL_VIEW and not 0 <= view < self.header.views:
            raise ValueError(f"packet for view {view} in a {self.header.views}-view file")
        if frame_count < 0 or first_frame < 0 or first_frame + frame_count > self.header.frames:
            raise ValueError(f"packet frames {first_frame}+{frame_count} outside 0:{self.header.frames}")
        if not payload:
            raise ValueError("an empty packet (format 2 has none: a reader bounds the index by the data's size)")
        if not 0 <= kind <= 0xFF:
            raise ValueError(f"packet kind {kind} outside 0..255")
        if len(self.entries) >= MAX_PACKETS:
            raise ValueError(f"a file holds at most {MAX_PACKETS} packets")
        offset = self._file.tell()
        self._file.write(payload)
        self.entries.append(PacketEntry(view, kind, first_frame, frame_count, offset, len(payload),
                                        packet_checksum(payload)))

    def close(self) -> int:
        """Write the index and trailer, sync, and rename into place.  Returns the file size in bytes."""
        assert self._file is not None, "writer is closed"
        f, self._file = self._file, None
        try:
            f.write(file_trailer(self.entries))
            size = f.tell()
        finally:
            f.close()
        self._atomic.commit()
        return size

    def abort(self) -> None:
        """Discard the partial file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._atomic.abort()


def _view_name(view: int) -> str:
    return "(all views)" if view == GLOBAL_VIEW else str(view)


class MvcReader:
    """Random access to the packets of a ``.mvc`` file (format 1 or 2).  Opening validates magic, version, header
    and index.

    ``packets_read`` counts payloads read, so tests can check that a decode touched only what it needed.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")
        except FileNotFoundError:
            raise BitstreamError(f"{self.path}: no such file") from None
        except OSError as exc:
            raise BitstreamError(f"{self.path}: cannot be read ({exc.strerror})") from None
        try:
            self._open()
        except BitstreamError as exc:
            self._file.close()
            raise BitstreamError(f"{self.path}: {exc}") from None
        self.packets_read = 0

    def _open(self) -> None:
        f = self._file
        self.file_size = f.seek(0, os.SEEK_END)
        f.seek(0)
        pre = f.read(_PREAMBLE.size)
        if len(pre) < 8 or pre[:8] != MAGIC:
            raise BitstreamError("not an .mvc file (bad magic bytes)")
        if len(pre) < _PREAMBLE.size:
            raise BitstreamError("file is truncated inside its preamble")
        _, major, minor, head_len = _PREAMBLE.unpack(pre)
        if major not in READABLE_MAJORS:
            raise BitstreamError(f"format version {major}.{minor} is not supported (this reader: "
                                 f"{', '.join(f'{m}.x' for m in READABLE_MAJORS)})")
        self.version = (major, minor)
        trailer_size = _V1_TRAILER.size if major == 1 else _TRAILER.size
        if head_len > MAX_HEADER_BYTES or _PREAMBLE.size + head_len + 4 + trailer_size > self.file_size:
            raise BitstreamError("file is truncated (header runs past the end)")
        head = f.read(head_len)
        (head_crc,) = struct.unpack("<I", f.read(4))
        if crc32(head) != head_crc:
            raise BitstreamError("header CRC mismatch (the header is corrupted)")
        self.header: MvcHeader = unpack_header(head if major == 1 else inflate(head, MAX_HEADER_BYTES, "header"))
        self.data_start = f.tell()
        f.seek(self.file_size - trailer_size)
        if major == 1:
            index_offset, index_len, index_crc, end = _V1_TRAILER.unpack(f.read(trailer_size))
        else:
            index_len, index_crc, end = _TRAILER.unpack(f.read(trailer_size))
            index_offset = self.file_size - trailer_size - index_len
        if end != END_MAGIC:
            raise BitstreamError("file is truncated or its trailer is corrupted (no end marker)")
        if index_offset < self.data_start or index_offset + index_len != self.file_size - trailer_size:
            raise BitstreamError("trailer points outside the file (corrupted)")
        f.seek(index_offset)
        index = f.read(index_len)
        if crc32(index) != index_crc:
            raise BitstreamError("index CRC mismatch (the index is corrupted)")
        entries = _unpack_v1_index(index) if major == 1 else \
            unpack_index(index, self.data_start, index_offset - self.data_start)
        head_size = _V1_PACKET_HEAD.size if major == 1 else 0
        for i, e in enumerate(entries):
            if e.offset - head_size < self.data_start or e.offset + e.length > index_offset:
                raise BitstreamError(f"packet {i} lies outside the data section (corrupted index)")
            if e.view != GLOBAL_VIEW and e.view >= self.header.views:
                raise BitstreamError(f"packet {i} is for view {e.view} of a {self.header.views}-view file")
            if e.first_frame + e.frame_count > self.header.frames:
                raise BitstreamError(f"packet {i} covers frames past the clip's {self.header.frames}")
        self.entries: list[PacketEntry] = entries

    def read_packet(self, entry: PacketEntry) -> bytes:
        """The payload of ``entry``, after checking its length and checksum (a failure is
        :class:`DamagedPacket`)."""
        unit = f"packet of view {_view_name(entry.view)}, frames {entry.first_frame}:" \
               f"{entry.first_frame + entry.frame_count}"
        where = f"{self.path}: {unit}"
        checksum = packet_checksum
        if self.version[0] == 1:
            checksum = crc32
            self._file.seek(entry.offset - _V1_PACKET_HEAD.size)
            head = self._file.read(_V1_PACKET_HEAD.size)
            if len(head) < _V1_PACKET_HEAD.size:
                raise DamagedPacket(f"{where} is cut short", entry)
            if _V1_PACKET_HEAD.unpack(head) != (entry.length, entry.crc):
                raise DamagedPacket(f"{where} disagrees with the index (corrupted length or CRC field)", entry)
        self._file.seek(entry.offset)
        payload = self._file.read(entry.length)
        if len(payload) != entry.length:
            raise DamagedPacket(f"{where} is cut short", entry)
        if checksum(payload) != entry.crc:
            raise DamagedPacket(f"{self.path}: CRC mismatch in the {unit} (data corrupted)", entry)
        self.packets_read += 1
        return payload

    def select(self, view: int | None = None, frames: range | None = None, kind: int | None = None,
               ) -> list[PacketEntry]:
        """Entries of ``view`` (GLOBAL_VIEW packets are never matched by a view index) overlapping ``frames``."""
        out: Iterable[PacketEntry] = self.entries
        if view is not None:
            out = (e for e in out if e.view == view)
        if kind is not None:
            out = (e for e in out if e.kind == kind)
        if frames is not None:
            out = (e for e in out if e.first_frame < frames.stop and frames.start < e.first_frame + e.frame_count
                   or (e.frame_count == 0 and e.first_frame in frames))
        return list(out)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MvcReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unpack_v1_index(index: bytes) -> list[PacketEntry]:
    """Entries of a format-1 index; ``offset`` is made the payload's, past the packet's own length and CRC."""
    (count,) = struct.unpack_from("<I", index) if len(index) >= 4 else (-1,)
    if not 0 <= count <= MAX_PACKETS or 4 + count * _V1_ENTRY.size != len(index):
        raise BitstreamError(f"index claims {count} packets in {len(index)} bytes (corrupted)")
    out = []
    for i in range(count):
        view, kind, first, frames, offset, length, crc = _V1_ENTRY.unpack_from(index, 4 + i * _V1_ENTRY.size)
        out.append(PacketEntry(view, kind, first, frames, offset + _V1_PACKET_HEAD.size, length, crc))
    return out
