"""Weights handling shared by the learned codecs (``mvc-intra``, ``mlvc``): where weights come from, how a
decoder finds the weights a file names, and the picture <-> tensor conversions of their coding paths.

::

    encoder:  -O weights_file=PATH  or  -O weights=ID (shipped, mvcodec.zoo)  --> W (id, sha256, configs, tensors)
              W.sha256 --> the file's header
    decoder:  header.weights_sha256 --> the encoder's own W, else a shipped entry of the codec's task with that
              hash, else a .safetensors under $MVCODEC_WEIGHTS with that hash --> W  (else BitstreamError)

Files are parsed with safetensors and json only (nothing in them runs); a file is hashed before it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch

from mvcodec import zoo
from mvcodec.bitstream import MvcHeader
from mvcodec.errors import BitstreamError, CodecError, InputError

WEIGHTS_ENV = "MVCODEC_WEIGHTS"
MAX_FILE_BYTES = 256 << 20


class HasSha256(Protocol):
    sha256: str


W = TypeVar("W", bound=HasSha256)


def read_weights_bytes(path: str | os.PathLike) -> tuple[bytes, str, dict[str, str]]:
    """The bytes of a ``.safetensors`` file, their SHA-256 and the file's ``__metadata__`` (json only).

    Unreadable, oversized or malformed files are a :class:`CodecError`."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CodecError(f"weights file {path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise CodecError(f"weights file {path} cannot be read ({exc.strerror})") from None
    try:
        head_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + head_len]).get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a mapping")
    except (ValueError, AttributeError) as exc:
        raise CodecError(f"weights file {path} is not a safetensors file ({exc})") from None
    return data, hashlib.sha256(data).hexdigest(), meta


def check_stored_config(codec_config: dict[str, Any], key: str, parse: Callable[[Any], Any], actual: Any,
                        codec_id: str, weights_id: str) -> None:
    """Files of earlier versions spell out a model config under ``codec_config[key]``; where it is there it must
    parse and equal ``actual``, the config of the weights the file's hash named (a :class:`BitstreamError`
    otherwise).  Files written since container format 2 leave it out: the hash already names the weights, and
    the weights carry their config (docs/decisions.md, "A compact container")."""
    if key not in codec_config:
        return
    try:
        stored = parse(codec_config[key])
    except InputError as exc:
        raise BitstreamError(f"{codec_id} header: {exc}") from None
    if stored != actual:
        raise BitstreamError(f"{codec_id} header's {key} config is not that of weights {weights_id}")


def weights_search_paths() -> list[Path]:
    """The ``.safetensors`` files named by ``$MVCODEC_WEIGHTS`` (files, or folders searched one level deep)."""
    out: list[Path] = []
    for item in filter(None, os.environ.get(WEIGHTS_ENV, "").split(os.pathsep)):
        p = Path(item)
        out.extend(sorted(p.glob("*.safetensors")) if p.is_dir() else [p] if p.is_file() else [])
    return out


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float32 ``(1, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def to_uint8(x_hat: torch.Tensor) -> np.ndarray:
    """float ``(1, 3, H, W)`` in [0, 1] -> uint8 ``(H, W, 3)`` (round half to even, element-wise: exact)."""
    return torch.round(x_hat[0].clamp(0, 1) * 255.0).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


class LearnedWeights(Generic[W]):
    """Mixin of a learned codec: the encoder's weights from its options, the decoder's from a header's hash.

    A codec class sets ``default_weights`` (a zoo id) and ``weights_task`` (the zoo task whose entries it can
    decode), and implements :meth:`read_weights_file` and :meth:`zoo_weights`; it has ``self.options`` and
    ``self.id`` (from :class:`~mvcodec.codecs.base.Codec`)."""

    default_weights: ClassVar[str]
    weights_task: ClassVar[str]
    extra_options: ClassVar[tuple[str, ...]] = ()
    options: dict[str, Any]
    id: ClassVar[str]

    @classmethod
    def check_weights_options(cls, options: dict[str, Any]) -> None:
        """The codec's options are ``weights``, ``weights_file`` and the class's ``extra_options``; anything else
        is an :class:`InputError`."""
        known = ("weights", "weights_file", *cls.extra_options)
        unknown = set(options) - set(known)
        if unknown:
            raise InputError(f"codec {cls.id} has no option(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(known)})")

    def read_weights_file(self, path: str | os.PathLike) -> W:
        raise NotImplementedError

    def zoo_weights(self, weights_id: str) -> W:
        raise NotImplementedError

    def weights(self) -> W:
        """The encoder's weights: ``weights_file`` if given, else the shipped ``weights`` id (cached)."""
        cached = getattr(self, "_encoder_weights", None)
        if cached is None:
            file = self.options.get("weights_file")
            cached = self.read_weights_file(file) if file else \
                self.zoo_weights(str(self.options.get("weights", self.default_weights)))
            self._encoder_weights = cached
        return cached

    def unavailable_reason(self) -> str | None:
        try:
            self.weights()
        except CodecError as exc:
            return str(exc)
        return None

    def requirements(self) -> str:
        return f"weights: shipped {self.default_weights}, or -O weights_file=PATH.safetensors"

    def weights_sha256(self) -> str:
        try:
            return self.weights().sha256
        except CodecError:
            return ""

    def decoder_weights(self, header: MvcHeader) -> W:
        """The weights whose hash ``header`` names; none found is a :class:`BitstreamError`."""
        return self.weights_with_sha256(header.weights_sha256)

    def weights_with_sha256(self, want: str) -> W:
        """The weights whose file has SHA-256 ``want`` (cached): this codec's own, the zoo's entries of its task,
        then the files under ``$MVCODEC_WEIGHTS``; none found is a :class:`BitstreamError`."""
        found: dict[str, W] = self.__dict__.setdefault("_decoder_weights", {})
        if want not in found:
            found[want] = self._find_weights(want)
        return found[want]

    def check_decodable(self, header: MvcHeader) -> None:
        self.decoder_weights(header)

    def _find_weights(self, want: str) -> W:
        if not want:
            raise BitstreamError(f"file names no weights, which codec {self.id} needs (corrupt header)")
        if self.weights_sha256() == want:
            return self.weights()
        for entry in zoo.entries().values():
            if entry.sha256 == want and entry.task == self.weights_task:
                return self.zoo_weights(entry.id)
        for path in weights_search_paths():
            if hashlib.sha256(path.read_bytes()).hexdigest() == want:
                return self.read_weights_file(path)
        raise BitstreamError(f"file needs weights {want[:16]} for codec {self.id}: not shipped, not the "
                             f"weights_file option, not under ${WEIGHTS_ENV}")
