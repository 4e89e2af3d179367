"""Run every codec at several rate points and measure each from the file it wrote.

::

    source --for codec, structure, quality--> encode_file -> BITSTREAMS/{series}_q{Q}.mvc
           --measure_file (decode from the file, never from encoder memory)--> EvalPoint
    points --> results.json, bd_rate.md (every series against the first), rd.png

A series is one codec in one coding structure, named ``codec/structure`` (e.g. ``x265/ra``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from mvcodec.api import encode_file, measure_file
from mvcodec.atomic import atomic_write_text
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.codecs.base import options_for
from mvcodec.errors import CodecError, InputError
from mvcodec.io.clip import ClipSource


@dataclass
class EvalPoint:
    """One rate point of one series, measured by decoding its file."""

    series: str
    codec: str
    structure: str
    quality: float
    file: str
    bytes: int
    bpp: float
    psnr_rgb: float
    psnr_y: float
    psnr_yuv: float
    ms_ssim: float
    per_view: dict[str, list[float]]
    encode_seconds: float
    decode_seconds: float
    extra: dict


def run_eval(source: ClipSource, codec_ids: Sequence[str], out_dir: str | os.PathLike,
             structures: Sequence[str] = ("ra",),
             qualities: Sequence[float] | dict[str, Sequence[float]] | None = None,
             gop: int = 32, progress: bool = True, codec_options: dict[str, str] | None = None,
             ) -> list[EvalPoint]:
    """Encode ``source`` with every codec x structure x quality, decode each file, write the reports.

    ``codec_options``: ``{"key": v}`` goes to every codec, ``{"codec-id:key": v}`` to that codec only (an option
    a codec does not know is an error, never ignored).  A codec whose output does not depend on the coding
    structure (``Codec.uses_structure`` false, e.g. an INR) is encoded once per quality and measured once; that
    point appears in every structure's series, so it is compared with every anchor."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bitstreams").mkdir(exist_ok=True)
    codecs = [get_codec(cid, **options_for(cid, codec_options or {})) for cid in codec_ids]
    for codec in codecs:
        reason = codec.unavailable_reason()
        if reason:
            raise CodecError(f"codec {codec.id} is unavailable: {reason}")
    if len(set(codec_ids)) != len(codec_ids):
        raise InputError(f"codec list {list(codec_ids)} repeats a codec")
    def ladder(codec) -> Sequence[float]:
        if isinstance(qualities, dict):
            unknown = set(qualities) - set(codec_ids)
            if unknown:
                raise InputError(f"qualities given for codecs not evaluated: {', '.join(sorted(unknown))}")
            return qualities.get(codec.id, codec.default_qualities)
        return codec.default_qualities if qualities is None else qualities

    jobs = [(codec, structure, q) for codec in codecs for structure in structures for q in ladder(codec)]
    info = source.info
    points: list[EvalPoint] = []
    bar = tqdm(jobs, desc="eval", unit="point", disable=None if progress else True)
    measured: dict[tuple[str, str, float], tuple] = {}
    for codec, structure, quality in bar:
        series = f"{codec.id}/{structure}"
        bar.set_postfix_str(f"{series} q={quality:g}")
        coded_as = structure if codec.uses_structure else structures[0]
        key = (codec.id, coded_as, quality)
        if key not in measured:
            settings = EncodeSettings(quality=quality, structure=coded_as, gop=gop)  # type: ignore[arg-type]
            path = out / "bitstreams" / f"{codec.id}_{coded_as}_q{quality:g}.mvc"
            # the encoder's instance decodes: weights given as options (weights_file=) are found by hash
            measured[key] = (path, encode_file(source, codec, settings, path),
                             measure_file(source, path, codec=codec))
        path, enc, m = measured[key]
        points.append(EvalPoint(series, codec.id, structure, quality, str(path.relative_to(out)), enc.bytes,
                                enc.bpp, m.psnr_rgb, m.psnr_y, m.psnr_yuv, m.ms_ssim, m.per_view,
                                enc.encode_seconds, m.decode_seconds, enc.extra))
    clip = {"views": info.views, "frames": info.frames, "width": info.width, "height": info.height,
            "fps": info.fps, "view_names": list(info.view_names), "gop": gop}
    write_results(out, clip, points)
    return points


def write_results(out: Path, clip: dict[str, Any], points: Sequence[EvalPoint]) -> None:
    """``out/results.json`` ({"clip", "points"}, atomically) and the reports drawn from it (bd_rate.md, rd.png)."""
    from mvcodec.eval.report import write_reports

    atomic_write_text(out / "results.json",
                      json.dumps({"clip": clip, "points": [asdict(p) for p in points]}, indent=2) + "\n")
    write_reports(points, out)


def merge_results(parts: Sequence[str | os.PathLike], out: str | os.PathLike,
                  series_suffix: dict[str, str] | None = None) -> list[EvalPoint]:
    """Join the points of several eval folders (e.g. rungs run by parallel processes) into ``out`` (results.json and
    reports; files referenced relative to ``out``).  ``series_suffix`` ``{folder name: suffix}`` renames that
    folder's series (``mlvc/ld`` -> ``mlvc-1ref/ld``) so variants of one codec sit side by side; a series point
    present in two parts (same series and quality) is an :class:`InputError`, never silently dropped."""
    out = Path(out)
    points: list[EvalPoint] = []
    clip: dict[str, Any] | None = None
    seen: set[tuple[str, float]] = set()
    for part in map(Path, parts):
        results = part / "results.json"
        try:
            clip = clip or json.loads(results.read_text())["clip"]
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{results}: not a results.json of mvcodec eval ({exc})") from None
        suffix = (series_suffix or {}).get(part.name, "")
        for p in load_results(results):
            if suffix:
                p.codec += suffix
                p.series = f"{p.codec}/{p.structure}"
            if (p.series, p.quality) in seen:
                raise InputError(f"{p.series} quality {p.quality:g} appears in two parts")
            seen.add((p.series, p.quality))
            p.file = os.path.relpath(part / p.file, out)
            points.append(p)
    out.mkdir(parents=True, exist_ok=True)
    write_results(out, clip or {}, points)
    return points


def merge_parts(spec: str, folder_of: Callable[[str], Path], out: str | os.PathLike) -> list[EvalPoint]:
    """``NAME[=SUFFIX],...`` (a benchmark's ``--parts``): :func:`merge_results` of the folders ``folder_of(NAME)``
    into ``out``, each part given a ``SUFFIX`` renamed by it."""
    parts = [p.split("=", 1) for p in spec.split(",")]
    folders = [folder_of(p[0]) for p in parts]
    suffixes = {f.name: p[1] for f, p in zip(folders, parts) if len(p) == 2}
    return merge_results(folders, out, suffixes)


def load_results(path: str | os.PathLike) -> list[EvalPoint]:
    """The points of a ``results.json`` written by :func:`run_eval` (to redraw tables and plots)."""
    try:
        data = json.loads(Path(path).read_text())
        return [EvalPoint(**p) for p in data["points"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a results.json of mvcodec eval ({exc})") from None
