"""MV-HEVC adapter: pairs of views coded as one two-layer MV-HEVC stream by an external x265 with multiview.

::

    views (2k, 2k+1), frames [j*gop, (j+1)*gop)
      --colour.rgb_to_yuv420--> pad --> view0.yuv, view1.yuv --> x265 --multiview-config mv.cfg ...
      --> one MV-HEVC Annex B stream (base layer = view 2k, second layer = view 2k+1, predicted from it)
      = packet (view 2k, kind PAIR, first j*gop, count)
    a last, unpaired view: the same x265 without the multiview config = packet (view, kind SINGLE, ...)

    packet --> ffmpeg hevc decoder (MV-HEVC capable since ffmpeg 7.1), output selected with the view
               specifier -map 0:v:0:vidx:L (L = 0 base, 1 second view) --> raw 4:2:0 --> crop --> RGB

x265 supports at most two views per stream (``--num-views`` 1..2), hence the pairing.  Every intra period is
its own closed stream, as for the simulcast codecs; decoding view 2k+1 reads its pair's packets (it depends on
view 2k), decoding either view of a pair reads nothing of other pairs.

The encoder is x265 >= 4.0 built with ``-DENABLE_MULTIVIEW=ON`` (not the default build, and not the libx265
inside the imageio-ffmpeg binary).  Give its path as the codec option ``encoder=/path/to/x265`` or in the
environment variable ``MVCODEC_MVHEVC_ENCODER``; without one the codec reports itself unavailable and is
skipped.  Its multiview config file has one option per line (``--num-views 2``, ``--format 0`` = one raw file
per view, ``--input FILE`` per view); everything else is on the command line (:func:`x265_command`).

What is tested here (no multiview x265 is available to the test suite): the command line and config file
built for x265, the unavailable path, and the decoding path on single-layer packets (made by ffmpeg's
libx265).  Not tested: an actual two-layer encode and the ``vidx:1`` decode of a second layer.  The HTM
reference encoder (TAppEncoder) is not driven; it would need its own config writer.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Iterator, Sequence

from mvcodec.bitstream import MvcHeader, MvcReader, MvcWriter
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.ffmpeg_tools import ffmpeg_missing, pack_frames, pad_planes, padded_size, run_tool, tool_timeout
from mvcodec.codecs.simulcast import (
    HEVC_LADDER,
    PAD_MINIMUM,
    PAD_MULTIPLE,
    decode_units,
    packets_covering,
    prepare_decode,
)
from mvcodec.errors import CodecError, InputError
from mvcodec.io.clip import ClipSource
from mvcodec.io.colour import rgb_to_yuv420

ENCODER_ENV = "MVCODEC_MVHEVC_ENCODER"
KIND_SINGLE = 0  # packet: one view, single-layer HEVC
KIND_PAIR = 1    # packet: views (view, view + 1), two-layer MV-HEVC

# x265 options per coding structure (keyint is 1 for intra, the intra period otherwise).
STRUCTURE_ARGS: dict[str, tuple[str, ...]] = {
    "ld": ("--bframes", "0"),
    "ra": ("--bframes", "7", "--b-adapt", "0", "--b-pyramid"),
    "intra": ("--bframes", "0"),
}


def x265_command(exe: str, inputs: Sequence[str], output: str, width: int, height: int, fps: str, frames: int,
                 qp: int, structure: str, gop: int, preset: str, config_path: str,
                 ) -> tuple[list[str], str | None]:
    """The x265 command line coding ``inputs`` (one raw I420 file per view, 1 or 2 views) into ``output``.

    Returns (argv, multiview config text or None).  With two inputs the views go through the config file at
    ``config_path`` (which the caller writes); with one, the input is given directly (plain HEVC).
    """
    if not 1 <= len(inputs) <= 2:
        raise ValueError(f"x265 codes 1 or 2 views per stream, got {len(inputs)}")
    keyint = 1 if structure == "intra" else gop
    argv = [exe]
    config = None
    if len(inputs) == 2:
        config = "--num-views 2\n--format 0\n" + "".join(f'--input "{p}"\n' for p in inputs)
        argv += ["--multiview-config", config_path]
    else:
        argv += ["--input", inputs[0]]
    argv += ["--input-res", f"{width}x{height}", "--input-csp", "i420", "--input-depth", "8", "--fps", fps,
             "--frames", str(frames), "--output", output,
             "--preset", preset, "--qp", str(qp), "--keyint", str(keyint), "--min-keyint", str(keyint),
             "--no-scenecut", "--no-open-gop", *STRUCTURE_ARGS[structure],
             "--frame-threads", "1", "--pools", "none", "--no-info",
             "--range", "limited", "--colorprim", "bt709", "--transfer", "bt709", "--colormatrix", "bt709",
             "--chromaloc", "1", "--log-level", "error", "--no-progress"]
    return argv, config


def view_select(layer: int) -> list[str]:
    """ffmpeg output options picking view index ``layer`` of an MV-HEVC stream (0 = base view)."""
    return ["-map", f"0:v:0:vidx:{layer}"]


@register
class MvHevcCodec(Codec):
    """MV-HEVC through an external multiview x265.  Options: ``encoder`` (path), ``preset``, ``timeout``."""

    id = "mvhevc"
    description = "MV-HEVC (x265 with multiview, external binary): view pairs as two-layer streams"
    default_qualities = HEVC_LADDER
    quality_help = "constant QP of P frames, 0..51; lower = better; ladder 22/27/32/37/42 (as x265)"

    options_help = "encoder=PATH (multiview x265), preset=NAME, timeout=SECONDS"

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - {"encoder", "preset", "timeout"}
        if unknown:
            raise InputError(f"codec mvhevc has no option(s) {', '.join(sorted(unknown))} "
                             f"(known: encoder, preset, timeout)")
        super().__init__(**options)
        self.encoder = str(options.get("encoder") or os.environ.get(ENCODER_ENV, ""))
        self.preset = str(options.get("preset", "medium"))

    def unavailable_reason(self) -> str | None:
        if not self.encoder:
            return (f"needs an x265 (>= 4.0) built with -DENABLE_MULTIVIEW=ON: pass encoder=/path/to/x265 or set "
                    f"{ENCODER_ENV}")
        if not (os.path.isfile(self.encoder) and os.access(self.encoder, os.X_OK)):
            return f"the MV-HEVC encoder {self.encoder} is not an executable file"
        return ffmpeg_missing(decoder="hevc")

    def requirements(self) -> str:
        return (f"an x265 >= 4.0 built with ENABLE_MULTIVIEW (option encoder= or {ENCODER_ENV}), and ffmpeg "
                f">= 7.1 (imageio-ffmpeg) for MV-HEVC decoding")

    def qp(self, settings: EncodeSettings) -> int:
        q = settings.quality
        if q != int(q) or not 0 <= q <= 51:
            raise InputError(f"codec mvhevc takes an integer QP in 0..51 as quality, got {q}")
        return int(q)

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        return {"quality": settings.quality, "qp": self.qp(settings), "structure": settings.structure,
                "gop": settings.gop, "encoder": "x265-multiview", "preset": self.preset, "views_per_stream": 2,
                "decoder": "hevc", "container": "hevc", "bit_depth": 8,
                "pad_multiple": PAD_MULTIPLE, "pad_minimum": PAD_MINIMUM}

    # ------------------------------------------------------------------------------------- encode

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        reason = self.unavailable_reason()
        if reason:
            raise CodecError(f"codec mvhevc is unavailable: {reason}")
        info = source.info
        hp, wp = padded_size(info.height, info.width, PAD_MULTIPLE, PAD_MINIMUM)
        fps_num, fps_den = MvcHeader.fps_fraction(info.fps)
        groups = [list(range(v, min(v + 2, info.views))) for v in range(0, info.views, 2)]
        start, total, commands = time.perf_counter(), 0, []
        with TemporaryDirectory(prefix="mvcodec-mvhevc-") as tmp:
            out, cfg_path = Path(tmp) / "unit.hevc", Path(tmp) / "multiview.cfg"
            for views in groups:
                for first in range(0, info.frames, settings.gop):
                    count = min(settings.gop, info.frames - first)
                    inputs = []
                    for v in views:
                        rgb = source.read_frames(v, first, first + count)
                        path = Path(tmp) / f"view{len(inputs)}.yuv"
                        path.write_bytes(pack_frames([pad_planes(rgb_to_yuv420(f), hp, wp) for f in rgb], 8))
                        inputs.append(str(path))
                    argv, config = x265_command(self.encoder, inputs, str(out), wp, hp, f"{fps_num}/{fps_den}",
                                                count, self.qp(settings), settings.structure, settings.gop,
                                                self.preset, str(cfg_path))
                    if config is not None:
                        cfg_path.write_text(config)
                    out.unlink(missing_ok=True)
                    run_tool(argv, f"mvhevc: encoding views {views} frames {first}:{first + count}",
                             timeout=tool_timeout(count * len(views), hp, wp, override=self.options.get("timeout")))
                    payload = out.read_bytes() if out.exists() else b""
                    if not payload:
                        raise CodecError(f"mvhevc: {self.encoder} wrote nothing for views {views} frame {first}")
                    writer.write_packet(views[0], first, count, payload,
                                        kind=KIND_PAIR if len(views) == 2 else KIND_SINGLE)
                    total += len(payload)
                    if not commands:
                        commands = [shlex.join(argv)] + ([config] if config else [])
        return {"encoder": self.encoder, "preset": self.preset, "first_command": commands,
                "payload_bytes": total, "encode_seconds": time.perf_counter() - start}


    # ------------------------------------------------------------------------------------- decode

    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        header = reader.header
        cfg, hp, wp = prepare_decode(self.id, header, views, frames)
        for view in views:
            base = view - view % 2
            paired = base + 1 < header.views
            kind, layer = (KIND_PAIR, view - base) if paired else (KIND_SINGLE, 0)
            entries = packets_covering(reader, base if paired else view, frames, kind=kind)
            yield from decode_units(self.id, reader, entries, view, frames, cfg, (hp, wp), skip_damaged,
                                    select=view_select(layer) if paired else ())
