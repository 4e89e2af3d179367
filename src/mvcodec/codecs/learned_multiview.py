"""``lmvc``: the learned multi-view codec (LMVC's structure with HDC's cross-view alignment): view 0 is an ``mlvc``
stream, every other view a dependent view coded with the decoded views of the same instant.

::

    encode (low delay, intra period G), time-major: for t, for v = 0 .. V-1 (camera order of the input)
      v = 0:  exactly mlvc: t % G == 0 -> intra picture (packet kind 0), else P picture (kind 1)
      v > 0:  side = InterViewRefs(view 0 at t, view v-1 at t)
              t % G == 0 -> inter-view key picture: a P picture of DependentViewModel whose reference is view
                            0's decoded picture at t (packet kind 2); stored without motion (starts the chain)
              else       -> P picture of DependentViewModel on the view's own references (kind 3)
    decode  frame t of view v needs frames G*floor(t/G) .. t of views 0 .. v (view v-1 is v's near view, and so
            on down to view 0), nothing else: packets are read per (view, frame) from the container's index.

Backward compatibility (LMVC): view 0's packets are those ``mlvc`` writes with the base weights, so
:func:`extract_base_view` copies them into an ``mlvc`` file that the single-view decoder reads alone.

Weights: option ``weights=ID`` (shipped, default ``lmvc-v1``) or ``weights_file=PATH``: a safetensors file of the
dependent-view model (task ``multiview``) whose metadata names its config and the SHA-256 of the ``mlvc``
weights it extends (found like any mlvc weights: the zoo, ``base_weights_file=PATH``, ``$MVCODEC_WEIGHTS``).
The header carries both hashes.  Structures: ``ld`` and ``intra`` (every view intra, as mlvc); random access
(hierarchical B pictures) is refused until the backbone has B pictures.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from safetensors.torch import load as load_safetensors

from mvcodec import zoo
from mvcodec.atomic import write_atomic
from mvcodec.bitstream import MvcReader, MvcWriter
from mvcodec.bitstream.header import MvcHeader
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.learned_inter import INTER_PACKET, INTRA_PACKET, MlvcCodec, MlvcWeights, state_sha256
from mvcodec.codecs.learned_weights import LearnedWeights, read_weights_bytes, to_tensor, to_uint8
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource
from mvcodec.metrics import MetricAccumulator
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter import InterModel
from mvcodec.models.intra import IntraModel
from mvcodec.models.multiview import DependentConfig, DependentViewModel, InterViewRefs, build_dependent
from mvcodec.train.checkpoint import weights_bytes

INTERVIEW_KEY_PACKET = 2
DEPENDENT_PACKET = 3
DEFAULT_WEIGHTS = "lmvc-v1"
_READ_CHUNK = 8  # frames of every view read at a time (time-major coding)


@dataclass(frozen=True)
class LmvcWeights:
    """The dependent-view model's weights and the hash of the mlvc weights they extend."""

    id: str
    sha256: str
    config: DependentConfig
    base_sha256: str
    state: dict[str, torch.Tensor]

    def model(self) -> DependentViewModel:
        model = build_dependent(self.config)
        try:
            model.load_state_dict(self.state, strict=True)
        except RuntimeError as exc:
            raise CodecError(f"weights {self.id}: tensors do not fit the config: {str(exc).splitlines()[0]}") \
                from None
        if model.entropy_bottleneck.table_lengths.numel() == 0:
            raise CodecError(f"weights {self.id} have no entropy-coding tables (run update())")
        return model.eval()


def lmvc_weights_bytes(model: DependentViewModel, base_sha256: str) -> bytes:
    """The dependent model (call ``update()`` first) as safetensors bytes, its config and base hash as metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"task": "multiview", "model_config": json.dumps(model.cfg.to_json()), "base_sha256": base_sha256}
    return weights_bytes(state, meta)


def save_lmvc_weights(model: DependentViewModel, base_sha256: str, path: str | os.PathLike) -> str:
    """Write :func:`lmvc_weights_bytes` atomically; returns the file's SHA-256."""
    import hashlib

    data = lmvc_weights_bytes(model, base_sha256)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def read_weights_file(path: str | os.PathLike) -> LmvcWeights:
    """Weights from a file of :func:`save_lmvc_weights` (parsed with safetensors and json only: nothing runs)."""
    path = Path(path)
    data, sha256, meta = read_weights_bytes(path)
    try:
        config = DependentConfig.from_json(meta.get("model_config", "null"))
        base = meta["base_sha256"]
        state = load_safetensors(data)
    except (ValueError, KeyError, InputError) as exc:
        raise CodecError(f"weights file {path} is not a safetensors file of the lmvc dependent model ({exc})") \
            from None
    return LmvcWeights(f"file:{path.name}", sha256, config, base, state)


