"""Fuzzing ``mvcodec info`` and ``mvcodec decode`` with mutated ``.mvc`` files, for every registered codec.

::

    seed file (one small valid file per available codec, made once per module)
      --mutation (hypothesis)--> bytes --> tmp.mvc --> main(["info", ...]), main(["decode", ...]) and
                                                        main(["decode", ..., "--skip-damaged"])
      every input ends in exit 0 (a clean decode) or exit 2 with exactly one stderr line and no traceback;
      no uncaught exception, no hang (SIGALRM per input), no memory blow-up (peak RSS growth per input)

Mutations are of two kinds.  *Raw*: bit flips, truncation, inserted bytes, an integer field anywhere set to an
extreme value.  *Structured*: the file is parsed into header fields and packets, damaged (header fields set to
extreme values, packets duplicated, dropped, reordered, index entries changed, payloads garbled) and written
back with every CRC and the index recomputed, so the damage reaches the codec's own decoder (ffmpeg, or
mv-mginr's weights unpacking) instead of stopping at a CRC check.

Budget: ``MVCODEC_FUZZ_EXAMPLES`` examples per codec and kind (default small, derandomized: the same inputs on
every CI run); set it higher for a long run by hand (inputs are then random), or run benchmarks/fuzz_mvc.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import synthetic_clip
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mvcodec.api import encode_file
from mvcodec.bitstream import GLOBAL_VIEW, HEADER_FIELDS, MvcReader, PacketEntry
from mvcodec.bitstream.container import file_preamble, file_trailer
from mvcodec.bitstream.index import SHORT_PACKET, packet_checksum
from mvcodec.cli.main import main
from mvcodec.codecs import EncodeSettings, codec_ids, get_codec

EXAMPLES = int(os.environ.get("MVCODEC_FUZZ_EXAMPLES", "6"))
LONG_RUN = "MVCODEC_FUZZ_EXAMPLES" in os.environ
INPUT_TIMEOUT_S = 60          # per input (info + decode); ffmpeg has its own, shorter, timeout
RSS_GROWTH_LIMIT_MB = 400     # peak RSS may not grow by more than this on one input

SEED_OPTIONS: dict[str, dict[str, Any]] = {"mv-mginr": dict(fit_epochs=2, qat_epochs=1), "mlvc": dict(ra_gop=2),
                                           "lmvc": dict(ra_gop=2)}
# the learned predictive codecs' seeds are random access (per period of 4: I, P, B, P), so mutated packet kinds
# reach the B-picture paths (lmvc: and the dependent views')
SEED_STRUCTURE: dict[str, tuple[str, int]] = {"mlvc": ("ra", 4), "lmvc": ("ra", 4)}
SEED_QUALITY: dict[str, float] = {"mv-mginr": 1, "svtav1": 43, "mvc-intra": 2, "mlvc": 2, "lmvc": 2}
EXTREME_U32 = (0, 1, 0xFFFF, 10 ** 5, 10 ** 6 + 1, 10 ** 9, 0x7FFFFFFF, 0xFFFFFFFF)
EXTREME_U16 = (0, 1, 2, 255, 257, 0xFFFE, 0xFFFF)


# --------------------------------------------------------------------------------------------- the file model


@dataclass
class Packet:
    view: int
    kind: int
    first_frame: int
    frame_count: int
    payload: bytes


@dataclass
class ParsedMvc:
    """A ``.mvc`` file as editable parts; :meth:`build` writes it back with correct lengths, CRCs and index."""

    major: int
    minor: int
    fields: dict[str, Any]
    packets: list[Packet]
    entry_overrides: dict[int, dict[str, int]] = field(default_factory=dict)  # index entry i: field -> value

    @classmethod
    def parse(cls, path: Path) -> "ParsedMvc":
        with MvcReader(path) as r:
            packets = [Packet(e.view, e.kind, e.first_frame, e.frame_count, r.read_packet(e)) for e in r.entries]
            h = r.header
            values = {f.name: getattr(h, f.name) for f in HEADER_FIELDS}
            return cls(*r.version, values, packets)

    def header_bytes(self) -> bytes:
        out = bytearray()
        for f in HEADER_FIELDS:
            v = self.fields[f.name]
            if f.type == "u16":
                out += struct.pack("<H", v & 0xFFFF)
            elif f.type == "u32":
                out += struct.pack("<I", v & 0xFFFFFFFF)
            else:
                text = v if f.type == "str" else json.dumps(v, sort_keys=True, separators=(",", ":"))
                data = text.encode() if isinstance(text, str) else text
                out += struct.pack("<I", len(data)) + data
        return bytes(out)

    def build(self) -> bytes:
        """The file in format 2 (whatever ``major`` says), every checksum recomputed, the overrides applied."""
        out = bytearray(file_preamble(self.header_bytes(), self.major, self.minor))
        entries = []
        for i, p in enumerate(self.packets):
            e = dict(view=p.view, kind=p.kind, first_frame=p.first_frame, frame_count=p.frame_count,
                     offset=len(out), length=len(p.payload), crc=packet_checksum(p.payload))
            e.update(self.entry_overrides.get(i, {}))
            e["crc"] &= 0xFFFF if e["length"] <= SHORT_PACKET else 0xFFFFFFFF
            entries.append(PacketEntry(**{k: v & (0xFFFF if k == "view" else 0xFF if k == "kind" else 2 ** 64 - 1)
                                          for k, v in e.items()}))
            out += p.payload
        return bytes(out + file_trailer(entries))


# --------------------------------------------------------------------------------------------- mutations


def raw_mutation() -> st.SearchStrategy[Callable[[bytes], bytes]]:
    """Byte-level damage; most of it is caught by the container's CRCs and limits."""
    flips = st.lists(st.tuples(st.integers(0, 10 ** 7), st.integers(0, 7)), min_size=1, max_size=8).map(
        lambda fl: ("flip", fl))
    trunc = st.integers(0, 10 ** 7).map(lambda n: ("truncate", n))
    insert = st.tuples(st.integers(0, 10 ** 7), st.binary(min_size=1, max_size=64)).map(lambda a: ("insert", a))
    extreme = st.tuples(st.integers(0, 10 ** 7), st.sampled_from(("<I", "<H", "<Q")),
                        st.sampled_from(EXTREME_U32)).map(lambda a: ("extreme", a))

    def apply(op: tuple[str, Any]) -> Callable[[bytes], bytes]:
        def mutate(data: bytes) -> bytes:
            kind, arg = op
            b = bytearray(data)
            if kind == "flip":
                for pos, bit in arg:
                    b[pos % len(b)] ^= 1 << bit
            elif kind == "truncate":
                del b[arg % len(b):]
            elif kind == "insert":
                pos, chunk = arg
                b[pos % (len(b) + 1):pos % (len(b) + 1)] = chunk
            else:
                pos, fmt, value = arg
                size = struct.calcsize(fmt)
                pos = pos % max(1, len(b) - size)
                b[pos:pos + size] = struct.pack(fmt, value & (256 ** size - 1))
            return bytes(b)
        mutate.__doc__ = repr(op)
        return mutate

    return st.one_of(flips, trunc, insert, extreme).map(apply)


