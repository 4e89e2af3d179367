"""Running external encoder/decoder binaries, and the raw 4:2:0 frames they exchange with mvcodec.

The conventional codecs never let an external tool touch colours: frames go in and come out as planar
BT.709 limited-range 4:2:0 made by :mod:`mvcodec.io.colour`, tagged identically on the input and the output
side so that ffmpeg inserts no conversion filter::

    RGB --colour.rgb_to_yuv420--> planes --pad_planes--> pack_frames --stdin--> ffmpeg / encoder binary
    ffmpeg --raw frames--> unpack_frames --crop--> planes --colour.yuv420_to_rgb--> RGB

10-bit tools (VVenC) get the 8-bit samples shifted left by 2 (exact), and 10-bit output is rounded back with
``(x + 2) >> 2``; a lossless 10-bit round trip therefore returns the 8-bit input exactly.

Every run goes through :func:`run_tool`: input through ``communicate`` (no pipe deadlock), a timeout (no hang),
and a failure becomes one line (the tool's most telling stderr line), never a traceback.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from typing import Sequence

import numpy as np

from mvcodec.errors import CodecError
from mvcodec.io.colour import yuv420_frame_bytes

# Tags of the one colour format every conventional codec carries; given on both sides of ffmpeg.
COLOUR_TAGS: tuple[str, ...] = ("-color_range", "tv", "-colorspace", "bt709",
                                "-color_primaries", "bt709", "-color_trc", "bt709")
# Chroma siting of colour.rgb_to_yuv420 (2x2 box average); AV1 cannot signal it, so it is left out there.
CHROMA_CENTER: tuple[str, ...] = ("-chroma_sample_location", "center")

_GENERIC_LINES = re.compile(
    r"(Conversion failed|Nothing was written|Error while|Terminating thread|Could not open encoder|"
    r"Error sending frames|Task finished with error|Exiting with exit code|Error initializing|"
    r"Error opening output|Error submitting|Error closing)", re.I)


# --------------------------------------------------------------------------------------------- the binary


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str | None:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg (or named by IMAGEIO_FFMPEG_EXE); None if absent."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001  (ImportError, RuntimeError: no binary for this platform)
        return None


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """The version of the ffmpeg binary (e.g. ``n9.0.2-17-g2a571b6068-20260930``), or "unknown"."""
    exe = ffmpeg_exe()
    if exe is None:
        return "unknown"
    try:
        out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.stdout.decode("utf-8", "replace").split()
    return words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else "unknown"


@functools.lru_cache(maxsize=4)
def _listing(kind: str) -> frozenset[str]:
    """Names listed by ``ffmpeg -encoders`` / ``-decoders`` (run once per process)."""
    exe = ffmpeg_exe()
    if exe is None:
        return frozenset()
    try:
        out = subprocess.run([exe, "-hide_banner", f"-{kind}"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    names = set()
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        # rows look like " V....D libx265   libx265 H.265 / HEVC (codec hevc)"
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def ffmpeg_missing(encoder: str | None = None, decoder: str | None = None) -> str | None:
    """None when ffmpeg exists with ``encoder`` and ``decoder``; else one line saying what is missing."""
    if ffmpeg_exe() is None:
        return "no ffmpeg binary: install the imageio-ffmpeg package (or set IMAGEIO_FFMPEG_EXE)"
    if encoder and encoder not in _listing("encoders"):
        return f"the ffmpeg binary at {ffmpeg_exe()} has no {encoder} encoder"
    if decoder and decoder not in _listing("decoders"):
        return f"the ffmpeg binary at {ffmpeg_exe()} has no {decoder} decoder"
    return None


# --------------------------------------------------------------------------------------------- running


def telling_line(stderr: bytes) -> str:
    """The most informative line of a tool's stderr: the last one that is not a generic wrap-up message."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    specific = [ln for ln in lines if not _GENERIC_LINES.search(ln)]
    line = (specific or lines or ["(no message)"])[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def run_tool(argv: Sequence[str], what: str, stdin: bytes | None = None, timeout: float = 600.0,
             env: dict[str, str] | None = None, error: type[Exception] = CodecError) -> bytes:
    """Run ``argv`` feeding ``stdin``; return its stdout.  A non-zero exit, a timeout or a missing binary
    raises ``error`` (one line: ``what`` plus the tool's telling stderr line)."""
    full_env = None if env is None else {**os.environ, **env}
    try:
        feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(list(argv), capture_output=True, timeout=timeout, env=full_env, check=False, **feed)
    except subprocess.TimeoutExpired:
        raise error(f"{what}: timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise error(f"{what}: cannot run {argv[0]} ({exc.strerror})") from None
    if proc.returncode != 0:
        raise error(f"{what} failed (exit {proc.returncode}): {telling_line(proc.stderr)}")
    return proc.stdout


def run_ffmpeg(args: Sequence[str], what: str, stdin: bytes | None = None, timeout: float = 600.0,
               error: type[Exception] = CodecError) -> bytes:
    """``ffmpeg -hide_banner -nostdin -loglevel error ARGS``; see :func:`run_tool`."""
    exe = ffmpeg_exe()
    if exe is None:
        raise CodecError(f"{what}: {ffmpeg_missing()}")
    # SVT_LOG=1: SVT-AV1 prints only errors (it writes its banner to stderr on its own otherwise).
    return run_tool([exe, "-hide_banner", "-nostdin", "-loglevel", "error", *args], what, stdin=stdin,
                    timeout=timeout, env={"SVT_LOG": "1"}, error=error)


def tool_timeout(frames: int, height: int, width: int, base: float = 60.0, per_frame_mpx: float = 20.0,
                 override: float | str | None = None) -> float:
    """A generous time limit for coding ``frames`` pictures of ``height`` x ``width``: it guards against a hung
    tool, not a slow one (``base`` seconds plus ``per_frame_mpx`` per frame and megapixel); ``override`` (a
    codec's ``timeout`` option) replaces it."""
    if override is not None:
        return float(override)
    return base + per_frame_mpx * frames * max(height * width, 1) / 1e6


# --------------------------------------------------------------------------------------------- raw frames


def padded_size(height: int, width: int, multiple: int = 2, minimum: int = 16) -> tuple[int, int]:
    """The coded size of a ``height`` x ``width`` picture: each side rounded up to ``multiple``, at least
    ``minimum`` (encoders reject odd 4:2:0 sizes and tiny pictures)."""
    up = lambda n: max(-(-n // multiple) * multiple, -(-minimum // multiple) * multiple)  # noqa: E731
    return up(height), up(width)


def pad_planes(planes: tuple[np.ndarray, np.ndarray, np.ndarray], height: int, width: int,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replicate-pad Y to (height, width) and U, V to (height/2, width/2); sizes must be even."""
    y, u, v = planes

    def pad(p: np.ndarray, h: int, w: int) -> np.ndarray:
        return np.pad(p, ((0, h - p.shape[0]), (0, w - p.shape[1])), mode="edge")

    return pad(y, height, width), pad(u, height // 2, width // 2), pad(v, height // 2, width // 2)


def crop_planes(planes: tuple[np.ndarray, np.ndarray, np.ndarray], height: int, width: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut padded planes back to a ``height`` x ``width`` picture (chroma ceil(height/2) x ceil(width/2))."""
    y, u, v = planes
    hc, wc = (height + 1) // 2, (width + 1) // 2
    return y[:height, :width], u[:hc, :wc], v[:hc, :wc]


def pack_frames(frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], bit_depth: int) -> bytes:
    """Planar I420 frames, 8-bit (``yuv420p``) or 10-bit little-endian with samples << 2 (``yuv420p10le``)."""
    flat = [np.concatenate([p.reshape(-1) for p in f]) for f in frames]
    data = np.concatenate(flat) if flat else np.zeros(0, np.uint8)
    if bit_depth == 8:
        return data.astype(np.uint8, copy=False).tobytes()
    if bit_depth == 10:
        return (data.astype("<u2") << 2).tobytes()
    raise ValueError(f"bit depth {bit_depth} is not 8 or 10")


def unpack_frames(buf: bytes, height: int, width: int, bit_depth: int,
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Inverse of :func:`pack_frames` for ``height`` x ``width`` (even) frames; 10-bit samples are rounded
    to 8 bits with ``(x + 2) >> 2``.  A trailing partial frame is an error (ValueError)."""
    n_samples = yuv420_frame_bytes(height, width)
    if bit_depth == 8:
        samples = np.frombuffer(buf, np.uint8)
    elif bit_depth == 10:
        wide = np.frombuffer(buf[: len(buf) - len(buf) % 2], "<u2")
        samples = np.minimum((wide.astype(np.uint32) + 2) >> 2, 255).astype(np.uint8)
        if len(buf) % 2:
            raise ValueError("10-bit raw video with an odd number of bytes")
    else:
        raise ValueError(f"bit depth {bit_depth} is not 8 or 10")
    if samples.size % n_samples:
        raise ValueError(f"raw video of {samples.size} samples is not a whole number of {width}x{height} frames")
    hc, wc = height // 2, width // 2
    out = []
    for i in range(samples.size // n_samples):
        f = samples[i * n_samples:(i + 1) * n_samples]
        out.append((f[: height * width].reshape(height, width),
                    f[height * width: height * width + hc * wc].reshape(hc, wc),
                    f[height * width + hc * wc:].reshape(hc, wc)))
    return out
