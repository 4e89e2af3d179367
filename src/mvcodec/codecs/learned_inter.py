"""``mlvc``: the learned single-view inter codec (DCVC-TCM conditional coding with M-LVC's multiple references),
each view coded on its own (simulcast), low-delay P with an intra period.

::

    encode  per view v, frames t = 0 .. T-1, intra period G (EncodeSettings.gop):
              t % G == 0:  IntraModel.encode(x_t, q) --> packet (v, t, kind 0);  dpb.clear(v)
                           dpb.put(v, t, reference(x_hat))
              else:        InterModel.compress(x_t, dpb, v, t, q) --> packet (v, t, kind 1)   (refs t-1..t-3)
            the decoder's own reconstructions (returned by both models) --> PSNR-RGB the encoder reports
    decode  header codec_config {"quality", "intra", "inter", "weights", "intra_sha256", "inter_sha256"}
            + weights_sha256 --> both models; frame t of view v reads the packets of frames
            G*floor(t/G) .. t of that view only (its intra picture and the P pictures up to t)

Quality: the rung ``q`` (0 = fewest bits .. Q-1) of both models' gain vectors.  Structure: "ld" (low-delay P);
"intra" codes every frame intra; "ra" is refused (no B pictures in this codec).

Weights: option ``weights=ID`` (shipped, default ``mlvc-v1``) or ``weights_file=PATH``: one safetensors file
holding both models' tensors under the prefixes ``intra.`` and ``inter.`` with both configs in its metadata
(:func:`save_mlvc_weights`).  The file's SHA-256 goes into the header; a decoder finds the weights with that hash
in the zoo, its ``weights_file`` or ``$MVCODEC_WEIGHTS`` (as ``mvc-intra`` does), and refuses the file otherwise.
Damaged packets (``skip_damaged``): a damaged packet costs its frame and the rest of its intra period.
"""

from __future__ import annotations

import hashlib
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
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.learned_weights import LearnedWeights, read_weights_bytes, to_tensor, to_uint8
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource
from mvcodec.metrics import MetricAccumulator
from mvcodec.models.dpb import DecodedPictureBuffer
from mvcodec.models.inter import InterConfig, InterModel, build_inter
from mvcodec.models.intra import IntraConfig, IntraModel, build_intra
from mvcodec.train.checkpoint import weights_bytes

INTRA_PACKET = 0
INTER_PACKET = 1
DEFAULT_WEIGHTS = "mlvc-v1"
_READ_CHUNK = 8


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class MlvcWeights:
    """Both models' weights: their source ``id``, the SHA-256 of the file, configs and tensors."""

    id: str
    sha256: str
    intra_config: IntraConfig
    inter_config: InterConfig
    state: dict[str, torch.Tensor]

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in self.state.items() if k.startswith(prefix)}

    def models(self) -> tuple[IntraModel, InterModel]:
        """Both models in eval mode; weights that do not fit or lack coding tables are a :class:`CodecError`."""
        intra, inter = build_intra(self.intra_config), build_inter(self.inter_config)
        for prefix, model in (("intra.", intra), ("inter.", inter)):
            try:
                model.load_state_dict(self.part(prefix), strict=True)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise CodecError(f"weights {self.id}: {prefix[:-1]} tensors do not fit its config: {first}") from None
        if intra.entropy_bottleneck.table_lengths.numel() == 0 or inter.entropy_bottleneck.table_lengths.numel() == 0:
            raise CodecError(f"weights {self.id} have no entropy-coding tables (run the tasks' finalize/update())")
        return intra.eval(), inter.eval()


def mlvc_weights_bytes(intra: IntraModel, inter: InterModel) -> bytes:
    """Both models (call their ``update()`` first) as the bytes of one safetensors file, configs in its metadata."""
    state = {f"intra.{k}": v.detach().cpu().contiguous() for k, v in intra.state_dict().items()}
    state.update({f"inter.{k}": v.detach().cpu().contiguous() for k, v in inter.state_dict().items()})
    meta = {"task": "inter", "intra_config": json.dumps(intra.cfg.to_json()),
            "inter_config": json.dumps(inter.cfg.to_json())}
    return weights_bytes(state, meta)


