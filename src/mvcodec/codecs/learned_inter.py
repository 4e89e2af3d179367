"""``mlvc``: the learned single-view inter codec (DCVC-TCM conditional coding with M-LVC's multiple references),
each view coded on its own (simulcast); low delay or random access, with an intra period.

::

    encode  per view v, per intra period (G = EncodeSettings.gop), the pictures of the period's plan
            (:mod:`mvcodec.codecs.learned_structure`) in coding order:
              I:  IntraModel.encode(x_t, q)                       --> packet (v, t, kind 0)
              P:  InterModel.compress(x_t, refs = the P chain)    --> packet (v, t, kind 1)   (ld: t-1..t-3)
              B:  InterModel.compress(x_t, refs = [past] or [future], whichever costs less)
                                                                  --> packet (v, t, kind 4 past / 5 future)
            the decoder's own reconstructions (returned by both models) --> PSNR-RGB the encoder reports
    decode  header codec_config {"quality", "weights" [, "key_quality"] [, "ra_gop"] [, "frame_skip": true
            [, "picture_copy": true [, "key_copy": true]]]} + weights_sha256 --> the weights, both models (files
            of earlier versions also spell out "intra", "inter" and their hashes, checked against the weights);
            frame t of view v reads the packets of its dependency set only (ld: frames G*floor(t/G) .. t of that
            view; ra: its B chain, the anchors and the I picture)

Quality: the rung ``q`` (0 = fewest bits .. Q-1) of both models' gain vectors, for the P and B pictures; the I
picture that starts each intra period (the key picture: every other picture of the period is predicted from it,
directly or not) is coded at the key rung, option ``key_offset=N`` rungs above ``q`` (default 3) or ``top`` (the
model's top rung), clamped to the top; the header says ``"key_quality"`` where it differs from ``"quality"``
(:class:`Rungs`).  Structure: "ld" (low-delay P),
"ra" (hierarchical B over GOPs of ``ra_gop`` frames, option, default 8; B pictures coded by the P model from
the cheaper of their two references, option ``b_reference=rd|past|future``), "intra" (every frame intra).

Frame-latent skip (option ``frame_skip=rd``, the default; ``off`` writes the files of earlier versions): each P or
B picture codes its motion, then its frame latent coded or skipped (nothing in the stream, every symbol 0: the
contextual decoder works from the temporal contexts alone), whichever costs less in :func:`rd_cost`; a mode byte
starts the picture's payload and the header says ``"frame_skip": true`` (:meth:`InterModel.compress`).  Files
without it decode as before.  Picture copy (option ``picture_copy=rd``, the default with the skip; header
``"picture_copy": true``): a third candidate, the picture's nearest reference unchanged (mode byte 2 alone: no
motion, no latent), the skip picture of video codecs for static content; and a fourth (header ``"key_copy":
true``), the key picture of the intra period unchanged (mode byte 3), a long-term reference for a scene that
comes back to where the period began (``picture_copy=nearest``: the third only, the files of the version before
it).

Weights: option ``weights=ID`` (shipped, default ``mlvc-v5``: mlvc-v3's inter model, the one that codes motion,
with mvc-intra-v3 for its I pictures) or ``weights_file=PATH``: one safetensors file holding both models' tensors
under the prefixes ``intra.`` and ``inter.`` with both configs in its metadata (:func:`save_mlvc_weights`).  The
file's SHA-256 goes into the header; a decoder finds the weights with that hash in the zoo, its ``weights_file`` or
``$MVCODEC_WEIGHTS`` (as ``mvc-intra`` does), and refuses the file otherwise.
Damaged packets (``skip_damaged``): a damaged packet costs its frame and the frames that depend on it (ld: the
rest of its intra period).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load as load_safetensors

from mvcodec import zoo
from mvcodec.atomic import write_atomic
from mvcodec.bitstream import MvcReader, MvcWriter
from mvcodec.bitstream.header import MvcHeader
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.learned_structure import (
    DEFAULT_RA_GOP,
    PlannedPicture,
    check_ra_gop,
    decode_pictures,
    dependency_set,
    emit,
    last_uses,
    period_plan,
    periods,
    rd_cost,
)
from mvcodec.codecs.learned_weights import (
    LearnedWeights,
    check_stored_config,
    read_weights_bytes,
    to_tensor,
    to_uint8,
)
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import ClipSource, FrameWindow
from mvcodec.metrics import MetricAccumulator
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter import InterConfig, InterModel, build_inter
from mvcodec.models.intra import IntraConfig, IntraModel, build_intra
from mvcodec.train.checkpoint import weights_bytes

INTRA_PACKET = 0
INTER_PACKET = 1
B_PAST_PACKET = 4    # a B picture coded from its past candidate
B_FUTURE_PACKET = 5  # ... from its future candidate
DEFAULT_WEIGHTS = "mlvc-v5"
B_REFERENCES = ("rd", "past", "future")
FRAME_SKIP_MODES = ("rd", "off")
PICTURE_COPY_MODES = ("rd", "nearest", "off")
KEY_OFFSET_TOP = "top"
DEFAULT_KEY_OFFSET = 3
"""Option ``key_offset``'s default, in rungs of the gain ladder (BENCHMARKS.md, "Key pictures above the other
pictures, and picture copy"): the whole intra period follows its key picture, which costs a few percent of the
period, so a higher key rung is nearly free; with picture copy a static scene's file is its key pictures, so the
key rung must still follow the quality asked for (``top`` gives one file for every rung there)."""


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

    @property
    def top_rung(self) -> int:
        """The highest rung both models' gain ladders have."""
        return min(self.intra_config.qualities, self.inter_config.qualities) - 1

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
        inter_cfg = InterConfig.from_stored(meta.get("inter_config", "null"))
        state = load_safetensors(data)
    except (ValueError, AttributeError, InputError) as exc:
        raise CodecError(f"weights file {path} is not a safetensors file of the mlvc models ({exc})") from None
    return MlvcWeights(f"file:{path.name}", sha256, intra_cfg, inter_cfg, state)


