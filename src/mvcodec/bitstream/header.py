"""The ``.mvc`` header, declared as data: an ordered list of named, typed fields.

Adding a field means adding a line to :data:`HEADER_FIELDS` and bumping :data:`FORMAT_MINOR`; a reader rejects
a file whose major version it does not know.  Format 2 stores these bytes DEFLATE-packed
(:mod:`mvcodec.bitstream.container`).  Values are serialised as little-endian integers or as
length-prefixed UTF-8 (``str``) and JSON (``json``) text; nothing in a header can execute code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from mvcodec.errors import BitstreamError
from mvcodec.io.clip import fps_fraction

FORMAT_MAJOR = 2  # 2: DEFLATE-packed header and index, no per-packet head (container.py); 1 is still read
FORMAT_MINOR = 0

# Limits a header must respect; checked before anything is allocated from it.
MAX_VIEWS = 256
MAX_FRAMES = 1_000_000
MAX_SIDE = 16_384
MAX_TEXT = 1 << 20  # bytes of one str/json field

FieldType = Literal["u16", "u32", "str", "json"]

_INT_FORMATS = {"u16": "<H", "u32": "<I"}


@dataclass(frozen=True)
class HeaderField:
    """One header field: its name (an attribute of :class:`MvcHeader`) and its wire type."""

    name: str
    type: FieldType


HEADER_FIELDS: tuple[HeaderField, ...] = (
    HeaderField("codec_id", "str"),        # frozen registry id, e.g. "x265"
    HeaderField("codec_config", "json"),   # everything the decoder needs to rebuild itself
    HeaderField("weights_sha256", "str"),  # hash of the weights the decoder needs ("" for none)
    HeaderField("views", "u16"),
    HeaderField("frames", "u32"),
    HeaderField("width", "u32"),
    HeaderField("height", "u32"),
    HeaderField("fps_num", "u32"),
    HeaderField("fps_den", "u32"),
    HeaderField("structure", "str"),       # coding structure: "ld" (low delay), "ra" (random access), "intra"
    HeaderField("gop", "u32"),             # intra period in frames
    HeaderField("view_names", "json"),
    HeaderField("cameras", "json"),        # list of {"K", "R", "t"} per view, or null
)


@dataclass(frozen=True)
class MvcHeader:
    """The decoded header of a ``.mvc`` file."""

    codec_id: str
    views: int
    frames: int
    width: int
    height: int
    fps_num: int
    fps_den: int
    structure: str = "ld"
    gop: int = 32
    codec_config: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    view_names: list[str] = field(default_factory=list)
    cameras: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.views <= MAX_VIEWS:
            raise BitstreamError(f"header claims {self.views} views (1..{MAX_VIEWS} allowed)")
        if not 1 <= self.frames <= MAX_FRAMES:
            raise BitstreamError(f"header claims {self.frames} frames (1..{MAX_FRAMES} allowed)")
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE):
            raise BitstreamError(f"header claims a {self.width}x{self.height} picture (sides 1..{MAX_SIDE})")
        if self.fps_num < 1 or self.fps_den < 1:
            raise BitstreamError(f"header claims a frame rate of {self.fps_num}/{self.fps_den}")
        if not 1 <= self.gop <= MAX_FRAMES:
            raise BitstreamError(f"header claims an intra period of {self.gop}")
        if len(self.view_names) != self.views:
            raise BitstreamError(f"header has {len(self.view_names)} view names for {self.views} views")
        if self.cameras is not None and len(self.cameras) != self.views:
            raise BitstreamError(f"header has {len(self.cameras)} cameras for {self.views} views")

    @property
    def fps(self) -> float:
        return self.fps_num / self.fps_den

    @staticmethod
    def fps_fraction(fps: float) -> tuple[int, int]:
        """A frame rate as (numerator, denominator), e.g. 29.97 -> (30000, 1001); see :func:`fps_fraction`."""
        f = fps_fraction(fps)
        return f.numerator, f.denominator


def pack_header(header: MvcHeader) -> bytes:
    """Serialise ``header`` field by field, in the order of :data:`HEADER_FIELDS`."""
    out = bytearray()
    for f in HEADER_FIELDS:
        value = getattr(header, f.name)
        if f.type in _INT_FORMATS:
            out += struct.pack(_INT_FORMATS[f.type], value)
        else:
            text = value if f.type == "str" else json.dumps(value, sort_keys=True, separators=(",", ":"))
            data = text.encode("utf-8")
            if len(data) > MAX_TEXT:
                raise BitstreamError(f"header field {f.name} is {len(data)} bytes (at most {MAX_TEXT})")
            out += struct.pack("<I", len(data)) + data
    return bytes(out)


def unpack_header(data: bytes) -> MvcHeader:
    """Parse the bytes written by :func:`pack_header`; every malformation is a :class:`BitstreamError`."""
    values: dict[str, Any] = {}
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise BitstreamError(f"header is cut short in field {what}")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    for f in HEADER_FIELDS:
        if f.type in _INT_FORMATS:
            fmt = _INT_FORMATS[f.type]
            values[f.name] = struct.unpack(fmt, take(struct.calcsize(fmt), f.name))[0]
            continue
        (length,) = struct.unpack("<I", take(4, f.name))
        if length > MAX_TEXT:
            raise BitstreamError(f"header field {f.name} claims {length} bytes")
        try:
            text = take(length, f.name).decode("utf-8")
            values[f.name] = text if f.type == "str" else json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BitstreamError(f"header field {f.name} is not valid text: {exc.__class__.__name__}") from None
    if pos != len(data):
        raise BitstreamError(f"header has {len(data) - pos} unexpected trailing bytes")
    if not isinstance(values["codec_config"], dict):
        raise BitstreamError("header field codec_config is not an object")
    if not isinstance(values["view_names"], list) or not all(isinstance(n, str) for n in values["view_names"]):
        raise BitstreamError("header field view_names is not a list of names")
    cams = values["cameras"]
    if cams is not None and (not isinstance(cams, list) or not all(isinstance(c, dict) for c in cams)):
        raise BitstreamError("header field cameras is not a list of objects")
    names = {f.name for f in fields(MvcHeader)}
    return MvcHeader(**{k: v for k, v in values.items() if k in names})