def save_mlvc_weights(intra: IntraModel, inter: InterModel, path: str | os.PathLike) -> str:
    """Write both models (call their ``update()`` first) as one safetensors file; returns its SHA-256."""
    data = mlvc_weights_bytes(intra, inter)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def read_weights_file(path: str | os.PathLike) -> MlvcWeights:
    """Weights from a file of :func:`save_mlvc_weights` (parsed with safetensors and json only: nothing runs)."""
    path = Path(path)
    data, sha256, meta = read_weights_bytes(path)
    try:
        intra_cfg = IntraConfig.from_json(meta.get("intra_config", "null"))
        inter_cfg = InterConfig.from_json(meta.get("inter_config", "null"))
        state = load_safetensors(data)
    except (ValueError, AttributeError, InputError) as exc:
        raise CodecError(f"weights file {path} is not a safetensors file of the mlvc models ({exc})") from None
    return MlvcWeights(f"file:{path.name}", sha256, intra_cfg, inter_cfg, state)


def zoo_weights(weights_id: str) -> MlvcWeights:
    """Shipped weights ``weights_id`` (hash-checked by the zoo); the entry's config is {"intra": .., "inter": ..}."""
    entry, state = zoo.load_state(weights_id)
    try:
        intra_cfg = IntraConfig.from_json(entry.config.get("intra"))
        inter_cfg = InterConfig.from_json(entry.config.get("inter"))
    except (InputError, AttributeError) as exc:
        raise CodecError(f"shipped weights {weights_id}: {exc}") from None
    return MlvcWeights(weights_id, entry.sha256, intra_cfg, inter_cfg, state)


