"""Encode a clip into a ``.mvc`` file and decode it back: the one path the CLI, the eval harness and tests use.

::

    source --encode_file(source, codec, settings, path)--> PATH.mvc  (atomic: .PATH.mvc.partial, then renamed)
    PATH.mvc --decode_file(path, views, frames)--> iterator of DecodedFrame
    PATH.mvc --decode_file(..., skip_damaged=True)--> DecodedFrame | Skipped (frames lost to a damaged packet)
    (source, PATH.mvc) --measure_file--> bytes, bpp, PSNR-RGB/Y/YUV, MS-SSIM per view: always from the file
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from mvcodec.bitstream import GLOBAL_VIEW, MvcHeader, MvcReader, MvcWriter
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, get_codec
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource, FrameWindow
from mvcodec.metrics import MetricAccumulator, bpp


@dataclass
class EncodeResult:
    """What an encode produced: the file, its real size, and the codec's own report (e.g. estimated bits)."""

    path: str
    codec: str
    quality: float
    structure: str
    gop: int
    bytes: int
    bpp: float
    encode_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measurement:
    """Quality of a decoded file against its source, and the decode time.  Per-view lists are in view order."""

    psnr_rgb: float
    psnr_y: float
    psnr_yuv: float
    ms_ssim: float
    per_view: dict[str, list[float]]
    decode_seconds: float
    frames_decoded: int


def header_for(codec: Codec, source: ClipSource, settings: EncodeSettings) -> MvcHeader:
    """The ``.mvc`` header ``codec`` writes for ``source``."""
    info = source.info
    fps_num, fps_den = MvcHeader.fps_fraction(info.fps)
    return MvcHeader(
        codec_id=codec.id, views=info.views, frames=info.frames, width=info.width, height=info.height,
        fps_num=fps_num, fps_den=fps_den, structure=settings.structure, gop=settings.gop,
        codec_config=codec.config(settings), weights_sha256=codec.weights_sha256(),
        view_names=list(info.view_names),
        cameras=None if info.cameras is None else [c.to_json() for c in info.cameras])