def _garble(payload: bytes, draw: Callable) -> bytes:
    how = draw(st.sampled_from(("flip", "truncate", "zero", "random", "append", "swap-halves", "empty")))
    b = bytearray(payload)
    if how == "flip" and b:
        for _ in range(draw(st.integers(1, 16))):
            pos = draw(st.integers(0, len(b) - 1))
            b[pos] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        del b[draw(st.integers(0, max(0, len(b) - 1))):]
    elif how == "zero" and b:
        start = draw(st.integers(0, len(b) - 1))
        stop = min(len(b), start + draw(st.integers(1, 256)))
        b[start:stop] = bytes(stop - start)
    elif how == "random":
        b = bytearray(draw(st.binary(min_size=0, max_size=512)))
    elif how == "append":
        b += draw(st.binary(min_size=1, max_size=64))
    elif how == "swap-halves":
        b = b[len(b) // 2:] + b[:len(b) // 2]
    elif how == "empty":
        b = bytearray()
    return bytes(b)


ARCH_EXTREMES = {"grid_side": (1, 256, 0, 10 ** 9), "grid_channels": (1, 1024, 10 ** 6), "local_channels": (1, 256),
                 "width": (1, 1024), "min_width": (1, 1024), "coarse_stride": (1, 10 ** 6, 0),
                 "time_view_grids": (False, 0, "x"), "local_grid": (False,), "grid_embedding": (False,)}
CONFIG_EXTREMES = {"decoder": ("hevc", "h264", "libdav1d", "vvc", "rawvideo", "../x"),
                   "container": ("hevc", "h264", "obu", "vvc", "image2", "concat"),
                   "bit_depth": (8, 10, 16, "8"), "pad_multiple": (1, 2, 64, 0, 10 ** 6),
                   "pad_minimum": (0, 16, 4096, 10 ** 6)}


@st.composite
def structured_mutation(draw: Callable, parsed: ParsedMvc) -> tuple[str, bytes]:
    """Damage that keeps (or deliberately breaks) the container's CRCs; returns (description, file bytes)."""
    m = ParsedMvc(parsed.major, parsed.minor, json.loads(json.dumps(parsed.fields)),
                  [Packet(**vars(p)) for p in parsed.packets])
    done = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("header-int", "config", "arch", "garble", "duplicate", "drop", "reorder",
                                   "entry-field", "repoint", "names", "version")))
        n = len(m.packets)
        if op == "header-int":
            name = draw(st.sampled_from([f.name for f in HEADER_FIELDS if f.type in ("u16", "u32")]))
            value = draw(st.sampled_from(EXTREME_U16 if name == "views" else EXTREME_U32 + (2, 3, 4, 5, 7)))
            m.fields[name] = value
            if name == "views" and value <= 300 and draw(st.booleans()):   # keep the header self-consistent
                m.fields["view_names"] = [f"v{i}" for i in range(value)]
            done.append(f"header {name}={value}")
        elif op == "config":
            key = draw(st.sampled_from(sorted(set(m.fields["codec_config"]) | set(CONFIG_EXTREMES))))
            value = draw(st.sampled_from(CONFIG_EXTREMES.get(key, (None, -1, 10 ** 9, "x", [], {}))))
            m.fields["codec_config"][key] = value
            done.append(f"codec_config {key}={value!r}")
        elif op == "arch":
            arch = m.fields["codec_config"].get("arch")
            if isinstance(arch, dict):
                key = draw(st.sampled_from(sorted(ARCH_EXTREMES)))
                arch[key] = draw(st.sampled_from(ARCH_EXTREMES[key]))
                done.append(f"arch {key}={arch[key]!r}")
            else:
                m.fields["codec_config"]["arch"] = draw(st.sampled_from(({}, [], None, {"width": 10 ** 9})))
                done.append("arch replaced")
        elif op == "garble" and n:
            i = draw(st.integers(0, n - 1))
            m.packets[i].payload = _garble(m.packets[i].payload, draw)
            done.append(f"garble packet {i} (valid CRC)")
        elif op == "duplicate" and n:
            i = draw(st.integers(0, n - 1))
            m.packets.insert(draw(st.integers(0, n)), Packet(**vars(m.packets[i])))
            done.append(f"duplicate packet {i}")
        elif op == "drop" and n:
            del m.packets[draw(st.integers(0, n - 1))]
            done.append("drop a packet")
        elif op == "reorder" and n > 1:
            m.packets = draw(st.permutations(m.packets))
            done.append("reorder packets")
        elif op == "entry-field" and n:
            i = draw(st.integers(0, n - 1))
            key = draw(st.sampled_from(("view", "kind", "first_frame", "frame_count", "length", "crc")))
            value = draw(st.sampled_from((0, 1, 2, 3, 255, GLOBAL_VIEW, 10 ** 9, 0xFFFFFFFF)))
            if key in ("view", "kind", "first_frame", "frame_count"):   # an index that agrees with itself
                setattr(m.packets[i], key, value & (0xFF if key == "kind" else 0xFFFFFFFF))
            else:                                                           # an index that lies
                m.entry_overrides[i] = {key: value}
            done.append(f"packet {i} {key}={value}")
        elif op == "repoint" and n > 1:
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            m.packets[i].payload = m.packets[j].payload     # another unit's stream under this (view, frames)
            done.append(f"payload of packet {j} in packet {i}")
        elif op == "names":
            m.fields["view_names"] = draw(st.sampled_from(([], ["a"] * 300, [1, 2], "x")))
            done.append("view_names")
        elif op == "version":
            m.major, m.minor = draw(st.sampled_from(((0, 0), (1, 0), (3, 0), (2, 99), (0xFFFF, 0xFFFF))))
            done.append(f"version {m.major}.{m.minor}")
    return "; ".join(done) or "none", m.build()


