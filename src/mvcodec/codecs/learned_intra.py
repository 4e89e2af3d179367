"""``mvc-intra``: the learned intra codec (ELIC-style hyperprior, :mod:`mvcodec.models.intra`), every frame intra.

::

    encode  frame (view v, frame t) uint8 (H,W,3) --/255--> IntraModel.encode(x, rung) --> payload
            --> one packet (view v, frames t:t+1, kind 0)                  (random access to any frame)
            the decoder's own reconstruction (returned by encode) --> PSNR-RGB the encoder reports
    decode  header codec_config {"quality", "weights"} + weights_sha256 --> the weights with that hash
            (the zoo, the ``weights_file`` option, or files under $MVCODEC_WEIGHTS) --> IntraModel (files of
            earlier versions also hold the "model" config, checked against the weights)
            packet (v, t) --IntraModel.decompress--> x_hat --*255, round--> uint8 (H,W,3)

Quality ladder: ``quality`` is the rung index ``q`` of the model's gain vectors, 0 (fewest bits) to Q - 1 (Q = 6
for the default config).  Rung ``q`` is trained with the rate-distortion weight ``lambdas[q]`` of the run config
(configs/intra.yaml; loss = lambda * MSE(x in [0, 1]) + bpp):

    rung        0      1      2      3      4       5
    lambda    117    228    436    845   1626    3141      (= 255**2 x CompressAI's 0.0018 ... 0.0483)

so each rung roughly doubles lambda (about +1.5 dB, +40 % bits on natural images).  The structure and the intra
period are recorded but change nothing: every frame is an intra picture.

Weights: option ``weights=ID`` names shipped weights (:func:`mvcodec.zoo.load_state`, default ``mvc-intra-v3``);
``weights_file=PATH`` takes a ``.safetensors`` file written by :func:`save_intra_weights` (the model config in its
``model_config`` metadata) or a training run's ``RUN/final.safetensors`` (the config read from ``RUN/final.json``).
The file's SHA-256 goes into the header; a decoder finds the weights with that hash in the zoo, in its
``weights_file`` or among the files and folders listed in ``$MVCODEC_WEIGHTS`` (``os.pathsep``-separated), and
refuses the file otherwise.
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
from mvcodec.bitstream import MvcReader, MvcWriter
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.learned_weights import (
    LearnedWeights,
    check_stored_config,
    read_weights_bytes,
    to_tensor,
    to_uint8,
)
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource
from mvcodec.metrics import MetricAccumulator
from mvcodec.models.intra import IntraConfig, IntraModel, build_intra, check_coding_size

INTRA_PACKET = 0
DEFAULT_WEIGHTS = "mvc-intra-v3"
MAX_FILE_BYTES = 256 << 20  # a weights file given by path (shipped ones are held to zoo.MAX_WEIGHTS_BYTES)
_READ_CHUNK = 8  # frames read from the source at a time


@dataclass(frozen=True)
class IntraWeights:
    """Weights of an intra model: where they come from (``id``), their hash, the model config and tensors."""

    id: str
    sha256: str
    config: IntraConfig
    state: dict[str, torch.Tensor]

    def model(self) -> IntraModel:
        """The model in eval mode with these weights; weights without coding tables are a :class:`CodecError`."""
        model = build_intra(self.config)
        try:
            model.load_state_dict(self.state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CodecError(f"weights {self.id} do not fit the intra model config: {first}") from None
        if model.entropy_bottleneck.table_lengths.numel() != self.config.Z:
            raise CodecError(f"weights {self.id} have no entropy-coding tables (run the task's finalize/update())")
        return model.eval()


def save_intra_weights(model: IntraModel, path: str | os.PathLike) -> str:
    """Write ``model``'s state (call ``update()`` first) as safetensors with its config in the ``model_config``
    metadata (through the training engine's writer, atomically); returns the file's SHA-256."""
    from mvcodec.train.checkpoint import save_weights
    return save_weights(path, model, {"task": "intra", "model_config": json.dumps(model.cfg.to_json())})


def _file_config(path: Path, sha256: str, meta: dict[str, str]) -> IntraConfig:
    """The model config of a weights file: its ``model_config`` metadata, else the ``final.json`` the training
    engine wrote beside it (``RUN/final.safetensors``) when that names this very file by hash."""
    if "model_config" in meta:
        return IntraConfig.from_json(meta["model_config"])
    run_info = path.parent / "final.json"
    if run_info.is_file():
        info = json.loads(run_info.read_text())
        if isinstance(info, dict) and info.get("sha256") == sha256 and info.get("task") == "intra":
            return IntraConfig.from_json(info.get("config", {}).get("model") or {})
    raise CodecError(f"weights file {path} names no intra model config (metadata model_config, or the final.json "
                     "of its training run)")


def read_weights_file(path: str | os.PathLike) -> IntraWeights:
    """Weights from a ``.safetensors`` file (parsed with safetensors and json only: nothing in it runs)."""
    path = Path(path)
    data, sha256, meta = read_weights_bytes(path)
    try:
        config = _file_config(path, sha256, meta)
        state = load_safetensors(data)
    except (ValueError, AttributeError, InputError) as exc:
        raise CodecError(f"weights file {path} is not a safetensors file of an intra model ({exc})") from None
    return IntraWeights(f"file:{path.name}", sha256, config, state)


def zoo_weights(weights_id: str) -> IntraWeights:
    """Shipped weights ``weights_id`` (hash-checked by the zoo)."""
    entry, state = zoo.load_state(weights_id)
    try:
        config = IntraConfig.from_json(entry.config)
    except InputError as exc:
        raise CodecError(f"shipped weights {weights_id}: {exc}") from None
    return IntraWeights(weights_id, entry.sha256, config, state)


@register
class LearnedIntraCodec(LearnedWeights[IntraWeights], Codec):
    """The learned intra codec behind the codec interface (module docstring: diagram, ladder, weights)."""

    id = "mvc-intra"
    description = "learned intra codec: ELIC-style hyperprior with checkerboard + channel context, every frame intra"
    default_qualities = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # cheapest first
    quality_help = "rung of the gain ladder 0..Q-1 (Q = 6 for the shipped weights); higher = more bits, better"
    options_help = f"weights=ID (shipped weights, default {DEFAULT_WEIGHTS}), weights_file=PATH (.safetensors)"
    default_weights = DEFAULT_WEIGHTS
    weights_task = "intra"
    lossy_higher_quality_is = "higher"
    uses_structure = False

    def __init__(self, **options: Any) -> None:
        self.check_weights_options(options)
        super().__init__(**options)
        self._models: dict[str, IntraModel] = {}  # by weights hash

    # ------------------------------------------------------------------------------------------ weights
    def read_weights_file(self, path: str | os.PathLike) -> IntraWeights:
        return read_weights_file(path)

    def zoo_weights(self, weights_id: str) -> IntraWeights:
        return zoo_weights(weights_id)

    def _model(self, weights: IntraWeights) -> IntraModel:
        if weights.sha256 not in self._models:
            self._models[weights.sha256] = weights.model()
        return self._models[weights.sha256]

    # ------------------------------------------------------------------------------------------ encode
    def rung(self, quality: float, qualities: int) -> int:
        if quality != int(quality) or not 0 <= int(quality) < qualities:
            raise InputError(f"codec mvc-intra takes a quality rung in 0..{qualities - 1}, got {quality}")
        return int(quality)

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        w = self.weights()
        return {"quality": self.rung(settings.quality, w.config.qualities), "weights": w.id}

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        weights = self.weights()
        model, q = self._model(weights), self.rung(settings.quality, weights.config.qualities)
        info = source.info
        acc = MetricAccumulator(ms_ssim=False)  # the metric code measure_file uses: same PSNR digits
        recon_hash = hashlib.sha256()
        estimated = table = real = 0.0
        for v in range(info.views):
            for start in range(0, info.frames, _READ_CHUNK):
                frames = source.read_frames(v, start, min(start + _READ_CHUNK, info.frames))
                for i, frame in enumerate(frames):
                    coded = model.encode(to_tensor(frame), q)
                    writer.write_packet(v, start + i, 1, coded.payload, INTRA_PACKET)
                    picture = to_uint8(coded.x_hat)
                    acc.add(v, frame, picture)
                    recon_hash.update(picture.tobytes())
                    estimated += coded.estimated_bits
                    table += coded.table_bits
                    real += 8 * len(coded.payload)
        measured = acc.result()
        return {"weights": weights.id, "estimated_bits": estimated, "table_bits": table, "real_bits": real,
                "psnr_rgb_encoder": measured.psnr_rgb, "psnr_rgb_encoder_per_view": list(measured.per_view_psnr_rgb),
                "reconstruction_sha256": recon_hash.hexdigest()}

    # ------------------------------------------------------------------------------------------ decode
    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Each frame depends on its own packet only: a damaged one costs that frame (a :class:`Skipped` of one
        frame with ``skip_damaged``)."""
        h = reader.header
        if h.codec_id != self.id:
            raise BitstreamError(f"file was made by codec {h.codec_id!r}, not {self.id!r}")
        weights = self.decoder_weights(h)
        check_stored_config(h.codec_config, "model", IntraConfig.from_json, weights.config, self.id, weights.id)
        config = weights.config
        quality = h.codec_config.get("quality")
        if not isinstance(quality, int) or not 0 <= quality < config.qualities:
            raise BitstreamError(f"mvc-intra header has quality {quality!r}, not a rung in 0..{config.qualities - 1}")
        try:
            check_coding_size(h.height, h.width)
        except InputError as exc:
            raise BitstreamError(f"mvc-intra: {exc}") from None
        model = self._model(weights)
        for v in views:
            for t in frames:
                try:
                    entries = reader.select(view=v, frames=range(t, t + 1), kind=INTRA_PACKET)
                    if len(entries) != 1:
                        raise BitstreamError(f"{reader.path}: {len(entries)} packets for view {v} frame {t} "
                                             "(expected 1)")
                    x_hat = model.decompress(reader.read_packet(entries[0]), h.height, h.width, quality)
                except BitstreamError as exc:
                    if not skip_damaged:
                        raise
                    yield Skipped(v, range(t, t + 1), str(exc))
                    continue
                yield DecodedFrame(v, t, to_uint8(x_hat))