class _PacketProgress:
    """Stands in for an :class:`MvcWriter` and advances a progress bar by the frames of every packet written."""

    def __init__(self, writer: MvcWriter, bar: tqdm) -> None:
        self._writer, self._bar = writer, bar

    def write_packet(self, view: int, first_frame: int, frame_count: int, payload: bytes, kind: int = 0) -> None:
        self._writer.write_packet(view, first_frame, frame_count, payload, kind)
        if view != GLOBAL_VIEW:
            self._bar.update(frame_count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def encode_file(source: ClipSource, codec: Codec | str, settings: EncodeSettings,
                path: str | os.PathLike, progress: bool = False) -> EncodeResult:
    """Encode ``source`` with ``codec`` into ``path``.  The file appears only once it is complete.

    ``progress`` shows a bar of the frames coded (all views), advanced as the codec writes packets."""
    codec = get_codec(codec) if isinstance(codec, str) else codec
    reason = codec.unavailable_reason()
    if reason:
        raise CodecError(f"codec {codec.id} is unavailable: {reason}")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a file name for the .mvc output")
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    info = source.info
    start = time.perf_counter()
    with MvcWriter(path, header_for(codec, source, settings)) as writer, \
            tqdm(total=info.views * info.frames, desc=f"encode {codec.id}", unit="frame",
                 disable=None if progress else True,
                 leave=False) as bar:
        extra = codec.encode(source, settings, _PacketProgress(writer, bar))  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    return EncodeResult(str(path), codec.id, settings.quality, settings.structure, settings.gop, size,
                        bpp(size, info.views, info.frames, info.height, info.width), seconds,
                        dict(extra or {}))


def open_decoder(path: str | os.PathLike, codec: Codec | None = None) -> tuple[MvcReader, Codec]:
    """Open ``path`` and the installed codec that made it; unknown codecs or weights are a BitstreamError.

    ``codec``: decode with this instance (e.g. the encoder's, so weights given as an option are found) instead
    of a default one; it must be of the codec the header names."""
    reader = MvcReader(path)
    try:
        if codec is not None and codec.id != reader.header.codec_id:
            raise BitstreamError(f"{path}: made by codec {reader.header.codec_id!r}, not {codec.id!r}")
        try:
            codec = codec or get_codec(reader.header.codec_id)
        except CodecError:
            raise BitstreamError(f"{path}: made by codec {reader.header.codec_id!r}, which this installation "
                                 "does not know") from None
        codec.check_decodable(reader.header)
    except BaseException:
        reader.close()
        raise
    return reader, codec


def parse_views(views: Sequence[int] | None, count: int) -> list[int]:
    """``views`` checked against ``count`` (None = all)."""
    if views is None:
        return list(range(count))
    for v in views:
        if not 0 <= v < count:
            raise InputError(f"view {v} does not exist (the file has {count} views)")
    if len(set(views)) != len(views):
        raise InputError(f"view list {list(views)} repeats a view")
    return list(views)


def parse_frames(frames: range | None, count: int) -> range:
    """``frames`` checked against ``count`` (None = all)."""
    if frames is None:
        return range(count)
    if not (0 <= frames.start < frames.stop <= count) or frames.step != 1:
        raise InputError(f"frames {frames.start}:{frames.stop} are outside the file's 0:{count}")
    return frames


def decode_file(path: str | os.PathLike, views: Sequence[int] | None = None, frames: range | None = None,
                skip_damaged: bool = False, codec: Codec | None = None) -> Iterator[DecodedFrame | Skipped]:
    """Decode ``frames`` of ``views`` from ``path``, reading only the packets they depend on.

    Yields every requested frame exactly once, each view's frames in order; views come one after the other, or
    (a multi-view codec whose views depend on each other) interleaved intra period by intra period.  A damaged
    packet is a BitstreamError; with ``skip_damaged`` the frames that depend on it come as one
    :class:`Skipped` each run instead.  The codec's output is checked against this contract (shape, order,
    nothing missing or repeated).  ``codec``: see :func:`open_decoder`."""
    reader, codec = open_decoder(path, codec)
    with reader:
        yield from decode_opened(reader, codec, views, frames, skip_damaged)


def decode_opened(reader: MvcReader, codec: Codec, views: Sequence[int] | None = None, frames: range | None = None,
                  skip_damaged: bool = False) -> Iterator[DecodedFrame | Skipped]:
    """:func:`decode_file` on a file already opened by :func:`open_decoder` (the caller closes ``reader``)."""
    path, h = reader.path, reader.header
    wanted_views, wanted_frames = parse_views(views, h.views), parse_frames(frames, h.frames)
    done = {v: 0 for v in wanted_views}  # frames of each view yielded so far (the next is wanted_frames[done])
    for item in codec.decode(reader, wanted_views, wanted_frames, skip_damaged=skip_damaged):
        pos = done.get(item.view)
        if isinstance(item, Skipped):
            covered = list(item.frames)
            if not skip_damaged or not covered or pos is None or list(wanted_frames[pos:pos + len(covered)]) != covered:
                raise BitstreamError(f"{path}: the decoder skipped view {item.view} frames "
                                     f"{item.frames.start}:{item.frames.stop} out of order")
            done[item.view] += len(covered)
            yield item
            continue
        if pos is None or pos >= len(wanted_frames) or item.frame != wanted_frames[pos]:
            raise BitstreamError(f"{path}: the decoder produced view {item.view} frame {item.frame} out of "
                                 "order or twice (corrupted file)")
        if item.rgb.shape != (h.height, h.width, 3) or item.rgb.dtype != np.uint8:
            raise BitstreamError(f"{path}: decoded frame has shape {item.rgb.shape}, expected "
                                 f"{(h.height, h.width, 3)}")
        done[item.view] += 1
        yield item
    for v in wanted_views:
        if done[v] != len(wanted_frames):
            raise BitstreamError(f"{path}: the decoder stopped before view {v} frame {wanted_frames[done[v]]} "
                                 "(file is incomplete)")


def measure_file(source: ClipSource, path: str | os.PathLike, progress: bool = False,
                 codec: Codec | None = None) -> Measurement:
    """Decode every frame of ``path`` from the file and compare it with ``source`` (``codec``: the instance
    that decodes, see :func:`open_decoder`; default: the installed codec the header names)."""
    info = source.info
    acc = MetricAccumulator()
    window = FrameWindow(source)
    count = 0
    start = time.perf_counter()
    decode_seconds = 0.0
    tick = start
    with tqdm(total=info.views * info.frames, desc="decode + measure", unit="frame",
              disable=None if progress else True, leave=False) as bar:
        for frame in decode_file(path, codec=codec):
            decode_seconds += time.perf_counter() - tick
            if frame.view >= info.views or frame.frame >= info.frames:
                raise BitstreamError(f"{path}: decoded view {frame.view} frame {frame.frame} is not in the source")
            acc.add(frame.view, window.frame(frame.view, frame.frame), frame.rgb)
            count += 1
            bar.update()
            tick = time.perf_counter()
    expected = info.views * info.frames
    if count != expected:
        raise BitstreamError(f"{path}: decoded {count} frames, the source has {expected}")
    r = acc.result()
    return Measurement(r.psnr_rgb, r.psnr_y, r.psnr_yuv, r.ms_ssim,
                       {"psnr_rgb": list(r.per_view_psnr_rgb), "psnr_y": list(r.per_view_psnr_y),
                        "psnr_yuv": list(r.per_view_psnr_yuv), "ms_ssim": list(r.per_view_ms_ssim)},
                       decode_seconds, count)


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)