@register
class MlvcCodec(LearnedWeights[MlvcWeights], Codec):
    """The learned single-view inter codec behind the codec interface (module docstring)."""

    id = "mlvc"
    description = "learned P-frame codec (DCVC-TCM contexts + M-LVC multiple references), views coded on their own"
    default_qualities = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # cheapest first
    quality_help = "rung of the gain ladder 0..Q-1 (Q = 6 by default); higher = more bits, better"
    options_help = f"weights=ID (shipped weights, default {DEFAULT_WEIGHTS}), weights_file=PATH (.safetensors)"
    lossy_higher_quality_is = "higher"
    default_weights = DEFAULT_WEIGHTS
    weights_task = "inter"

    def __init__(self, **options: Any) -> None:
        self.check_weights_options(options)
        super().__init__(**options)
        self._models: dict[str, tuple[IntraModel, InterModel]] = {}

    # ------------------------------------------------------------------------------------------ weights
    def read_weights_file(self, path: str | os.PathLike) -> MlvcWeights:
        return read_weights_file(path)

    def zoo_weights(self, weights_id: str) -> MlvcWeights:
        return zoo_weights(weights_id)

    def models(self, weights: MlvcWeights) -> tuple[IntraModel, InterModel]:
        if weights.sha256 not in self._models:
            self._models[weights.sha256] = weights.models()
        return self._models[weights.sha256]

    # ------------------------------------------------------------------------------------------ encode
    def rung(self, quality: float, weights: MlvcWeights) -> int:
        top = min(weights.intra_config.qualities, weights.inter_config.qualities)
        if quality != int(quality) or not 0 <= int(quality) < top:
            raise InputError(f"codec mlvc takes a quality rung in 0..{top - 1}, got {quality}")
        return int(quality)

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        w = self.weights()
        return {"quality": self.rung(settings.quality, w), "intra": w.intra_config.to_json(),
                "inter": w.inter_config.to_json(), "weights": w.id,
                "intra_sha256": state_sha256(w.part("intra.")), "inter_sha256": state_sha256(w.part("inter."))}

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        if settings.structure == "ra":
            raise InputError("codec mlvc codes low delay (structure ld) or all intra; random access is not supported")
        weights = self.weights()
        intra, inter = self.models(weights)
        q = self.rung(settings.quality, weights)
        gop = 1 if settings.structure == "intra" else settings.gop
        info = source.info
        acc = MetricAccumulator(ms_ssim=False)
        recon_hash = hashlib.sha256()
        est = {"intra": 0.0, "inter": 0.0}
        real = {"intra": 0, "inter": 0}
        dpb = DecodedPictureBuffer(inter.cfg.references + 1)
        for v in range(info.views):
            for start in range(0, info.frames, _READ_CHUNK):
                chunk = source.read_frames(v, start, min(start + _READ_CHUNK, info.frames))
                for i, frame in enumerate(chunk):
                    t = start + i
                    x = to_tensor(frame)
                    if t % gop == 0:
                        coded = intra.encode(x, q)
                        payload, x_hat, kind, bits = coded.payload, coded.x_hat, "intra", coded.estimated_bits
                        dpb.clear(v)
                        dpb.put(v, t, InterModel.reference(x_hat))
                    else:
                        payload, x_hat = inter.compress(x, dpb, v, t, q)
                        kind, bits = "inter", inter.last_estimated_bits
                    writer.write_packet(v, t, 1, payload, INTRA_PACKET if kind == "intra" else INTER_PACKET)
                    picture = to_uint8(x_hat)
                    acc.add(v, frame, picture)
                    recon_hash.update(picture.tobytes())
                    est[kind] += bits
                    real[kind] += 8 * len(payload)
            dpb.clear(v)
        measured = acc.result()
        return {"weights": weights.id, "estimated_bits": est["intra"] + est["inter"],
                "real_bits": real["intra"] + real["inter"], "estimated_bits_inter": est["inter"],
                "real_bits_inter": real["inter"], "psnr_rgb_encoder": measured.psnr_rgb,
                "psnr_rgb_encoder_per_view": list(measured.per_view_psnr_rgb),
                "reconstruction_sha256": recon_hash.hexdigest()}

    # ------------------------------------------------------------------------------------------ decode
    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Frame t of a view needs its intra picture and the P pictures up to t (module docstring)."""
        h = reader.header
        if h.codec_id != self.id:
            raise BitstreamError(f"file was made by codec {h.codec_id!r}, not {self.id!r}")
        weights = self.decoder_weights(h)
        cfg = h.codec_config
        try:
            intra_cfg, inter_cfg = IntraConfig.from_json(cfg.get("intra")), InterConfig.from_json(cfg.get("inter"))
        except InputError as exc:
            raise BitstreamError(f"mlvc header: {exc}") from None
        if (intra_cfg, inter_cfg) != (weights.intra_config, weights.inter_config):
            raise BitstreamError(f"mlvc header's model configs are not those of weights {weights.id}")
        quality = cfg.get("quality")
        top = min(intra_cfg.qualities, inter_cfg.qualities)
        if not isinstance(quality, int) or not 0 <= quality < top:
            raise BitstreamError(f"mlvc header has quality {quality!r}, not a rung in 0..{top - 1}")
        gop = 1 if h.structure == "intra" else h.gop
        intra, inter = self.models(weights)
        for v in views:
            dpb = DecodedPictureBuffer(inter_cfg.references + 1)
            for period in range(frames.start - frames.start % gop, frames.stop, gop):
                wanted = range(max(frames.start, period), min(frames.stop, period + gop))
                yield from self._decode_period(reader, intra, inter, dpb, v, period, wanted, quality, skip_damaged)
                dpb.clear(v)

    def _decode_period(self, reader: MvcReader, intra: IntraModel, inter: InterModel, dpb: DecodedPictureBuffer,
                       v: int, period: int, wanted: range, quality: int, skip_damaged: bool,
                       ) -> Iterator[DecodedFrame | Skipped]:
        """Decode frames ``period .. wanted.stop - 1`` of view ``v``; yield those in ``wanted``."""
        h = reader.header
        for t in range(period, wanted.stop):
            try:
                kind = INTRA_PACKET if t == period else INTER_PACKET
                entries = reader.select(view=v, frames=range(t, t + 1), kind=kind)
                if len(entries) != 1:
                    raise BitstreamError(f"{reader.path}: {len(entries)} packets of kind {kind} for view {v} frame {t} "
                                         "(expected 1)")
                payload = reader.read_packet(entries[0])
                if t == period:
                    x_hat = intra.decompress(payload, h.height, h.width, quality)
                    dpb.put(v, t, InterModel.reference(x_hat))
                else:
                    x_hat = inter.decompress(payload, dpb, v, t, h.height, h.width, quality)
            except BitstreamError as exc:
                if not skip_damaged:
                    raise
                lost = range(max(t, wanted.start), wanted.stop)
                yield Skipped(v, lost, f"{exc} (frames {lost.start}:{lost.stop} of the intra period depend on it)")
                return
            if t in wanted:
                yield DecodedFrame(v, t, to_uint8(x_hat))
