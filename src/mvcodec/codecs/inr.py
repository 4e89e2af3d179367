"""``mv-mginr``: MV-MGINR, the multi-grid implicit neural representation codec (arXiv 2509.16706).

::

    encode  source (V, T, H, W, 3) --fit (train.inr_fit): Adam, motion-aware loss, prune 40 %, 8-bit QAT-->
            network weights --CodedWeights: q, scales, masks--> pack_weights (CategoricalModel streams)
            --> one GLOBAL_VIEW packet (kind 1, frames 0:T)
            CodedWeights.state_dict() --load into a fresh network--> render_frames (the decoder's own path)
            --> the reconstruction the encoder reports (PSNR-RGB), bit-identical to decoding the file

    decode  header codec_config["arch"] + (V, T, H, W) --inr_config--> network
            weights packet --unpack_weights--> dequantize_tensor --> load --> render only the requested
            (view, frame) pairs, one forward pass each (full random access; no prediction structure)

There is no coding structure: ``structure`` and ``gop`` are recorded in the header but change nothing.

Quality ladder (higher = more bits; ``default_qualities`` lists them cheapest first).  c = time/view grid channels,
c' = time-and-view grid channels (about c/10), width = channels of the first synthesis block (later blocks
2*width/(i+2), at least min_width); the latent has about ``grid_side`` cells on the frame's shorter side:

    quality | grid_side |  c | c' | width | min_width
    --------+-----------+----+----+-------+----------
       1    |     9     | 16 |  2 |   24  |    12
       2    |     9     | 24 |  3 |   32  |    16
       3    |     9     | 32 |  4 |   48  |    16
       4    |     9     | 40 |  4 |   64  |    24
       5    |     9     | 48 |  5 |   96  |    32

Options (``get_codec("mv-mginr", **options)``): ``preset`` fast|medium|slow (fitting epochs, see
:data:`~mvcodec.train.inr_fit.PRESETS`; default fast), ``device`` cpu|cuda, ``checkpoint`` (folder) and
``resume`` (bool), ``fit_epochs`` / ``qat_epochs`` (override the preset), ``sparsity`` (0.4), ``seed``,
``progress`` (bool), ``precision`` auto|fp32|bf16 (the fitting phase's arithmetic; auto = bf16 where the
hardware has it, see :mod:`mvcodec.train.inr_fit`; decoding is always float32), ``fp32_epochs`` (the last QAT
epochs, run in float32 whatever the precision; 2 / 10 / 20 by preset); ablations
``time_view_grids``, ``local_grid``, ``grid_embedding`` (written to the header)
and ``motion_mask`` (encoder only).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from mvcodec.bitstream import GLOBAL_VIEW, MvcReader, MvcWriter
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.inr_payload import CodedWeights, estimate_bits, pack_weights, unpack_weights
from mvcodec.errors import BitstreamError, InputError
from mvcodec.io.clip import ClipSource
from mvcodec.metrics import MetricAccumulator
from mvcodec.models.inr import InrArch, InrConfig, MvMgInr, build_inr, inr_config, render_frames

WEIGHTS_PACKET = 1

QUALITY_LADDER: dict[int, InrArch] = {
    1: InrArch(grid_side=9, grid_channels=16, local_channels=2, width=24, min_width=12),
    2: InrArch(grid_side=9, grid_channels=24, local_channels=3, width=32, min_width=16),
    3: InrArch(grid_side=9, grid_channels=32, local_channels=4, width=48, min_width=16),
    4: InrArch(grid_side=9, grid_channels=40, local_channels=4, width=64, min_width=24),
    5: InrArch(grid_side=9, grid_channels=48, local_channels=5, width=96, min_width=32),
}

_OPTION_TYPES: dict[str, type] = {
    "preset": str, "device": str, "checkpoint": str, "resume": bool, "fit_epochs": int, "qat_epochs": int,
    "fp32_epochs": int, "sparsity": float, "seed": int, "progress": bool, "time_view_grids": bool, "local_grid": bool,
    "grid_embedding": bool, "motion_mask": bool, "precision": str}
_OPTIONS = set(_OPTION_TYPES)


def _coerce(name: str, value: Any) -> Any:
    """An option value as its type; strings (``-O key=value`` on the command line) are parsed."""
    typ = _OPTION_TYPES[name]
    if typ is bool and isinstance(value, str):
        if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise InputError(f"option {name} takes true or false, got {value!r}")
        return value.lower() in ("1", "true", "yes", "on")
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise InputError(f"option {name} takes a {typ.__name__}, got {value!r}") from None


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic torch algorithms for the duration (restored afterwards)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


@register
class MvMgInrCodec(Codec):
    """MV-MGINR behind the codec interface (module docstring: diagram, ladder, options)."""

    id = "mv-mginr"
    description = "MV-MGINR multi-grid implicit neural representation (the bitstream is the fitted network)"
    default_qualities = (1.0, 2.0, 3.0, 4.0, 5.0)  # cheapest first: the registry test fits rung 1
    quality_help = "rung of the size ladder 1..5 (grid channels and synthesis widths); higher = better"
    lossy_higher_quality_is = "higher"
    resumable = True
    options_help = ("preset=fast|medium|slow, device=cpu|cuda, precision=auto|fp32|bf16, fit_epochs=N, "
                    "qat_epochs=N, fp32_epochs=N, sparsity=F, seed=N; "
                    "ablations time_view_grids=, local_grid=, grid_embedding=, motion_mask=false")
    uses_structure = False

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - _OPTIONS
        if unknown:
            raise InputError(f"codec mv-mginr has no option(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(_OPTIONS))})")
        options = {k: _coerce(k, v) for k, v in options.items()}
        super().__init__(**options)
        from mvcodec.train.inr_fit import PRESETS  # the decoder never needs the training code
        from mvcodec.train.precision import PRECISIONS
        preset = options.get("preset", "fast")
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r} for mv-mginr (choose from {', '.join(PRESETS)})")
        sched = PRESETS[preset]
        overrides = {k: options[k] for k in ("fit_epochs", "qat_epochs", "fp32_epochs", "sparsity", "seed",
                                             "motion_mask", "precision") if k in options}
        self.schedule = replace(sched, **overrides)
        if self.schedule.precision not in PRECISIONS:
            raise InputError(f"mv-mginr: precision must be auto, fp32 or bf16, got {self.schedule.precision!r}")
        if (min(self.schedule.fit_epochs, self.schedule.qat_epochs, self.schedule.fp32_epochs) < 0
                or not 0 <= self.schedule.sparsity < 1):
            raise InputError(f"mv-mginr: epochs must be >= 0 and sparsity in [0, 1): {self.schedule}")
        self.preset = preset
        self.device = str(options.get("device", "cpu"))
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"device must be cpu or cuda, got {self.device!r}")

    def requirements(self) -> str:
        return "nothing beyond the package (torch); --device cuda needs a CUDA build of torch"

    def arch(self, settings: EncodeSettings) -> InrArch:
        q = settings.quality
        if q != int(q) or int(q) not in QUALITY_LADDER:
            raise InputError(f"codec mv-mginr takes a quality rung in 1..{len(QUALITY_LADDER)}, got {q}")
        flags = {k: bool(self.options[k]) for k in ("time_view_grids", "local_grid", "grid_embedding")
                 if k in self.options}
        try:
            return replace(QUALITY_LADDER[int(q)], **flags)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        return {"quality": settings.quality, "arch": self.arch(settings).to_json(), "preset": self.preset}

    # ------------------------------------------------------------------------------------- encode

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        from mvcodec.train.inr_fit import fit
        from mvcodec.train.precision import use_bf16
        info = source.info
        frames = np.stack([source.read_frames(v, 0, info.frames) for v in range(info.views)])
        cfg = inr_config(self.arch(settings), info.views, info.frames, info.height, info.width)
        model = build_inr(cfg, self.schedule.seed)
        result = fit(model, frames, self.schedule, self.device, self.options.get("checkpoint"),
                     bool(self.options.get("resume", False)), bool(self.options.get("progress", False)))
        coded = CodedWeights.from_params(dict(model.named_parameters()), result.masks)
        payload = pack_weights(coded)
        writer.write_packet(GLOBAL_VIEW, 0, info.frames, payload, WEIGHTS_PACKET)
        # the reported reconstruction comes from the decoder's own path on the decoded packet
        decoded = unpack_weights(payload, _shapes(model))
        recon = decoder_network(cfg, decoded)
        pairs = [(v, t) for v in range(info.views) for t in range(info.frames)]
        with deterministic():
            pictures = render_frames(recon, pairs).reshape(frames.shape)
        self.last_reconstruction = pictures  # (V, T, H, W, 3) uint8, for tests and tools
        acc = MetricAccumulator(ms_ssim=False)  # the very metric code `measure_file` uses: same PSNR digits
        for v in range(info.views):
            acc.add_frames(v, frames[v], pictures[v])
        measured = acc.result()
        per_view = list(measured.per_view_psnr_rgb)
        est = estimate_bits(coded)
        kept = sum(int(m.sum()) for m in result.masks.values())
        total = sum(m.numel() for m in result.masks.values())
        return {"preset": self.preset, "fit_epochs": self.schedule.fit_epochs, "qat_epochs": self.schedule.qat_epochs,
                "fp32_epochs": self.schedule.fp32_epochs,
                "fit_seconds": result.seconds, "fit_psnr": result.psnr,
                "fit_precision": "bf16" if use_bf16(self.schedule.precision, self.device) else "fp32",
                "resumed_from_epoch": result.start_epoch,
                "parameters": cfg.parameter_count(), "sparsity": 1 - kept / max(1, total),
                "estimated_bits": est["total_bits"], "estimated_symbol_bits": est["symbol_bits"],
                "huffman_symbol_bits": est["huffman_symbol_bits"],
                "real_bits": 8 * len(payload), "psnr_rgb_encoder": measured.psnr_rgb,
                "psnr_rgb_encoder_per_view": per_view,
                "reconstruction_sha256": hashlib.sha256(pictures.tobytes()).hexdigest()}

    # ------------------------------------------------------------------------------------- decode

    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Every frame depends on the one weights packet: if it is damaged, nothing decodes (with
        ``skip_damaged``: one :class:`Skipped` per view covering all of ``frames``)."""
        h = reader.header
        if h.codec_id != self.id:
            raise BitstreamError(f"file was made by codec {h.codec_id!r}, not {self.id!r}")
        arch = InrArch.from_json(h.codec_config.get("arch"))
        cfg = inr_config(arch, h.views, h.frames, h.height, h.width)
        check_render_size(cfg)
        entries = reader.select(view=GLOBAL_VIEW, kind=WEIGHTS_PACKET)
        if len(entries) != 1:
            raise BitstreamError(f"mv-mginr file has {len(entries)} weights packets (expected 1)")
        shapes = _cfg_shapes(cfg)
        try:
            model = decoder_network(cfg, unpack_weights(reader.read_packet(entries[0]), shapes))
        except BitstreamError as exc:
            if not skip_damaged:
                raise
            for v in views:
                yield Skipped(v, frames, f"{exc} (every frame depends on the weights packet)")
            return
        for v in views:
            for t in frames:
                with deterministic():
                    picture = render_frames(model, [(v, t)])[0]
                yield DecodedFrame(v, t, picture)


