"""Simulcast conventional anchors: each view coded on its own by x264, x265, SVT-AV1 or VVenC through ffmpeg.

::

    view v, frames [k*gop, (k+1)*gop)
      --colour.rgb_to_yuv420--> 4:2:0 planes --replicate-pad--> raw frames --stdin--> ffmpeg -c:v ENCODER
      --> one closed elementary stream (first picture IDR / key frame) = packet (view v, first k*gop, count)

    packet --stdin--> ffmpeg -c:v DECODER --raw frames--> crop --colour.yuv420_to_rgb--> DecodedFrame
                                                          (only the requested frames are yielded)

Every intra period is its own stream, so decoding frames A:B of a view reads only the packets of the intra
periods that cover A:B, and nothing of another view.  The four codecs are rows of :data:`SPECS` (encoder
arguments per coding structure) behind one class, :class:`FfmpegSimulcastCodec`.

Coding structures (``EncodeSettings.structure``):

* ``ld`` low delay: one IDR, then pictures in display order predicted from the past only (x264, x265, SVT-AV1:
  P pictures; VVenC: its low-delay GOP of 8, B slices with past references only);
* ``ra`` random access: hierarchical B pictures (x264/x265: 7 B frames in a fixed pattern with B-pyramid;
  SVT-AV1: ``pred-struct=2``, its random-access hierarchy; VVenC: its default RA configuration, GOP 32,
  where the IDR is coded first but displayed at the end of the first GOP, with leading RADL pictures);
* ``intra``: every picture an IDR / key frame.  (SVT-AV1 codes each at the given QP, while its RA key frames
  get a large QP boost and x264/x265 I pictures an ipratio offset, so its intra points sit lower in PSNR.)

Quality is a constant QP (no rate control, no adaptive quantisation, no scene-cut detection): the QP of
P pictures for x264/x265 (I and B pictures get the encoders' default ipratio/pbratio offsets), the base QP of the
hierarchy for VVenC (perceptual QPA off) and SVT-AV1 (``-qp``, which selects CQP with AQ off; its scale is
1..63, about a quarter of AV1's 0..255 ``base_q_idx``).  Default ladders: QP 22/27/32/37/42 for H.264, HEVC
and VVC (the four HEVC common-test-condition points and one lower rate), 27/35/43/51/59 for SVT-AV1 (about
the bitrates and PSNR range of x265's ladder on smooth synthetic content).

Presets, chosen for two CPU cores: x264 ``medium``, x265 ``medium``, SVT-AV1 ``6``, VVenC ``faster`` (option
``preset=`` overrides; the preset is written to the header).  Encoders run single-threaded (x265 without thread
pools, SVT-AV1 ``lp=1``, x264/VVenC one thread), so the bytes do not depend on the machine's core count;
decoding is normative and exact whatever the threading.

Streams are Annex B (H.264, HEVC, VVC) and low-overhead OBUs (AV1; IVF would add 12 bytes a frame).  Bytes that
carry no picture are dropped: x264's SEI with its settings string (``filter_units``), x265's ``info`` SEI
(``info=0``), VVenC's access-unit delimiters.  VVenC takes 10-bit input: samples are shifted (exactly) by
:mod:`mvcodec.codecs.ffmpeg_tools`, never converted by ffmpeg.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import numpy as np

from mvcodec.bitstream import MvcHeader, MvcReader, MvcWriter, PacketEntry
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.ffmpeg_tools import (
    CHROMA_CENTER,
    COLOUR_TAGS,
    crop_planes,
    ffmpeg_missing,
    ffmpeg_version,
    pack_frames,
    pad_planes,
    padded_size,
    run_ffmpeg,
    tool_timeout,
    unpack_frames,
)
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource
from mvcodec.io.colour import rgb_to_yuv420, yuv420_to_rgb

PAD_MULTIPLE = 2   # 4:2:0 needs even sides
PAD_MINIMUM = 16   # x265 and VVenC reject pictures under 16 lines, SVT-AV1 crashes on 8x8

HEVC_LADDER = (22.0, 27.0, 32.0, 37.0, 42.0)


@dataclass(frozen=True)
class FfmpegCodecSpec:
    """One conventional codec as data: which ffmpeg encoder/decoder, and its arguments per structure.

    ``args`` are the encoder's output options; ``{preset}``, ``{qp}``, ``{keyint}`` (the intra period, 1 for
    ``intra``) and ``{structure}`` (the entry of ``structure_params``) are substituted in every token.
    """

    id: str
    description: str
    encoder: str                         # ffmpeg encoder name
    decoder: str                         # ffmpeg decoder name
    container: str                       # elementary stream format (ffmpeg muxer/demuxer): h264 hevc obu vvc
    bit_depth: int                       # of the raw frames exchanged with ffmpeg: 8 (yuv420p) or 10
    preset: str
    qp_range: tuple[int, int]
    default_qualities: tuple[float, ...]
    quality_help: str
    args: tuple[str, ...]
    structure_params: Mapping[str, str]
    bitstream_filter: str | None = None  # applied to the encoder's output
    chroma_center_tag: bool = True       # AV1 cannot signal centre chroma siting

    @property
    def pix_fmt(self) -> str:
        return "yuv420p" if self.bit_depth == 8 else "yuv420p10le"

    def encoder_args(self, qp: int, structure: str, gop: int, preset: str) -> list[str]:
        keyint = 1 if structure == "intra" else gop
        fields = {"preset": preset, "qp": qp, "keyint": keyint,
                  "structure": self.structure_params[structure].format(keyint=keyint)}
        args = [a.format(**fields) for a in self.args]
        if self.bitstream_filter:
            args += ["-bsf:v", self.bitstream_filter]
        return args


SPECS: dict[str, FfmpegCodecSpec] = {s.id: s for s in (
    FfmpegCodecSpec(
        id="x264", description="H.264/AVC simulcast (x264 via ffmpeg), one stream per view and intra period",
        encoder="libx264", decoder="h264", container="h264", bit_depth=8, preset="medium",
        qp_range=(0, 51), default_qualities=HEVC_LADDER,
        quality_help="constant QP of P frames, 0..51 (0 = lossless); lower = better; ladder 22/27/32/37/42",
        args=("-c:v", "libx264", "-preset", "{preset}", "-qp", "{qp}", "-threads", "1", "-x264-params",
              "keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:{structure}"),
        structure_params={"ld": "bframes=0", "ra": "bframes=7:b-adapt=0:b-pyramid=normal",
                          "intra": "bframes=0"},
        bitstream_filter="filter_units=remove_types=6"),
    FfmpegCodecSpec(
        id="x265", description="H.265/HEVC simulcast (x265 via ffmpeg), one stream per view and intra period",
        encoder="libx265", decoder="hevc", container="hevc", bit_depth=8, preset="medium",
        qp_range=(0, 51), default_qualities=HEVC_LADDER,
        quality_help="constant QP of P frames, 0..51; lower = better; ladder 22/27/32/37/42 (HEVC CTC + one)",
        args=("-c:v", "libx265", "-preset", "{preset}", "-qp", "{qp}", "-x265-params",
              "keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:info=0:frame-threads=1:pools=none:"
              "log-level=error:{structure}"),
        # rc-lookahead 20 (medium's own) keeps the lookahead above the 7 B frames whatever the preset
        structure_params={"ld": "bframes=0", "ra": "bframes=7:b-adapt=0:b-pyramid=1:rc-lookahead=20",
                          "intra": "bframes=0"}),
    FfmpegCodecSpec(
        id="svtav1", description="AV1 simulcast (SVT-AV1 via ffmpeg), one stream per view and intra period",
        encoder="libsvtav1", decoder="libdav1d", container="obu", bit_depth=8, preset="6",
        qp_range=(1, 63), default_qualities=(27.0, 35.0, 43.0, 51.0, 59.0),
        quality_help="constant base QP on SVT-AV1's 1..63 scale (about base_q_idx / 4); lower = better; "
                     "ladder 27/35/43/51/59 (rates close to x265 QP 22..42)",
        args=("-c:v", "libsvtav1", "-preset", "{preset}", "-qp", "{qp}", "-svtav1-params",
              "keyint={keyint}:scd=0:lp=1:irefresh-type=2:{structure}"),
        structure_params={"ld": "pred-struct=1", "ra": "pred-struct=2", "intra": "pred-struct=2"},
        chroma_center_tag=False),
    FfmpegCodecSpec(
        id="vvenc", description="H.266/VVC simulcast (VVenC via ffmpeg), one stream per view and intra period",
        encoder="libvvenc", decoder="vvc", container="vvc", bit_depth=10, preset="faster",
        qp_range=(0, 63), default_qualities=HEVC_LADDER,
        quality_help="constant base QP, 0..63 (perceptual QPA off); lower = better; ladder 22/27/32/37/42",
        args=("-c:v", "libvvenc", "-preset", "{preset}", "-qp", "{qp}", "-qpa", "0", "-threads", "1",
              "-vvenc-params", "{structure}"),
        structure_params={"ld": "DecodingRefreshType=none:PicReordering=0:GOPSize=8",
                          "ra": "DecodingRefreshType=idr:IntraPeriod={keyint}:GOPSize=32",
                          "intra": "DecodingRefreshType=idr:IntraPeriod=1:GOPSize=1"},
        bitstream_filter="filter_units=remove_types=20"),
)}


class FfmpegSimulcastCodec(Codec):
    """A row of :data:`SPECS` as a registered codec.  Options: ``preset`` (overrides the spec's), ``timeout``
    (seconds per ffmpeg run; default grows with the unit's size, see :func:`tool_timeout`)."""

    spec: ClassVar[FfmpegCodecSpec]

    def __init_subclass__(cls, spec_id: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.spec = SPECS[spec_id]
        cls.id = cls.spec.id
        cls.description = cls.spec.description
        cls.default_qualities = cls.spec.default_qualities
        cls.quality_help = cls.spec.quality_help

    options_help = "preset=NAME (the encoder's preset), timeout=SECONDS"

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - {"preset", "timeout"}
        if unknown:
            raise InputError(f"codec {self.id} has no option(s) {', '.join(sorted(unknown))} "
                             f"(known: preset, timeout)")
        super().__init__(**options)
        self.preset = str(options.get("preset", self.spec.preset))

    # ------------------------------------------------------------------------------------- description

    def unavailable_reason(self) -> str | None:
        return ffmpeg_missing(self.spec.encoder, self.spec.decoder)

    def requirements(self) -> str:
        return (f"ffmpeg from imageio-ffmpeg with the {self.spec.encoder} encoder and the {self.spec.decoder} "
                f"decoder")

    def qp(self, settings: EncodeSettings) -> int:
        lo, hi = self.spec.qp_range
        q = settings.quality
        if q != int(q) or not lo <= q <= hi:
            raise InputError(f"codec {self.id} takes an integer QP in {lo}..{hi} as quality, got {q}")
        return int(q)

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        """Kept short (its bytes count in every file's rate): the decoder's needs plus the encoder's identity;
        the full encoder command line is in :meth:`encoder_args` and in the report of :meth:`encode`."""
        s = self.spec
        return {
            "quality": settings.quality, "qp": self.qp(settings), "structure": settings.structure,
            "gop": settings.gop, "encoder": s.encoder, "preset": self.preset, "ffmpeg": ffmpeg_version(),
            "decoder": s.decoder, "container": s.container, "bit_depth": s.bit_depth,
            "pad_multiple": PAD_MULTIPLE, "pad_minimum": PAD_MINIMUM,
        }

    def encoder_args(self, settings: EncodeSettings) -> list[str]:
        """The ffmpeg output options that encode one coded unit with ``settings``."""
        return self.spec.encoder_args(self.qp(settings), settings.structure, settings.gop, self.preset)

    def _require(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise CodecError(f"codec {self.id} is unavailable: {reason}")

    # ------------------------------------------------------------------------------------- encode

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        self._require()
        s, info = self.spec, source.info
        hp, wp = padded_size(info.height, info.width, PAD_MULTIPLE, PAD_MINIMUM)
        fps_num, fps_den = MvcHeader.fps_fraction(info.fps)
        colour = COLOUR_TAGS + (CHROMA_CENTER if s.chroma_center_tag else ())
        out_args = self.encoder_args(settings)
        start, total, units = time.perf_counter(), 0, 0
        with TemporaryDirectory(prefix="mvcodec-") as tmp:
            out = Path(tmp) / f"unit.{s.container}"
            for view in range(info.views):
                for first in range(0, info.frames, settings.gop):
                    count = min(settings.gop, info.frames - first)
                    rgb = source.read_frames(view, first, first + count)
                    raw = pack_frames([pad_planes(rgb_to_yuv420(f), hp, wp) for f in rgb], s.bit_depth)
                    args = ["-f", "rawvideo", "-pix_fmt", s.pix_fmt, "-s", f"{wp}x{hp}",
                            "-r", f"{fps_num}/{fps_den}", *colour, "-i", "pipe:0", *out_args, *colour,
                            "-fps_mode", "passthrough", "-f", s.container, "-y", str(out)]
                    run_ffmpeg(args, f"{self.id}: encoding view {view} frames {first}:{first + count}",
                               stdin=raw, timeout=tool_timeout(count, hp, wp, override=self.options.get("timeout")))
                    payload = out.read_bytes()
                    if not payload:
                        raise CodecError(f"{self.id}: the encoder wrote nothing for view {view} frame {first}")
                    writer.write_packet(view, first, count, payload)
                    total, units = total + len(payload), units + 1
        return {"encoder": s.encoder, "preset": self.preset, "ffmpeg": ffmpeg_version(), "encoder_args": out_args,
                "packets": units, "payload_bytes": total, "encode_seconds": time.perf_counter() - start}


    # ------------------------------------------------------------------------------------- decode

    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        header = reader.header
        cfg, hp, wp = prepare_decode(self.id, header, views, frames)
        for view in views:
            yield from decode_units(self.id, reader, packets_covering(reader, view, frames), view, frames, cfg,
                                    (hp, wp), skip_damaged)


def decode_units(codec_id: str, reader: MvcReader, entries: Sequence[PacketEntry], view: int, frames: range,
                 cfg: Mapping[str, Any], padded: tuple[int, int], skip_damaged: bool,
                 select: Sequence[str] = ()) -> Iterator[DecodedFrame | Skipped]:
    """Decode the coded units ``entries`` of ``view`` (one elementary stream each) and yield the frames of
    ``frames`` they hold, cropped to the header's size; a damaged unit raises, or with ``skip_damaged`` yields
    one :class:`Skipped` for its frames.  ``select`` picks a layer of a multi-layer stream (MV-HEVC)."""
    header = reader.header
    for entry in entries:
        wanted = overlap(entry.frames, frames)
        try:
            payload = reader.read_packet(entry)
            planes = decode_stream(payload, cfg, *padded, entry.frame_count,
                                   f"{codec_id}: decoding view {view} frames {entry.first_frame}:{entry.frames.stop}",
                                   select=select)
        except BitstreamError as exc:
            if not skip_damaged:
                raise
            yield Skipped(view, wanted, str(exc))
            continue
        for frame in wanted:
            yield DecodedFrame(view, frame, yuv420_to_rgb(*crop_planes(planes[frame - entry.first_frame],
                                                                       header.height, header.width)))


def overlap(a: range, b: range) -> range:
    """The frames of ``a`` that are also in ``b`` (both step 1)."""
    return range(max(a.start, b.start), max(max(a.start, b.start), min(a.stop, b.stop)))


def decode_stream(payload: bytes, cfg: Mapping[str, Any], height: int, width: int, count: int, what: str,
                  select: Sequence[str] = ()) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One elementary stream -> its ``count`` pictures as padded 8-bit planes (``height`` x ``width``).

    ``cfg`` holds ``decoder``, ``container`` and ``bit_depth`` (see :func:`decoder_config`); ``select`` are
    extra output options, e.g. ``-map 0:v:0:vidx:1`` for the second view of an MV-HEVC stream.  A failure or a
    picture count other than ``count`` is a :class:`BitstreamError`.
    """
    pix_fmt = "yuv420p" if cfg["bit_depth"] == 8 else "yuv420p10le"
    # The output is bounded by the header, not by the stream: pictures much larger than the coded size are
    # refused by the decoder (-max_pixels; decoders allocate block-aligned pictures, hence the margin), and at
    # most count + 1 pictures come out (one more than expected shows a miscount).
    aligned = lambda n: -(-n // 128) * 128 + 128  # noqa: E731
    args = ["-threads", "1", "-max_pixels", str(aligned(height) * aligned(width)), "-c:v", cfg["decoder"],
            "-f", cfg["container"],
            "-i", "pipe:0", *select, "-frames:v", str(count + 1),
            "-f", "rawvideo", "-pix_fmt", pix_fmt, "-fps_mode", "passthrough", "pipe:1"]
    raw = run_ffmpeg(args, what, stdin=payload, error=BitstreamError,
                     timeout=tool_timeout(count, height, width, base=30.0, per_frame_mpx=2.0))
    try:
        planes = unpack_frames(raw, height, width, cfg["bit_depth"])
    except ValueError as exc:
        raise BitstreamError(f"{what}: malformed pictures ({exc})") from None
    if len(planes) != count:
        raise BitstreamError(f"{what}: {len(planes)} pictures decoded, {count} expected")
    return planes


# What a file's codec_config may name: the stream formats and decoders these codecs write and use.
STREAM_FORMATS = frozenset({"h264", "hevc", "obu", "vvc"})
DECODERS = frozenset({"h264", "hevc", "libdav1d", "vvc"})


def decoder_config(header: MvcHeader) -> dict[str, Any]:
    """The decoding parameters from the file's ``codec_config``, validated (malformed = BitstreamError)."""
    cfg = header.codec_config
    want = {"decoder": str, "container": str, "bit_depth": int, "pad_multiple": int, "pad_minimum": int}
    for key, typ in want.items():
        if not isinstance(cfg.get(key), typ):
            raise BitstreamError(f"codec_config of this {header.codec_id} file lacks a valid {key!r}")
    if (cfg["bit_depth"] not in (8, 10) or not 1 <= cfg["pad_multiple"] <= 64
            or not 0 <= cfg["pad_minimum"] <= 4096):
        raise BitstreamError(f"codec_config of this {header.codec_id} file has out-of-range values")
    if cfg["container"] not in STREAM_FORMATS or cfg["decoder"] not in DECODERS:
        raise BitstreamError(f"codec_config of this {header.codec_id} file names an unknown stream format "
                             f"or decoder ({cfg['container']}, {cfg['decoder']})")
    return {k: cfg[k] for k in want}


def prepare_decode(codec_id: str, header: MvcHeader, views: Sequence[int], frames: range,
                   ) -> tuple[dict[str, Any], int, int]:
    """Checks before decoding ``views`` x ``frames`` of a file: its codec, its config, the request, the decoder.
    Returns the decoder config and the coded (padded) height and width."""
    if header.codec_id != codec_id:
        raise BitstreamError(f"file was made by codec {header.codec_id!r}, not {codec_id!r}")
    cfg = decoder_config(header)
    check_request(header, views, frames)
    if (reason := ffmpeg_missing(decoder=cfg["decoder"])) is not None:
        raise CodecError(f"codec {codec_id} cannot decode here: {reason}")
    hp, wp = padded_size(header.height, header.width, cfg["pad_multiple"], cfg["pad_minimum"])
    return cfg, hp, wp


def check_request(header: MvcHeader, views: Sequence[int], frames: range) -> None:
    """Raise :class:`InputError` unless ``views`` and ``frames`` lie inside the file."""
    for v in views:
        if not 0 <= v < header.views:
            raise InputError(f"view {v} does not exist (the file has {header.views} views)")
    if len(frames) and (min(frames) < 0 or max(frames) >= header.frames):
        raise InputError(f"frames {frames.start}:{frames.stop} are outside the file's 0:{header.frames}")


def packets_covering(reader: MvcReader, view: int, frames: range, kind: int | None = None,
                     ) -> list[PacketEntry]:
    """The packets of ``view`` overlapping ``frames``, by first frame; a frame no packet holds, or held by two
    packets, is a :class:`BitstreamError`."""
    entries = sorted(reader.select(view=view, frames=frames, kind=kind), key=lambda e: e.first_frame)
    held: set[int] = set()
    for e in entries:
        if e.frame_count == 0 or held.intersection(e.frames):
            raise BitstreamError(f"packets of view {view} overlap or are empty at frame {e.first_frame} "
                                 "(corrupted index)")
        held.update(e.frames)
    missing = [f for f in frames if f not in held]
    if missing:
        raise BitstreamError(f"no packet holds frame {missing[0]} of view {view} (file is incomplete)")
    return entries


@register
class X264(FfmpegSimulcastCodec, spec_id="x264"):
    """H.264/AVC anchor."""


@register
class X265(FfmpegSimulcastCodec, spec_id="x265"):
    """H.265/HEVC anchor."""


@register
class SvtAv1(FfmpegSimulcastCodec, spec_id="svtav1"):
    """AV1 anchor."""


@register
class VVenC(FfmpegSimulcastCodec, spec_id="vvenc"):
    """H.266/VVC anchor."""