def zoo_weights(weights_id: str) -> MlvcWeights:
    """Shipped weights ``weights_id`` (hash-checked by the zoo); the entry's config is {"intra": .., "inter": ..}."""
    entry, state = zoo.load_state(weights_id)
    try:
        intra_cfg = IntraConfig.from_json(entry.config.get("intra"))
        inter_cfg = InterConfig.from_stored(entry.config.get("inter"))
    except (InputError, AttributeError) as exc:
        raise CodecError(f"shipped weights {weights_id}: {exc}") from None
    return MlvcWeights(weights_id, entry.sha256, intra_cfg, inter_cfg, state)


@dataclass(frozen=True)
class CodedPicture:
    """What coding one picture gave: the payload, the decoder's reconstruction (1,3,H,W) float32, the packet kind
    and the estimated bits (-log2 p of what was coded)."""

    payload: bytes
    x_hat: torch.Tensor
    kind: int
    estimated_bits: float
    symbol_counts: dict[str, list[int]] = field(default_factory=dict)  # latent -> [non-zero, all] (P and B)
    frame_skipped: bool = False  # a P or B picture whose frame latent was skipped (module docstring)
    picture_copied: bool = False  # ... that was copied from its reference or its key picture (module docstring)
    key_copied: bool = False  # ... copied from its key picture


def add_symbol_counts(total: dict[str, list[int]], counts: dict[str, list[int]]) -> None:
    for name, (nonzero, n) in counts.items():
        t = total.setdefault(name, [0, 0])
        t[0] += nonzero
        t[1] += n


def nonzero_shares(total: dict[str, list[int]]) -> dict[str, float]:
    """The encoder report's ``nonzero_symbol_share``: per latent of the predicted pictures that coded it (a skipped
    frame latent codes none), the share of its symbols that are not zero (all zero: the pictures carry nothing
    beyond their hyper-latents)."""
    return {name: nonzero / n for name, (nonzero, n) in sorted(total.items()) if n}


