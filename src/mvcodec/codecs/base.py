"""The codec interface and the registry of frozen codec ids.

A codec turns a :class:`~mvcodec.io.clip.ClipSource` into packets of a ``.mvc`` file and back::

    source --encode(source, settings, writer)--> MvcWriter (header already written by encode_file)
    MvcReader --decode(reader, views, frames)--> iterator of DecodedFrame (view, frame, RGB HxWx3)
    MvcReader --decode(..., skip_damaged=True)--> DecodedFrame | Skipped(view, frames, reason)
                (a damaged packet costs exactly the frames that depend on it; the rest still decodes)

Every codec registers under a frozen id (``@register``), written into every file it makes and never derived
from ordering.  The header's ``codec_config`` and ``weights_sha256`` are enough to rebuild the decoder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Literal, Sequence

import numpy as np

from mvcodec.bitstream import MvcHeader, MvcReader, MvcWriter
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource

Structure = Literal["ld", "ra", "intra"]
STRUCTURES: tuple[str, ...] = ("ld", "ra", "intra")


@dataclass(frozen=True)
class EncodeSettings:
    """How to encode: ``quality`` is the codec's own rate knob (a QP for conventional codecs, lower = more bits
    there; see each codec's ``quality_help``), ``structure`` the coding structure, ``gop`` the intra period."""

    quality: float
    structure: Structure = "ra"
    gop: int = 32

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise InputError(f"unknown coding structure {self.structure!r} (choose from {', '.join(STRUCTURES)})")
        if not 1 <= self.gop <= 10_000:
            raise InputError(f"intra period must be 1..10000 frames, got {self.gop}")


@dataclass(frozen=True)
class DecodedFrame:
    view: int
    frame: int
    rgb: np.ndarray  # (H, W, 3) uint8


@dataclass(frozen=True)
class Skipped:
    """Frames ``frames`` of ``view`` were not decoded because a packet they depend on is damaged (``reason``:
    one line naming the packet).  Yielded in place of those frames, in the same order, by
    ``Codec.decode(..., skip_damaged=True)``."""

    view: int
    frames: range
    reason: str


class Codec(ABC):
    """Base class of every codec in the registry."""

    id: ClassVar[str]                       # frozen: written into every file; never change it
    description: ClassVar[str]
    default_qualities: ClassVar[tuple[float, ...]]
    quality_help: ClassVar[str]
    options_help: ClassVar[str] = "none"   # the options get_codec(id, **options) / -O KEY=VALUE accepts
    lossy_higher_quality_is: ClassVar[Literal["lower", "higher"]] = "lower"
    uses_structure: ClassVar[bool] = True   # False: the bytes do not depend on structure/gop (e.g. an INR)
    resumable: ClassVar[bool] = False       # encoding is a long fit that takes options checkpoint= and resume=

    def __init__(self, **options: Any) -> None:
        self.options = options

    def unavailable_reason(self) -> str | None:
        """None when the codec can run here, else one line saying what it needs."""
        return None

    def requirements(self) -> str:
        """What the codec needs to run, for ``mvcodec codecs``."""
        return "nothing beyond the package"

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        """The ``codec_config`` header entry for ``settings`` (JSON-serialisable)."""
        return {"quality": settings.quality}

    def weights_sha256(self) -> str:
        return ""

    @abstractmethod
    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        """Write the packets of ``source`` to ``writer``.  Returns extra report entries (e.g. estimated bits)."""

    @abstractmethod
    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Decode ``frames`` of ``views`` reading only the packets they depend on; yields every requested frame
        exactly once (order: by view, then by frame).

        A damaged packet (a :class:`~mvcodec.bitstream.DamagedPacket` from ``reader.read_packet``, or a payload
        the codec's own decoder rejects) is a :class:`BitstreamError`; with ``skip_damaged`` the codec instead
        yields one :class:`Skipped` for the frames of each view that depend on it, in their place, and goes on.
        Errors that are not about one packet (a malformed header) are raised either way."""

    def check_decodable(self, header: MvcHeader) -> None:
        """Raise :class:`BitstreamError` if this installation cannot decode a file with ``header``."""
        if header.weights_sha256 != self.weights_sha256():
            raise BitstreamError(
                f"file needs weights {header.weights_sha256[:16] or '(none)'} for codec {self.id}, "
                f"installed: {self.weights_sha256()[:16] or '(none)'}")


_REGISTRY: dict[str, type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator: add ``cls`` to the registry under its frozen ``id``."""
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"codec id {cls.id!r} registered twice")
    _REGISTRY[cls.id] = cls
    return cls


def codec_ids() -> list[str]:
    _load_builtin_codecs()
    return sorted(_REGISTRY)


def codec_class(codec_id: str) -> type[Codec]:
    """The registered class of ``codec_id`` (its class attributes, without building it); unknown ids are a
    :class:`CodecError`."""
    _load_builtin_codecs()
    try:
        return _REGISTRY[codec_id]
    except KeyError:
        raise CodecError(f"unknown codec {codec_id!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def get_codec(codec_id: str, **options: Any) -> Codec:
    """An instance of the registered codec ``codec_id``; unknown ids are a :class:`CodecError`."""
    return codec_class(codec_id)(**options)


def options_for(codec_id: str, options: dict[str, str]) -> dict[str, str]:
    """The options meant for ``codec_id``: unprefixed ones, and ``codec_id:key`` ones without the prefix."""
    out = {}
    for key, value in options.items():
        target, sep, name = key.rpartition(":")
        if not sep:
            out[key] = value
        elif target == codec_id:
            out[name] = value
    return out


def _load_builtin_codecs() -> None:
    import mvcodec.codecs  # noqa: F401  (importing the package registers the built-in codecs)
