"""The ``.mvc`` container: atomic writer and random-access reader.

Layout (all integers little-endian)::

    MAGIC (8) | major u16 | minor u16 | header_len u32 | header | header_crc u32
    packet*  :  payload_len u32 | payload_crc u32 | payload
    index    :  count u32 | entry* (view u16, kind u8, first_frame u32, frame_count u32, offset u64,
                                    length u32, crc u32)
    trailer  :  index_offset u64 | index_len u32 | index_crc u32 | END_MAGIC (8)

A packet is one coded unit of one view (``view``) covering frames ``first_frame : first_frame + frame_count``;
``view == GLOBAL_VIEW`` marks a packet shared by all views (e.g. network weights); ``kind`` is the codec's own
packet type.  The index sits at the end so packets can be streamed out as they are coded; the trailer points to
it, so a reader seeks straight to any packet.  The writer writes ``.NAME.partial`` and renames it to ``NAME`` only
when the trailer is on disk: a crash never leaves a file that looks complete.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

from mvcodec.atomic import AtomicFile, CloseOnSuccess
from mvcodec.bitstream.header import FORMAT_MAJOR, FORMAT_MINOR, MAX_TEXT, MvcHeader, pack_header, unpack_header
from mvcodec.errors import BitstreamError

MAGIC = b"\x89MVC\r\n\x1a\n"
END_MAGIC = b"MVCINDEX"
GLOBAL_VIEW = 0xFFFF
MAX_PACKETS = 4_000_000

_PREAMBLE = struct.Struct("<8sHHI")
_PACKET_HEAD = struct.Struct("<II")
_ENTRY = struct.Struct("<HBIIQII")
_TRAILER = struct.Struct("<QII8s")


@dataclass(frozen=True)
class PacketEntry:
    """Where one packet lies in the file and what it covers."""

    view: int
    kind: int
    first_frame: int
    frame_count: int
    offset: int  # of the packet's length field
    length: int  # of the payload
    crc: int

    @property
    def frames(self) -> range:
        return range(self.first_frame, self.first_frame + self.frame_count)


class DamagedPacket(BitstreamError):
    """A packet whose bytes fail the container's checks (cut short, length/CRC disagreeing with the index, CRC
    mismatch).  ``entry`` says which (view, frames) it held, so a decoder can skip what depends on it."""

    def __init__(self, message: str, entry: PacketEntry) -> None:
        super().__init__(message)
        self.entry = entry


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


class MvcWriter(CloseOnSuccess):
    """Write a ``.mvc`` file atomically.  Use as a context manager; an exception discards the partial file."""

    def __init__(self, path: str | os.PathLike, header: MvcHeader) -> None:
        self.path = Path(path)
        self.header = header
        self._atomic = AtomicFile(self.path)
        self.tmp_path = self._atomic.tmp
        self.entries: list[PacketEntry] = []
        self._file: BinaryIO | None = open(self.tmp_path, "wb")
        head = pack_header(header)
        self._file.write(_PREAMBLE.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR, len(head)) + head
                         + struct.pack("<I", crc32(head)))

    def write_packet(self, view: int, first_frame: int, frame_count: int, payload: bytes, kind: int = 0) -> None:
        """Append one packet; ``view`` is a view index or :data:`GLOBAL_VIEW`."""
        assert self._file is not None, "writer is closed"
        if view != GLOBAL_VIEW and not 0 <= view < self.header.views:
            raise ValueError(f"packet for view {view} in a {self.header.views}-view file")
        if frame_count < 0 or first_frame < 0 or first_frame + frame_count > self.header.frames:
            raise ValueError(f"packet frames {first_frame}+{frame_count} outside 0:{self.header.frames}")
        crc = crc32(payload)
        offset = self._file.tell()
        self._file.write(_PACKET_HEAD.pack(len(payload), crc))
        self._file.write(payload)
        self.entries.append(PacketEntry(view, kind, first_frame, frame_count, offset, len(payload), crc))

    def close(self) -> int:
        """Write the index and trailer, sync, and rename into place.  Returns the file size in bytes."""
        assert self._file is not None, "writer is closed"
        f, self._file = self._file, None
        try:
            index = struct.pack("<I", len(self.entries)) + b"".join(
                _ENTRY.pack(e.view, e.kind, e.first_frame, e.frame_count, e.offset, e.length, e.crc)
                for e in self.entries)
            index_offset = f.tell()
            f.write(index)
            f.write(_TRAILER.pack(index_offset, len(index), crc32(index), END_MAGIC))
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
    """Random access to the packets of a ``.mvc`` file.  Opening validates magic, version, header and index.

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
        if major != FORMAT_MAJOR:
            raise BitstreamError(f"format version {major}.{minor} is not supported (this reader: {FORMAT_MAJOR}.x)")
        self.version = (major, minor)
        if head_len > 64 * MAX_TEXT or _PREAMBLE.size + head_len + 4 + _TRAILER.size > self.file_size:
            raise BitstreamError("file is truncated (header runs past the end)")
        head = f.read(head_len)
        (head_crc,) = struct.unpack("<I", f.read(4))
        if crc32(head) != head_crc:
            raise BitstreamError("header CRC mismatch (the header is corrupted)")
        self.header: MvcHeader = unpack_header(head)
        self.data_start = f.tell()
        f.seek(self.file_size - _TRAILER.size)
        index_offset, index_len, index_crc, end = _TRAILER.unpack(f.read(_TRAILER.size))
        if end != END_MAGIC:
            raise BitstreamError("file is truncated or its trailer is corrupted (no end marker)")
        if index_offset < self.data_start or index_offset + index_len != self.file_size - _TRAILER.size:
            raise BitstreamError("trailer points outside the file (corrupted)")
        f.seek(index_offset)
        index = f.read(index_len)
        if crc32(index) != index_crc:
            raise BitstreamError("index CRC mismatch (the index is corrupted)")
        (count,) = struct.unpack_from("<I", index)
        if count > MAX_PACKETS or 4 + count * _ENTRY.size != index_len:
            raise BitstreamError(f"index claims {count} packets in {index_len} bytes (corrupted)")
        entries = []
        for i in range(count):
            e = PacketEntry(*_ENTRY.unpack_from(index, 4 + i * _ENTRY.size))
            end_of_packet = e.offset + _PACKET_HEAD.size + e.length
            if e.offset < self.data_start or end_of_packet > index_offset:
                raise BitstreamError(f"packet {i} lies outside the data section (corrupted index)")
            if e.view != GLOBAL_VIEW and e.view >= self.header.views:
                raise BitstreamError(f"packet {i} is for view {e.view} of a {self.header.views}-view file")
            if e.first_frame + e.frame_count > self.header.frames:
                raise BitstreamError(f"packet {i} covers frames past the clip's {self.header.frames}")
            entries.append(e)
        self.entries: list[PacketEntry] = entries

    def read_packet(self, entry: PacketEntry) -> bytes:
        """The payload of ``entry``, after checking its length and CRC32 (a failure is :class:`DamagedPacket`)."""
        unit = f"packet of view {_view_name(entry.view)}, frames {entry.first_frame}:" \
               f"{entry.first_frame + entry.frame_count}"
        where = f"{self.path}: {unit}"
        self._file.seek(entry.offset)
        head = self._file.read(_PACKET_HEAD.size)
        if len(head) < _PACKET_HEAD.size:
            raise DamagedPacket(f"{where} is cut short", entry)
        length, crc = _PACKET_HEAD.unpack(head)
        if length != entry.length or crc != entry.crc:
            raise DamagedPacket(f"{where} disagrees with the index (corrupted length or CRC field)", entry)
        payload = self._file.read(length)
        if len(payload) != length:
            raise DamagedPacket(f"{where} is cut short", entry)
        if crc32(payload) != crc:
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