@dataclass(frozen=True)
class Rungs:
    """The rungs of a file's pictures: ``quality`` for the P and B pictures, ``key`` for the I picture that starts
    each intra period of more than one picture (HM's and x265's lower QP for I slices, here in rungs of the gain
    ladder).  With the frame latent skipped, a P picture is its references moved by coded motion, so the period's
    quality follows its key picture's while the key picture is a few percent of the period's bits."""

    quality: int
    key: int

    def of(self, p: PlannedPicture) -> int:
        """The rung of picture ``p`` of a period's plan (an ``I`` picture is the period's key picture)."""
        return self.key if p.type == "I" else self.quality


def key_offset_option(options: dict[str, Any]) -> int | None:
    """Option ``key_offset``: how many rungs above the others a key picture is coded (default
    :data:`DEFAULT_KEY_OFFSET`), or None for ``top`` (the model's top rung); anything else is a one-line
    :class:`InputError`."""
    value = str(options.get("key_offset", DEFAULT_KEY_OFFSET))
    if value == KEY_OFFSET_TOP:
        return None
    if not value.isdigit() or int(value) > 64:
        raise InputError(f"key_offset must be {KEY_OFFSET_TOP} or a number of rungs 0..64, got {value!r}")
    return int(value)


def encoder_rungs(quality: int, top: int, key_offset: int | None, structure: str, gop: int) -> Rungs:
    """The rungs an encoder codes with at rung ``quality`` of a ladder ``0 .. top``: the key pictures
    ``key_offset`` rungs higher (None: at ``top``), clamped; every picture at ``quality`` where every picture is
    an I picture (structure ``intra`` or an intra period of 1)."""
    if structure == "intra" or gop == 1:
        return Rungs(quality, quality)
    return Rungs(quality, top if key_offset is None else min(quality + key_offset, top))


