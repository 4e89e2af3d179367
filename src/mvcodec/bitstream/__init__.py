"""The ``.mvc`` container: header fields declared as data, packets with checksums, a compact index, atomic writes."""

from mvcodec.bitstream.container import GLOBAL_VIEW, DamagedPacket, MvcReader, MvcWriter, PacketEntry
from mvcodec.bitstream.header import HEADER_FIELDS, MvcHeader

__all__ = ["DamagedPacket", "GLOBAL_VIEW", "HEADER_FIELDS", "MvcHeader", "MvcReader", "MvcWriter", "PacketEntry"]