def zoo_weights(weights_id: str) -> LmvcWeights:
    """Shipped weights ``weights_id``; the entry's config is {"dependent": .., "base_sha256": ..}."""
    entry, state = zoo.load_state(weights_id)
    try:
        config = DependentConfig.from_json(entry.config.get("dependent"))
        base = str(entry.config["base_sha256"])
    except (InputError, AttributeError, KeyError) as exc:
        raise CodecError(f"shipped weights {weights_id}: {exc}") from None
    return LmvcWeights(weights_id, entry.sha256, config, base, state)


@register
class LmvcCodec(LearnedWeights[LmvcWeights], Codec):
    """The learned multi-view codec behind the codec interface (module docstring)."""

    id = "lmvc"
    description = "learned multi-view codec: view 0 = mlvc, dependent views with LMVC inter-view priors + HDC"
    default_qualities = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
    quality_help = "rung of the gain ladder 0..Q-1 (Q = 6 by default); higher = more bits, better"
    options_help = (f"weights=ID (shipped, default {DEFAULT_WEIGHTS}), weights_file=PATH (.safetensors), "
                    "base_weights_file=PATH (the mlvc weights it extends, when not shipped)")
    lossy_higher_quality_is = "higher"
    default_weights = DEFAULT_WEIGHTS
    weights_task = "multiview"
    extra_options = ("base_weights_file",)

    def __init__(self, **options: Any) -> None:
        self.check_weights_options(options)
        super().__init__(**options)
        base_file = options.get("base_weights_file")
        self._base = MlvcCodec(**({"weights_file": base_file} if base_file else {}))
        self._models: dict[str, DependentViewModel] = {}

    # ------------------------------------------------------------------------------------------ weights
    def read_weights_file(self, path: str | os.PathLike) -> LmvcWeights:
        return read_weights_file(path)

    def zoo_weights(self, weights_id: str) -> LmvcWeights:
        return zoo_weights(weights_id)

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is None:
            try:
                self.base_weights(self.weights().base_sha256)
            except BitstreamError as exc:
                reason = f"the mlvc weights of view 0: {exc}"
        return reason

    def base_weights(self, sha256: str) -> MlvcWeights:
        """The mlvc weights with ``sha256`` (zoo, ``base_weights_file``, ``$MVCODEC_WEIGHTS``)."""
        return self._base.weights_with_sha256(sha256)

    def check_decodable(self, header: MvcHeader) -> None:
        """Both weights the file needs are at hand: the dependent model's and the base's (header hashes)."""
        self.decoder_weights(header)
        self.base_weights(str(header.codec_config.get("base_sha256", "")))

    def models(self, weights: LmvcWeights, base: MlvcWeights) -> tuple[IntraModel, InterModel, DependentViewModel]:
        intra, inter = self._base.models(base)
        if weights.sha256 not in self._models:
            model = weights.model()
            if model.cfg.inter() != inter.cfg:
                raise CodecError(f"weights {weights.id} extend an mlvc model of another config than {base.id}")
            self._models[weights.sha256] = model
        return intra, inter, self._models[weights.sha256]

    # ------------------------------------------------------------------------------------------ encode
    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        w = self.weights()
        base = self.base_weights(w.base_sha256)
        return {**self._base_config(base, self._base.rung(settings.quality, base)),
                "base_sha256": base.sha256, "dependent": w.config.to_json(), "weights": w.id,
                "dependent_sha256": state_sha256(w.state)}

    def _base_config(self, base: MlvcWeights, quality: int) -> dict[str, Any]:
        """The header config an mlvc file of these base weights has (for :func:`extract_base_view`)."""
        return {"quality": quality, "intra": base.intra_config.to_json(), "inter": base.inter_config.to_json(),
                "weights": base.id, "intra_sha256": state_sha256(base.part("intra.")),
                "inter_sha256": state_sha256(base.part("inter."))}

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        if settings.structure == "ra":
            raise InputError("codec lmvc codes low delay (structure ld) or all intra; random access (hierarchical "
                             "B pictures) is not implemented yet")
        weights = self.weights()
        base = self.base_weights(weights.base_sha256)
        models = self.models(weights, base)
        q = self._base.rung(settings.quality, base)
        gop = 1 if settings.structure == "intra" else settings.gop
        info = source.info
        acc = MetricAccumulator(ms_ssim=False)
        est: dict[int, float] = {}
        real: dict[int, int] = {}
        dpb = DecodedPictureBuffer(models[1].cfg.references + 1)
        for start in range(0, info.frames, _READ_CHUNK):
            stop = min(start + _READ_CHUNK, info.frames)
            chunk = [source.read_frames(v, start, stop) for v in range(info.views)]
            for t in range(start, stop):
                for v in range(info.views):
                    frame = chunk[v][t - start]
                    payload, x_hat, kind, bits = self._code_picture(models, dpb, v, t, gop, q, to_tensor(frame))
                    writer.write_packet(v, t, 1, payload, kind)
                    acc.add(v, frame, to_uint8(x_hat))
                    est[kind] = est.get(kind, 0.0) + bits
                    real[kind] = real.get(kind, 0) + 8 * len(payload)
        measured = acc.result()
        names = {INTRA_PACKET: "intra", INTER_PACKET: "inter", INTERVIEW_KEY_PACKET: "interview_key",
                 DEPENDENT_PACKET: "dependent"}
        return {"weights": weights.id, "base_weights": base.id, "estimated_bits": sum(est.values()),
                "real_bits": sum(real.values()),
                **{f"real_bits_{names[k]}": b for k, b in sorted(real.items())},
                **{f"estimated_bits_{names[k]}": b for k, b in sorted(est.items())},
                "psnr_rgb_encoder": measured.psnr_rgb,
                "psnr_rgb_encoder_per_view": list(measured.per_view_psnr_rgb)}

    def _code_picture(self, models: tuple[IntraModel, InterModel, DependentViewModel], dpb: DecodedPictureBuffer,
                      v: int, t: int, gop: int, q: int, x: torch.Tensor,
                      ) -> tuple[bytes, torch.Tensor, int, float]:
        """Code picture (v, t) (module docstring); returns (payload, x_hat, packet kind, estimated bits)."""
        intra, inter, dep = models
        key = t % gop == 0
        if gop == 1 or v == 0:
            if key:
                coded = intra.encode(x, q)
                dpb.clear(v)
                dpb.put(v, t, InterModel.reference(coded.x_hat))
                return coded.payload, coded.x_hat, INTRA_PACKET, coded.estimated_bits
            payload, x_hat = inter.compress(x, dpb, v, t, q)
            return payload, x_hat, INTER_PACKET, inter.last_estimated_bits
        side, refs = self._dependent_inputs(dpb, v, t, key)
        payload, x_hat = dep.compress(x, dpb, v, t, q, refs=refs, side=side)
        if key:
            _start_chain(dpb, v, t)
        return payload, x_hat, INTERVIEW_KEY_PACKET if key else DEPENDENT_PACKET, dep.last_estimated_bits

    @staticmethod
    def _dependent_inputs(dpb: DecodedPictureBuffer, v: int, t: int,
                          key: bool) -> tuple[InterViewRefs, list[DecodedPicture] | None]:
        if key:
            dpb.clear(v)
        base = dpb.get(0, t)
        side = InterViewRefs(base, dpb.get(v - 1, t))
        return side, ([DecodedPicture(base.frame, base.feature, None, base.latents)] if key else None)

    # ------------------------------------------------------------------------------------------ decode
    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Frame t of view v needs frames G*floor(t/G) .. t of views 0 .. v (module docstring)."""
        h = reader.header
        if h.codec_id != self.id:
            raise BitstreamError(f"file was made by codec {h.codec_id!r}, not {self.id!r}")
        weights = self.decoder_weights(h)
        cfg = h.codec_config
        base_sha = cfg.get("base_sha256")
        if base_sha != weights.base_sha256:
            raise BitstreamError(f"lmvc header's base weights {str(base_sha)[:16]} are not those weights "
                                 f"{weights.id} extend")
        try:
            dependent = DependentConfig.from_json(cfg.get("dependent"))
        except InputError as exc:
            raise BitstreamError(f"lmvc header: {exc}") from None
        if dependent != weights.config:
            raise BitstreamError(f"lmvc header's dependent config is not that of weights {weights.id}")
        base = self.base_weights(base_sha)
        models = self.models(weights, base)
        quality = cfg.get("quality")
        top = min(base.intra_config.qualities, base.inter_config.qualities)
        if not isinstance(quality, int) or not 0 <= quality < top:
            raise BitstreamError(f"lmvc header has quality {quality!r}, not a rung in 0..{top - 1}")
        gop = 1 if h.structure == "intra" else h.gop
        needed = range(0, max(views) + 1) if gop > 1 else None
        for period in range(frames.start - frames.start % gop, frames.stop, gop):
            wanted = range(max(frames.start, period), min(frames.stop, period + gop))
            yield from self._decode_period(reader, models, needed, views, period, wanted, quality, skip_damaged)

    def _decode_period(self, reader: MvcReader, models: tuple[IntraModel, InterModel, DependentViewModel],
                       needed: range | None, views: Sequence[int], period: int, wanted: range, quality: int,
                       skip_damaged: bool) -> Iterator[DecodedFrame | Skipped]:
        """Decode frames ``period .. wanted.stop - 1`` of the views needed (time-major); yield those of ``views``
        in ``wanted``, view by view.  A damaged packet of view u at t costs frames t.. of the period of views
        u and above (they depend on it), not of the views below."""
        h = reader.header
        gop = 1 if h.structure == "intra" else h.gop
        dpb = DecodedPictureBuffer(models[1].cfg.references + 1)
        decoded: dict[tuple[int, int], torch.Tensor] = {}
        lost: dict[int, tuple[int, str]] = {}  # view -> (first frame lost, why)
        order = list(needed) if needed is not None else list(views)
        for t in range(period, wanted.stop):
            for v in order:
                if v in lost:
                    continue
                key = t % gop == 0
                kind = (INTRA_PACKET if key else INTER_PACKET) if v == 0 or gop == 1 else \
                    (INTERVIEW_KEY_PACKET if key else DEPENDENT_PACKET)
                try:
                    entries = reader.select(view=v, frames=range(t, t + 1), kind=kind)
                    if len(entries) != 1:
                        raise BitstreamError(f"{reader.path}: {len(entries)} packets of kind {kind} for view {v} "
                                             f"frame {t} (expected 1)")
                    x_hat = self._decode_picture(models, dpb, reader.read_packet(entries[0]), kind, v, t, quality, h)
                except BitstreamError as exc:
                    if not skip_damaged:
                        raise
                    for u in order:
                        if (u >= v if needed is not None else u == v) and u not in lost:
                            lost[u] = (t, str(exc))
                    continue
                if v in views and t in wanted:
                    decoded[(v, t)] = to_uint8(x_hat)
        for v in views:
            yield from (DecodedFrame(v, t, decoded[(v, t)]) for t in wanted if (v, t) in decoded)
            if v in lost:
                first, why = lost[v]
                gone = range(max(first, wanted.start), wanted.stop)
                if len(gone):
                    yield Skipped(v, gone, f"{why} (frames {gone.start}:{gone.stop} of view {v} depend on it)")

    def _decode_picture(self, models: tuple[IntraModel, InterModel, DependentViewModel], dpb: DecodedPictureBuffer,
                        payload: bytes, kind: int, v: int, t: int, quality: int, h: MvcHeader) -> torch.Tensor:
        intra, inter, dep = models
        if kind == INTRA_PACKET:
            dpb.clear(v)
            x_hat = intra.decompress(payload, h.height, h.width, quality)
            dpb.put(v, t, InterModel.reference(x_hat))
            return x_hat
        if kind == INTER_PACKET:
            return inter.decompress(payload, dpb, v, t, h.height, h.width, quality)
        key = kind == INTERVIEW_KEY_PACKET
        side, refs = self._dependent_inputs(dpb, v, t, key)
        x_hat = dep.decompress(payload, dpb, v, t, h.height, h.width, quality, refs=refs, side=side)
        if key:
            _start_chain(dpb, v, t)
        return x_hat


def _start_chain(dpb: DecodedPictureBuffer, v: int, t: int) -> None:
    """Store an inter-view key picture without its motion (a disparity field): the view's temporal reference
    chain starts there, as after an intra picture."""
    p = dpb.get(v, t)
    dpb.put(v, t, DecodedPicture(p.frame, p.feature, None, p.latents))


def extract_base_view(src: str | os.PathLike, dst: str | os.PathLike, codec: LmvcCodec | None = None) -> int:
    """Copy view 0 of an ``lmvc`` file into a one-view ``mlvc`` file (LMVC's backward compatibility): the
    header of the base weights and view 0's packets, unchanged.  Returns the number of packets copied."""
    codec = codec or LmvcCodec()
    with MvcReader(src) as reader:
        h = reader.header
        if h.codec_id != LmvcCodec.id:
            raise InputError(f"{src}: made by codec {h.codec_id!r}, not lmvc")
        base = codec.base_weights(str(h.codec_config.get("base_sha256", "")))
        header = MvcHeader(MlvcCodec.id, 1, h.frames, h.width, h.height, h.fps_num, h.fps_den, h.structure, h.gop,
                           codec._base_config(base, int(h.codec_config["quality"])), base.sha256,
                           h.view_names[:1], h.cameras[:1] if h.cameras else None)
        entries = reader.select(view=0)
        with MvcWriter(dst, header) as writer:
            for e in entries:
                writer.write_packet(0, e.first_frame, e.frame_count, reader.read_packet(e), e.kind)
    return len(entries)