def header_rungs(h: MvcHeader, top: int) -> Rungs:
    """The rungs of a learned predictive codec's file: ``"quality"`` and ``"key_quality"`` (absent in files of
    earlier versions: the same rung), each a rung in ``0 .. top``, or a :class:`BitstreamError`."""
    cfg = h.codec_config
    quality = cfg.get("quality")
    key = cfg.get("key_quality", quality)
    for name, value in (("quality", quality), ("key_quality", key)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise BitstreamError(f"{h.codec_id} header has {name} {value!r}, not a rung in 0..{top}")
    return Rungs(quality, key)


def structure_options(options: dict[str, Any]) -> tuple[int, str]:
    """The coding-structure options of the learned predictive codecs: (``ra_gop``, ``b_reference``)."""
    return check_ra_gop(options.get("ra_gop", DEFAULT_RA_GOP)), choice_option(options, "b_reference", B_REFERENCES)


def choice_option(options: dict[str, Any], name: str, choices: Iterable[str], default: str = "rd") -> str:
    """Option ``name`` of the learned codecs, one of ``choices`` (``default`` when absent); anything else is a
    one-line :class:`InputError` listing them (``b_reference``, lmvc's ``key_picture`` / ``dependent_picture``)."""
    value, choices = str(options.get(name, default)), tuple(choices)
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def header_config(w: MlvcWeights, rungs: Rungs, ra_gop: int | None, frame_skip: bool,
                  picture_copy: bool = False, key_copy: bool = False) -> dict[str, Any]:
    """The ``codec_config`` of an mlvc file (``rungs``: ``key_quality`` written only where it differs, so
    ``key_offset=0`` writes the files of earlier versions; ``ra_gop``: None unless random access; ``frame_skip``:
    the P and B payloads start with the mode byte; ``picture_copy``: it may say copied; ``key_copy``: copied from
    the key picture); ``lmvc`` writes it for view 0 too
    (:func:`~mvcodec.codecs.learned_multiview.extract_base_view`).  The model configs are not written: the
    header's ``weights_sha256`` names the weights and they carry them (files of earlier versions have them under
    "intra" and "inter", checked by :func:`check_stored_config`)."""
    return {"quality": rungs.quality, **({"key_quality": rungs.key} if rungs.key != rungs.quality else {}),
            "weights": w.id, **({"ra_gop": ra_gop} if ra_gop is not None else {}),
            **({"frame_skip": True} if frame_skip else {}), **({"picture_copy": True} if picture_copy else {}),
            **({"key_copy": True} if key_copy else {})}


def header_frame_skip(h: MvcHeader, codec_id: str) -> bool:
    """Whether the file's P and B payloads start with the mode byte (absent in files of earlier versions)."""
    return _header_flag(h, codec_id, "frame_skip")


def header_picture_copy(h: MvcHeader, codec_id: str) -> bool:
    """Whether a P or B payload's mode byte may say the picture is copied (absent in files of earlier versions)."""
    return _header_flag(h, codec_id, "picture_copy")


def header_key_copy(h: MvcHeader, codec_id: str) -> bool:
    """Whether a P or B payload's mode byte may say the picture is its key picture copied (absent in files of
    earlier versions)."""
    return _header_flag(h, codec_id, "key_copy") and header_picture_copy(h, codec_id)


def _header_flag(h: MvcHeader, codec_id: str, key: str) -> bool:
    value = h.codec_config.get(key, False)
    if not isinstance(value, bool):
        raise BitstreamError(f"{codec_id} header: {key} must be true or false, got {value!r}")
    return value


def picture_copy_option(options: dict[str, Any], frame_skip: bool) -> tuple[bool, bool]:
    """Option ``picture_copy`` as (copy, key copy): rd, the encoder may copy a P or B picture from its nearest
    reference or from its intra period's key picture; nearest, from the first only (the files of the version
    before key copy); off.  It needs the mode byte, so it is off with ``frame_skip=off`` unless asked for, which is
    a one-line :class:`InputError`."""
    if not frame_skip:
        if "picture_copy" in options and str(options["picture_copy"]) != "off":
            raise InputError("picture_copy needs frame_skip=rd (the mode byte that says a picture is copied)")
        return False, False
    mode = choice_option(options, "picture_copy", PICTURE_COPY_MODES)
    return mode != "off", mode == "rd"


def skip_cost(x: torch.Tensor, q: int, distortion_weight: float = 1.0) -> Callable[[torch.Tensor, int], float]:
    """The frame-latent skip decision's cost of picture ``x (1,3,H,W)`` at rung ``q``: :func:`rd_cost` of a
    reconstruction and its payload bits."""
    return lambda x_hat, bits: rd_cost(x, x_hat, bits, q, distortion_weight)


def header_ra_gop(h: MvcHeader, codec_id: str) -> int:
    """The hierarchical GOP of a random-access file (:data:`DEFAULT_RA_GOP` for the other structures)."""
    if h.structure != "ra":
        return DEFAULT_RA_GOP
    try:
        return check_ra_gop(h.codec_config.get("ra_gop"))
    except InputError as exc:
        raise BitstreamError(f"{codec_id} header: {exc}") from None


def b_candidates(b_reference: str) -> tuple[int, ...]:
    """Which of a B picture's candidates (0 past, 1 future) the encoder tries."""
    return {"rd": (0, 1), "past": (0,), "future": (1,)}[b_reference]


def b_kind(candidate: int) -> int:
    return B_PAST_PACKET if candidate == 0 else B_FUTURE_PACKET


def temporal_refs(p: PlannedPicture, kind: int) -> tuple[int, ...]:
    """The frames picture ``p`` references (of its own view), given its packet ``kind`` (:data:`B_PAST_PACKET`
    or :data:`B_FUTURE_PACKET` for a B picture); a kind that does not fit the plan is a BitstreamError."""
    if p.type == "B":
        if kind not in (B_PAST_PACKET, B_FUTURE_PACKET):
            raise BitstreamError(f"frame {p.frame} is a B picture of the coding structure, its packet has kind {kind}")
        return (p.refs[0 if kind == B_PAST_PACKET else 1],)
    return p.refs


def temporal_references(dpb: DecodedPictureBuffer, v: int, p: PlannedPicture, candidate: int = 0,
                        ) -> list[DecodedPicture]:
    """The references of P or B picture ``p`` of view ``v`` in its own view: a P picture's motion-linked chain, or
    a B picture's one reference, candidate 0 (past) or 1 (future), as a chain's start (no motion history).  The
    encoder, the decoder, lmvc's dependent pictures and the multiview training task all take them here."""
    if p.type == "P":
        return dpb.chain(v, p.refs)
    return [dpb.get(v, p.refs[candidate]).without_motion()]


def code_single_view(intra: IntraModel, inter: InterModel, dpb: DecodedPictureBuffer, v: int, p: PlannedPicture,
                     x: torch.Tensor, q: int, b_reference: str = "rd", frame_skip: bool = False,
                     picture_copy: bool = False, key: DecodedPicture | None = None) -> CodedPicture:
    """Code picture ``p`` of view ``v`` (``x (1,3,H,W)`` in [0, 1]) at rung ``q`` (``Rungs.of(p)``) as ``mlvc`` does
    (module docstring), putting the decoder's picture into ``dpb``; ``lmvc`` codes its view 0 with this, so both
    write the same packets.  ``key``: the period's key picture, which a P or B picture may copy (files with key
    copy; :class:`KeyPictures`)."""
    t = p.frame
    if p.type == "I":
        coded = intra.encode(x, q)
        dpb.put(v, t, InterModel.reference(coded.x_hat))
        return CodedPicture(coded.payload, coded.x_hat, INTRA_PACKET, coded.estimated_bits)
    cost = skip_cost(x, q) if frame_skip else None

    def code_p(candidate: int) -> CodedPicture:
        payload, x_hat = inter.compress(x, dpb, v, t, q, refs=temporal_references(dpb, v, p, candidate),
                                        skip_cost=cost, copy=picture_copy, key=key)
        return CodedPicture(payload, x_hat, INTER_PACKET if p.type == "P" else b_kind(candidate),
                            inter.last_estimated_bits, inter.last_symbol_counts, inter.last_frame_skipped,
                            inter.last_picture_copied, inter.last_key_copied)

    if p.type == "P":
        return code_p(0)
    return cheapest(x, q, dpb, v, t, [partial(code_p, c) for c in b_candidates(b_reference)])


def cheapest(x: torch.Tensor, q: int, dpb: DecodedPictureBuffer, v: int, t: int,
             coders: Sequence[Callable[[], CodedPicture]], distortion_weight: float = 1.0) -> CodedPicture:
    """The encoder's mode decision for picture (v, t), ``x (1,3,H,W)``: run every coder (each codes the picture
    its way and puts its decoded picture into ``dpb``), keep the one of least :func:`rd_cost` on its real bits,
    and leave its decoded picture in ``dpb``.  A B picture's reference (mlvc) and a dependent view's key picture,
    intra or inter-view (lmvc), are chosen this way; the decoder reads the choice from the packet kind.
    ``distortion_weight``: :func:`~mvcodec.codecs.learned_structure.reference_weight` (lmvc's dependent pictures)."""
    best: tuple[float, CodedPicture, DecodedPicture] | None = None
    for code in coders:
        coded = code()
        cost = rd_cost(x, coded.x_hat, 8 * len(coded.payload), q, distortion_weight)
        if best is None or cost < best[0]:
            best = (cost, coded, dpb.get(v, t))
    if best is None:
        raise ValueError("cheapest needs at least one coder")
    dpb.put(v, t, best[2])
    return best[1]


def decode_single_view(intra: IntraModel, inter: InterModel, dpb: DecodedPictureBuffer, payload: bytes, kind: int,
                       v: int, p: PlannedPicture, h: MvcHeader, quality: int, key: DecodedPicture | None = None,
                       ) -> torch.Tensor:
    """The picture :func:`code_single_view` coded at rung ``quality``, from its payload (``key``: the period's key
    picture where the header allows key copies, :class:`KeyPictures`); puts it into ``dpb``."""
    t = p.frame
    expected = {"I": (INTRA_PACKET,), "P": (INTER_PACKET,), "B": (B_PAST_PACKET, B_FUTURE_PACKET)}[p.type]
    if kind not in expected:
        raise BitstreamError(f"view {v} frame {t} is an {p.type} picture of the coding structure, its packet has "
                             f"kind {kind}")
    if p.type == "I":
        x_hat = intra.decompress(payload, h.height, h.width, quality)
        dpb.put(v, t, InterModel.reference(x_hat))
        return x_hat
    refs = temporal_references(dpb, v, p, 1 if kind == B_FUTURE_PACKET else 0)
    return inter.decompress(payload, dpb, v, t, h.height, h.width, quality, refs=refs,
                            frame_skip=header_frame_skip(h, h.codec_id),
                            picture_copy=header_picture_copy(h, h.codec_id),
                            key=key)


class KeyPictures:
    """The key picture of each view in the intra period being coded or decoded, as the buffer held it right after
    it was coded: a P or B picture may copy it (:data:`~mvcodec.models.inter.KEY_COPIED`) long after the buffer
    let it go.  Every picture of a period depends on its key picture through its references, so a decoder that
    reads a picture's dependency set has always decoded the key picture first.  ``enabled``: whether the file may
    copy them (the encoder's option; the decoder's :func:`header_key_copy`); when not, :meth:`of` is None."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._pictures: dict[int, DecodedPicture] = {}

    def note(self, dpb: DecodedPictureBuffer, v: int, p: PlannedPicture) -> None:
        """Keep picture ``p`` of view ``v`` from ``dpb`` if it is the period's key picture (an I picture)."""
        if p.type == "I":
            self._pictures[v] = dpb.get(v, p.frame)

    def of(self, v: int, p: PlannedPicture) -> DecodedPicture | None:
        """The key picture that P or B picture ``p`` of view ``v`` may copy (None for the key picture itself, and
        where key copy is not enabled)."""
        return None if p.type == "I" or not self.enabled else self._pictures.get(v)


class PacketIndex:
    """The container's index by (view, frame), one packet each (a second one is a BitstreamError; a missing one
    is the BitstreamError of the picture that needs it)."""

    def __init__(self, reader: MvcReader) -> None:
        self.reader = reader
        self._entries: dict[tuple[int, int], Any] = {}
        for e in reader.select():
            if (e.view, e.first_frame) in self._entries or e.frame_count != 1:
                raise BitstreamError(f"{reader.path}: the index has a second or multi-frame packet for view "
                                     f"{e.view} frame {e.first_frame}")
            self._entries[(e.view, e.first_frame)] = e

    def kind(self, v: int, t: int) -> int | None:
        e = self._entries.get((v, t))
        return None if e is None else e.kind

    def read(self, v: int, t: int) -> tuple[bytes, int]:
        """(payload, kind) of picture (v, t); a missing or damaged packet is a BitstreamError."""
        e = self._entries.get((v, t))
        if e is None:
            raise BitstreamError(f"{self.reader.path}: no packet for view {v} frame {t}")
        return self.reader.read_packet(e), e.kind


@register
class MlvcCodec(LearnedWeights[MlvcWeights], Codec):
    """The learned single-view inter codec behind the codec interface (module docstring)."""

    id = "mlvc"
    description = "learned P-frame codec (DCVC-TCM contexts + M-LVC multiple references), views coded on their own"
    default_qualities = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # cheapest first
    quality_help = ("rung of the gain ladder 0..Q-1 (Q = 6 by default) of the P and B pictures (the I pictures: "
                    "option key_offset); higher = more bits, better")
    options_help = (f"weights=ID (shipped weights, default {DEFAULT_WEIGHTS}), weights_file=PATH (.safetensors); "
                    f"ra: ra_gop=2..64 (hierarchical GOP, default {DEFAULT_RA_GOP}), b_reference=rd|past|future; "
                    "frame_skip=rd|off (a P or B picture's frame latent coded or skipped, the cheaper, default rd; "
                    "off: the files of earlier versions); key_offset=N|top (each intra period's I picture coded N "
                    f"rungs above the others, clamped, or at the top rung: default {DEFAULT_KEY_OFFSET}; 0: the "
                    "files of earlier versions); picture_copy=rd|nearest|off (with frame_skip=rd: a P or B picture may "
                    "be its reference or its key picture copied, the cheaper, default rd; nearest: its reference "
                    "only)")
    lossy_higher_quality_is = "higher"
    default_weights = DEFAULT_WEIGHTS
    weights_task = "inter"
    extra_options: tuple[str, ...] = ("ra_gop", "b_reference", "frame_skip", "picture_copy", "key_offset")

    def __init__(self, **options: Any) -> None:
        self.check_weights_options(options)
        self.ra_gop, self.b_reference = structure_options(options)
        self.frame_skip = choice_option(options, "frame_skip", FRAME_SKIP_MODES) == "rd"
        self.picture_copy, self.key_copy = picture_copy_option(options, self.frame_skip)
        self.key_offset = key_offset_option(options)
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
    def rungs(self, settings: EncodeSettings, weights: MlvcWeights) -> Rungs:
        """The rungs of the pictures (:class:`Rungs`) for ``settings.quality``, a rung of both models' ladders."""
        top = weights.top_rung
        quality = settings.quality
        if quality != int(quality) or not 0 <= int(quality) <= top:
            raise InputError(f"codec mlvc takes a quality rung in 0..{top}, got {quality}")
        return encoder_rungs(int(quality), top, self.key_offset, settings.structure, settings.gop)

    def config(self, settings: EncodeSettings) -> dict[str, Any]:
        w = self.weights()
        return header_config(w, self.rungs(settings, w), self.ra_gop if settings.structure == "ra" else None,
                             self.frame_skip, self.picture_copy, self.key_copy)

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        weights = self.weights()
        intra, inter = self.models(weights)
        rungs = self.rungs(settings, weights)
        gop = 1 if settings.structure == "intra" else settings.gop
        info = source.info
        acc = MetricAccumulator(ms_ssim=False)
        recon_hash = hashlib.sha256()
        est = {"intra": 0.0, "inter": 0.0}
        real = {"intra": 0, "inter": 0}
        symbols: dict[str, list[int]] = {}
        skipped = copied = key_copied = 0
        window = FrameWindow(source, chunk=2 * self.ra_gop)
        for v in range(info.views):
            for start, stop in periods(range(info.frames), gop, info.frames):
                plan = period_plan(start, stop, settings.structure, inter.cfg.references, self.ra_gop)
                refs = {(v, p.frame): [(v, r) for r in p.refs] for p in plan}
                releases = last_uses(list(refs), refs.__getitem__)
                dpb = DecodedPictureBuffer(len(plan))
                keys = KeyPictures(self.key_copy)
                pictures: dict[int, Any] = {}
                for i, p in enumerate(plan):
                    frame = window.frame(v, p.frame)
                    coded = code_single_view(intra, inter, dpb, v, p, to_tensor(frame), rungs.of(p),
                                             self.b_reference, self.frame_skip, self.picture_copy,
                                             keys.of(v, p))
                    keys.note(dpb, v, p)
                    skipped += coded.frame_skipped
                    copied += coded.picture_copied
                    key_copied += coded.key_copied
                    writer.write_packet(v, p.frame, 1, coded.payload, coded.kind)
                    pictures[p.frame] = to_uint8(coded.x_hat)
                    acc.add(v, frame, pictures[p.frame])
                    kind = "intra" if coded.kind == INTRA_PACKET else "inter"
                    est[kind] += coded.estimated_bits
                    real[kind] += 8 * len(coded.payload)
                    add_symbol_counts(symbols, coded.symbol_counts)
                    for key in releases.get(i, ()):
                        dpb.remove(*key)
                for t in range(start, stop):  # display order
                    recon_hash.update(pictures[t].tobytes())
        measured = acc.result()
        return {"weights": weights.id, "estimated_bits": est["intra"] + est["inter"],
                "real_bits": real["intra"] + real["inter"], "estimated_bits_inter": est["inter"],
                "real_bits_inter": real["inter"], "psnr_rgb_encoder": measured.psnr_rgb,
                "psnr_rgb_encoder_per_view": list(measured.per_view_psnr_rgb),
                "nonzero_symbol_share": nonzero_shares(symbols), "frame_latent_skipped": skipped,
                "pictures_copied": copied, "pictures_copied_from_key": key_copied,
                "reconstruction_sha256": recon_hash.hexdigest()}

    # ------------------------------------------------------------------------------------------ decode
    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Frame t of a view needs its intra picture and the P pictures up to t (module docstring)."""
        h = reader.header
        if h.codec_id != self.id:
            raise BitstreamError(f"file was made by codec {h.codec_id!r}, not {self.id!r}")
        weights = self.decoder_weights(h)
        check_stored_config(h.codec_config, "intra", IntraConfig.from_json, weights.intra_config, self.id, weights.id)
        check_stored_config(h.codec_config, "inter", InterConfig.from_stored, weights.inter_config, self.id,
                            weights.id)
        inter_cfg = weights.inter_config
        rungs = header_rungs(h, weights.top_rung)
        gop = 1 if h.structure == "intra" else h.gop
        ra_gop = header_ra_gop(h, self.id)
        intra, inter = self.models(weights)
        index = PacketIndex(reader)
        for v in views:
            for start, stop in periods(frames, gop, h.frames):
                plan = {p.frame: p for p in period_plan(start, stop, h.structure, inter_cfg.references, ra_gop)}
                wanted = range(max(frames.start, start), min(frames.stop, stop))
                yield from self._decode_period(index, (intra, inter), plan, v, wanted, rungs, skip_damaged)

    @staticmethod
    def _decode_period(index: PacketIndex, models: tuple[IntraModel, InterModel], plan: dict[int, PlannedPicture],
                       v: int, wanted: range, rungs: Rungs, skip_damaged: bool) -> Iterator[DecodedFrame | Skipped]:
        """Decode the dependency set of frames ``wanted`` of view ``v`` in the period's coding order ``plan``."""
        dpb = DecodedPictureBuffer(len(plan))
        keys = KeyPictures(header_key_copy(index.reader.header, index.reader.header.codec_id))

        def deps(key: tuple[int, int]) -> list[tuple[int, int]]:
            kind = index.kind(*key)
            return [] if kind is None else [(v, r) for r in temporal_refs(plan[key[1]], kind)]

        def decode_one(key: tuple[int, int]) -> np.ndarray:
            payload, kind = index.read(*key)
            p = plan[key[1]]
            x_hat = decode_single_view(*models, dpb, payload, kind, v, p, index.reader.header, rungs.of(p),
                                       keys.of(v, p))
            keys.note(dpb, v, p)
            return to_uint8(x_hat)

        keep = {(v, t) for t in wanted}
        needed = dependency_set(keep, deps)
        order = [(v, t) for t in plan if (v, t) in needed]
        decoded, lost = decode_pictures(order, deps, keep, decode_one, lambda key: dpb.remove(*key), skip_damaged)
        yield from emit([v], wanted, decoded, lost)