# --------------------------------------------------------------------------------------------- one input


class Hang(Exception):
    """An input that ran past INPUT_TIMEOUT_S."""


def _alarm(signum, frame):  # noqa: ANN001
    raise Hang(f"input ran past {INPUT_TIMEOUT_S} s")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_input(data: bytes, what: str) -> str | None:
    """Run ``info`` and ``decode`` on ``data``; None when both ended properly, else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="mvcfuzz-") as tmp:
        path = Path(tmp) / "in.mvc"
        path.write_bytes(data)
        for argv in (["info", str(path)], ["info", "--json", str(path)],
                     ["decode", str(path), "-o", str(Path(tmp) / "out")],
                     ["decode", str(path), "-o", str(Path(tmp) / "out-skip"), "--skip-damaged"]):
            before = _peak_rss_mb()
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(INPUT_TIMEOUT_S)
            out_buf, err_buf = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out_buf), contextlib.redirect_stderr(err_buf):
                    status = main(argv)
            except BaseException as exc:  # noqa: BLE001  (what the harness is looking for)
                return f"{argv[0]}: uncaught {type(exc).__name__}: {exc} [{what}]"
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)
            grew = _peak_rss_mb() - before
            err = err_buf.getvalue()
            if grew > RSS_GROWTH_LIMIT_MB:
                return f"{argv[0]}: peak RSS grew by {grew:.0f} MB [{what}]"
            if status not in (0, 2):
                return f"{argv[0]}: exit status {status} [{what}]: {err!r}"
            if status == 2:
                lines = err.strip().splitlines()
                if len(lines) != 1 or "Traceback" in err or not lines[0].startswith("mvcodec"):
                    return f"{argv[0]}: error output is not one line [{what}]: {err!r}"
            if argv[0] == "decode":
                outdir = Path(argv[3])
                if status == 0 and not (outdir / "meta.json").is_file():
                    return f"decode: exit 0 without a complete output [{what}]"
                if status == 2 and outdir.exists():
                    return f"decode: exit 2 left an output folder [{what}]"
    return None


# --------------------------------------------------------------------------------------------- seeds


def available_codecs() -> list[str]:
    return [c for c in codec_ids() if get_codec(c, **SEED_OPTIONS.get(c, {})).unavailable_reason() is None]


def make_seed(codec_id: str, folder: Path) -> Path:
    path = folder / f"{codec_id}.mvc"
    codec = get_codec(codec_id, **SEED_OPTIONS.get(codec_id, {}))
    clip = synthetic_clip(views=2, frames=4, height=16, width=24)
    structure, gop = SEED_STRUCTURE.get(codec_id, ("ld", 2))
    encode_file(clip, codec, EncodeSettings(SEED_QUALITY.get(codec_id, 32), structure, gop=gop), path)
    return path


ALL_CODECS = codec_ids()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    return {c: make_seed(c, folder) for c in available_codecs()}


def _seed(seeds: dict[str, Path], codec_id: str) -> Path:
    if codec_id not in seeds:
        pytest.skip(f"codec {codec_id} is unavailable here: "
                    f"{get_codec(codec_id, **SEED_OPTIONS.get(codec_id, {})).unavailable_reason()}")
    return seeds[codec_id]


FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG_RUN,
                         phases=(Phase.explicit, Phase.generate),  # no shrinking: each example runs ffmpeg
                         suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("codec_id", ALL_CODECS)
def test_fuzz_raw_bytes(seeds: dict[str, Path], codec_id: str) -> None:
    data = _seed(seeds, codec_id).read_bytes()

    @FUZZ_SETTINGS
    @given(raw_mutation())
    def run(mutate: Callable[[bytes], bytes]) -> None:
        problem = check_input(mutate(data), f"{codec_id} raw {mutate.__doc__}")
        assert problem is None, problem

    run()


@pytest.mark.parametrize("codec_id", ALL_CODECS)
def test_fuzz_structured(seeds: dict[str, Path], codec_id: str) -> None:
    parsed = ParsedMvc.parse(_seed(seeds, codec_id))

    @FUZZ_SETTINGS
    @given(structured_mutation(parsed))
    def run(case: tuple[str, bytes]) -> None:
        what, data = case
        problem = check_input(data, f"{codec_id} structured: {what}")
        assert problem is None, problem

    run()


def test_rebuilt_seed_is_identical(seeds: dict[str, Path]) -> None:
    """The structured mutator's writer reproduces a real file byte for byte (so its mutations are faithful)."""
    for path in seeds.values():
        assert ParsedMvc.parse(path).build() == path.read_bytes()