# Rendering one frame holds a few activation tensors at the block's output size; a header whose picture would
# need more than this is refused before the network is built (a 16384 x 16384 header would need ~60 GiB).
MAX_RENDER_BYTES = 8 << 30


def render_bytes(cfg: InrConfig) -> int:
    """Estimated peak bytes of activations to render one frame: per block about four float32 tensors of its
    output (convolution before the pixel shuffle, shuffle, activation, up-sampled grid embedding) plus the
    input."""
    h, w = cfg.grid_h, cfg.grid_w
    peak, c_in = 0, cfg.latent_channels
    for s, c in zip(cfg.scales, cfg.widths):
        h, w = h * s, w * s
        peak = max(peak, 4 * h * w * (4 * c + c_in // (s * s) + 3))
        c_in = c
    return peak


def check_render_size(cfg: InrConfig) -> None:
    need = render_bytes(cfg)
    if need > MAX_RENDER_BYTES:
        raise BitstreamError(f"mv-mginr: rendering a {cfg.width}x{cfg.height} picture would need about "
                             f"{need / 2**30:.1f} GiB (at most {MAX_RENDER_BYTES / 2**30:.0f} GiB)")


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def _cfg_shapes(cfg: InrConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return _shapes(MvMgInr(cfg))


def decoder_network(cfg: InrConfig, coded: CodedWeights) -> MvMgInr:
    """The decoder's network: built from ``cfg`` and loaded with the dequantized weights (CPU, eval mode)."""
    with torch.device("meta"):
        model = MvMgInr(cfg)
    model = model.to_empty(device="cpu")
    model.load_state_dict(coded.state_dict(), strict=True)
    return model.eval()
