"""``lmvc``: the learned multi-view codec (LMVC's structure with HDC's cross-view alignment): view 0 is an ``mlvc``
stream, every other view a dependent view coded with the decoded views of the same instant.

::

    encode, per intra period, time-major in the period's coding order (ld: display order; ra: hierarchical B,
    :mod:`mvcodec.codecs.learned_structure`): for each picture t of the plan, for v = 0 .. V-1 (camera order)
      v = 0:  exactly mlvc: I picture (kind 0), P picture (kind 1), B picture from past / future (kinds 4 / 5)
      v > 0:  side = InterViewRefs(view 0 at t, view v-1 at t), then DependentViewModel with
              I in the plan -> key picture, the cheaper (lambda * MSE + real bpp; option key_picture=rd, or
                               =interview / =intra) of: inter-view, reference = view 0's decoded picture at t
                               (kind 2), stored without motion (the view's temporal chain starts there); or an
                               intra picture (kind 0, as view 0's)
              P              -> the view's own P chain (kind 3)
              B              -> from its own past or future hierarchy reference, the cheaper of both as for
                                mlvc's B pictures (kinds 7 / 8; option b_reference); files of lmvc before this
                                have kind 6: the reference view 0's picture at t took
              P and B also coded as mlvc codes them, from the view's own references alone (kinds 1 / 4 / 5),
                                and the cheaper kept (option dependent_picture=rd, or =interview / =temporal),
                                its distortion weighed by the pictures coded from it (reference_weight)
              every P and B picture, of every view: its frame latent coded or skipped, the cheaper (mlvc's
                                frame-latent skip, option frame_skip; a dependent-model picture's distortion
                                weighed as above, one coded as mlvc codes it as mlvc does)
    decode  the dependency set of the frames asked for (through the index's kinds: a B picture's reference, a
            dependent picture's views 0 and v-1 at its instant), read per (view, frame), nothing else: in low
            delay frame t of view v needs frames G*floor(t/G) .. t of views 0 .. v.

Backward compatibility (LMVC): view 0's packets are those ``mlvc`` writes with the base weights, so
:func:`extract_base_view` copies them into an ``mlvc`` file that the single-view decoder reads alone.

Weights: option ``weights=ID`` (shipped, default ``lmvc-v11``: lmvc-v9 over ``mlvc-v5``) or ``weights_file=PATH``:
a safetensors file of the dependent-view model (task ``multiview``) whose metadata names its config and the SHA-256
of the ``mlvc`` weights it extends (found like any mlvc weights: the zoo, ``base_weights_file=PATH``,
``$MVCODEC_WEIGHTS``).  The header carries both hashes.  Structures: ``ld``, ``ra`` (options ``ra_gop``,
``b_reference`` as mlvc) and ``intra`` (every view intra, as mlvc).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load as load_safetensors

from mvcodec import zoo
from mvcodec.atomic import write_atomic
from mvcodec.bitstream import MvcReader, MvcWriter
from mvcodec.bitstream.header import MvcHeader
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, Skipped, register
from mvcodec.codecs.learned_inter import (
    B_FUTURE_PACKET,
    B_PAST_PACKET,
    INTER_PACKET,
    INTRA_PACKET,
    CodedPicture,
    KeyPictures,
    MlvcCodec,
    MlvcWeights,
    PacketIndex,
    Rungs,
    add_symbol_counts,
    b_candidates,
    cheapest,
    choice_option,
    code_single_view,
    decode_single_view,
    header_config,
    header_frame_skip,
    header_key_copy,
    header_picture_copy,
    header_ra_gop,
    header_rungs,
    nonzero_shares,
    skip_cost,
    temporal_references,
    temporal_refs,
)
from mvcodec.codecs.learned_structure import (
    PlannedPicture,
    decode_pictures,
    dependency_set,
    emit,
    last_uses,
    period_plan,
    periods,
    reference_weight,
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
from mvcodec.models.inter import InterModel
from mvcodec.models.intra import IntraModel
from mvcodec.models.multiview import DependentConfig, DependentViewModel, InterViewRefs, build_dependent
from mvcodec.train.checkpoint import weights_bytes

INTERVIEW_KEY_PACKET = 2
DEPENDENT_PACKET = 3
DEPENDENT_B_PACKET = 6  # a dependent view's B picture, from the reference its instant's view-0 picture took (read)
DEPENDENT_B_PAST_PACKET = 7  # a dependent view's B picture from its past reference
DEPENDENT_B_FUTURE_PACKET = 8  # ... from its future reference
DEPENDENT_KINDS = {"I": (INTERVIEW_KEY_PACKET,), "P": (DEPENDENT_PACKET,),
                   "B": (DEPENDENT_B_PAST_PACKET, DEPENDENT_B_FUTURE_PACKET, DEPENDENT_B_PACKET)}
"""The packet kinds of a dependent picture of each plan type coded with the other views; coded alone (option
``key_picture`` / ``dependent_picture``) it is an ``mlvc`` picture of the view, kind 0, 1, 4 or 5."""
SINGLE_VIEW_KINDS = (INTER_PACKET, B_PAST_PACKET, B_FUTURE_PACKET)
PACKET_NAMES = {INTRA_PACKET: "intra", INTER_PACKET: "inter", B_PAST_PACKET: "b_past", B_FUTURE_PACKET: "b_future",
                INTERVIEW_KEY_PACKET: "interview_key", DEPENDENT_PACKET: "dependent",
                DEPENDENT_B_PACKET: "dependent_b", DEPENDENT_B_PAST_PACKET: "dependent_b_past",
                DEPENDENT_B_FUTURE_PACKET: "dependent_b_future"}
DEFAULT_WEIGHTS = "lmvc-v11"
KEY_PICTURE_MODES = {"rd": ("interview", "alone"), "interview": ("interview",), "intra": ("alone",)}
"""Option ``key_picture``: which codings of a dependent view's key picture the encoder tries (it keeps the cheaper):
inter-view (kind 2) or alone, an intra picture (kind 0).  An inter-view key picture is as good as the motion path's
prediction from view 0 plus what the frame latent adds: where the views differ (occlusions, wide baselines,
exposure), an intra picture can cost less."""
DEPENDENT_PICTURE_MODES = {"rd": ("interview", "alone"), "interview": ("interview",), "temporal": ("alone",)}
"""Option ``dependent_picture``: which codings of a dependent view's P and B pictures the encoder tries (it keeps
the cheaper): the dependent model, its own view's references with the inter-view priors and contexts of views 0 and
v-1 at the instant (kinds 3 / 7 / 8), or alone as ``mlvc`` codes the picture from its own references (kinds 1 / 4 /
5, simulcast's coding of it).  As MV-HEVC's encoder chooses temporal or inter-view prediction per block, a picture
pays for inter-view coding only where it helps."""
DEFAULT_REFERENCE_WEIGHT = 1.0
"""Option ``reference_weight``: the choice between those codings of a dependent P or B picture weighs its
distortion by ``1 + A * n``, n the pictures of the hierarchy coded from it (:func:`~mvcodec.codecs.
learned_structure.reference_weight`; 0 in low delay, where every P picture has n = 0, so low delay is unchanged).
Random access, euroc 320x192, rung 2 (BENCHMARKS.md, "Random access: lmvc-v5 and the reference-weighted
decision"): with lmvc-v4 and A = 0 (a greedy decision) dependent pictures won 30 of 31 decisions and view 1 ended
0.49 dB below simulcast at 6% fewer bits; A = 1 gives 31.93 dB (simulcast 32.00) at 7% fewer bits, A = 3 31.98 dB
at 4% fewer."""


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
        config = DependentConfig.from_stored(meta.get("model_config", "null"))
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
        config = DependentConfig.from_stored(entry.config.get("dependent"))
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
    quality_help = MlvcCodec.quality_help
    options_help = (f"weights=ID (shipped, default {DEFAULT_WEIGHTS}), weights_file=PATH (.safetensors), "
                    "base_weights_file=PATH (the mlvc weights it extends, when not shipped); "
                    "ra: ra_gop=2..64, b_reference=rd|past|future, frame_skip=rd|off, picture_copy=rd|nearest|off, "
                    "key_offset=N|top (as mlvc; every view's key pictures); "
                    "key_picture=rd|interview|intra (a dependent view's key pictures: the cheaper of both, "
                    "default rd); dependent_picture=rd|interview|temporal (its P and B pictures: with the "
                    "inter-view model or alone as mlvc, the cheaper, default rd); reference_weight=A (that choice "
                    "weighs a picture's "
                    f"distortion by 1 + A * the pictures coded from it, default {DEFAULT_REFERENCE_WEIGHT:g})")
    lossy_higher_quality_is = "higher"
    default_weights = DEFAULT_WEIGHTS
    weights_task = "multiview"
    extra_options = ("base_weights_file", "ra_gop", "b_reference", "frame_skip", "picture_copy", "key_offset",
                     "key_picture", "dependent_picture", "reference_weight")

    def __init__(self, **options: Any) -> None:
        self.check_weights_options(options)
        super().__init__(**options)
        base_file = options.get("base_weights_file")
        structure = {k: options[k] for k in ("ra_gop", "b_reference", "frame_skip", "picture_copy", "key_offset")
                     if k in options}
        self._base = MlvcCodec(**({"weights_file": base_file} if base_file else {}), **structure)
        self._models: dict[str, DependentViewModel] = {}
        self.key_picture = choice_option(options, "key_picture", KEY_PICTURE_MODES)
        self.dependent_picture = choice_option(options, "dependent_picture", DEPENDENT_PICTURE_MODES)
        self.reference_weight = reference_weight_option(options)

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
        ra_gop = self._base.ra_gop if settings.structure == "ra" else None
        return {**header_config(base, self._base.rungs(settings, base), ra_gop, self._base.frame_skip,
                                self._base.picture_copy, self._base.key_copy),
                "base_sha256": base.sha256, "weights": w.id}

    def encode(self, source: ClipSource, settings: EncodeSettings, writer: MvcWriter) -> dict[str, Any]:
        weights = self.weights()
        base = self.base_weights(weights.base_sha256)
        models = self.models(weights, base)
        rungs = self._base.rungs(settings, base)
        gop = 1 if settings.structure == "intra" else settings.gop
        info = source.info
        acc = MetricAccumulator(ms_ssim=False)
        est: dict[int, float] = {}
        real: dict[int, int] = {}
        symbols: dict[str, list[int]] = {}
        per_view = [0] * info.views
        skipped = [0] * info.views  # P and B pictures whose frame latent was skipped, per view
        copied = [0] * info.views  # ... that were copied from their reference or their key picture
        key_copied = [0] * info.views  # ... from their key picture
        chosen: dict[str, int] = {}  # the dependent views' pictures per packet kind: the mode decisions
        window = FrameWindow(source, chunk=2 * self._base.ra_gop, blocks=2 * info.views)
        for start, stop in periods(range(info.frames), gop, info.frames):
            plan = {p.frame: p for p in period_plan(start, stop, settings.structure, models[1].cfg.references,
                                                     self._base.ra_gop)}
            order = [(v, t) for t in plan for v in range(info.views)]

            def deps(key: tuple[int, int], plan: dict[int, PlannedPicture] = plan) -> list[tuple[int, int]]:
                v, t = key  # what the encoder may reference: every candidate of a B picture
                own = [(v, r) for r in plan[t].refs]
                return own + ([(0, t), (v - 1, t)] if v > 0 and gop > 1 else [])

            releases = last_uses(order, deps)
            dpb = DecodedPictureBuffer(len(plan))
            keys = KeyPictures(self._base.key_copy)
            kinds: dict[tuple[int, int], int] = {}
            for i, (v, t) in enumerate(order):
                frame = window.frame(v, t)
                coded = self._code_picture(models, dpb, v, plan[t], gop, rungs.of(plan[t]), to_tensor(frame), kinds,
                                           keys.of(v, plan[t]))
                keys.note(dpb, v, plan[t])
                kinds[(v, t)] = coded.kind
                writer.write_packet(v, t, 1, coded.payload, coded.kind)
                acc.add(v, frame, to_uint8(coded.x_hat))
                est[coded.kind] = est.get(coded.kind, 0.0) + coded.estimated_bits
                real[coded.kind] = real.get(coded.kind, 0) + 8 * len(coded.payload)
                per_view[v] += 8 * len(coded.payload)
                skipped[v] += coded.frame_skipped
                copied[v] += coded.picture_copied
                key_copied[v] += coded.key_copied
                if v > 0:
                    chosen[PACKET_NAMES[coded.kind]] = chosen.get(PACKET_NAMES[coded.kind], 0) + 1
                add_symbol_counts(symbols, coded.symbol_counts)
                for key in releases.get(i, ()):
                    dpb.remove(*key)
        measured = acc.result()
        return {"weights": weights.id, "base_weights": base.id, "estimated_bits": sum(est.values()),
                "real_bits": sum(real.values()), "real_bits_per_view": per_view, "dependent_view_kinds": chosen,
                **{f"real_bits_{PACKET_NAMES[k]}": b for k, b in sorted(real.items())},
                **{f"estimated_bits_{PACKET_NAMES[k]}": b for k, b in sorted(est.items())},
                "psnr_rgb_encoder": measured.psnr_rgb,
                "psnr_rgb_encoder_per_view": list(measured.per_view_psnr_rgb),
                "nonzero_symbol_share": nonzero_shares(symbols), "frame_latent_skipped_per_view": skipped,
                "pictures_copied_per_view": copied, "pictures_copied_from_key_per_view": key_copied}

    def _code_picture(self, models: tuple[IntraModel, InterModel, DependentViewModel], dpb: DecodedPictureBuffer,
                      v: int, p: PlannedPicture, gop: int, q: int, x: torch.Tensor,
                      kinds: dict[tuple[int, int], int], key: DecodedPicture | None = None) -> CodedPicture:
        """Code picture (v, p.frame) at rung ``q`` (module docstring); ``kinds``: the packet kinds coded so far;
        ``key``: the view's key picture of the period, which a P or B picture may copy (files with key copy)."""
        intra, inter, dep = models
        if gop == 1 or v == 0:
            return code_single_view(intra, inter, dpb, v, p, x, q, self._base.b_reference, self._base.frame_skip,
                                    self._base.picture_copy, key)
        t = p.frame
        weight = reference_weight(p, self.reference_weight)
        cost = skip_cost(x, q, weight) if self._base.frame_skip else None

        def code_dependent(kind: int) -> CodedPicture:
            side, refs = self._dependent_inputs(dpb, v, p, kind, kinds[(0, t)])
            payload, x_hat = dep.compress(x, dpb, v, t, q, refs=refs, side=side, skip_cost=cost,
                                          copy=self._base.picture_copy, key=key)
            if kind == INTERVIEW_KEY_PACKET:
                dpb.put(v, t, dpb.get(v, t).without_motion())  # the view's temporal chain starts here
            return CodedPicture(payload, x_hat, kind, dep.last_estimated_bits,
                                {f"dependent_{k}": c for k, c in dep.last_symbol_counts.items()},
                                dep.last_frame_skipped, dep.last_picture_copied, dep.last_key_copied)

        with_views = {"I": [INTERVIEW_KEY_PACKET], "P": [DEPENDENT_PACKET],
                      "B": [DEPENDENT_KINDS["B"][c] for c in b_candidates(self._base.b_reference)]}[p.type]
        coders = {"interview": [partial(code_dependent, kind) for kind in with_views],
                  "alone": [partial(code_single_view, intra, inter, dpb, v, p, x, q, self._base.b_reference,
                                    self._base.frame_skip, self._base.picture_copy, key)]}
        modes = KEY_PICTURE_MODES[self.key_picture] if p.type == "I" else \
            DEPENDENT_PICTURE_MODES[self.dependent_picture]
        return cheapest(x, q, dpb, v, t, [code for mode in modes for code in coders[mode]], weight)

    @staticmethod
    def _dependent_inputs(dpb: DecodedPictureBuffer, v: int, p: PlannedPicture, kind: int,
                          base_kind: int) -> tuple[InterViewRefs, list[DecodedPicture]]:
        """(inter-view side data, temporal references) of dependent picture (v, p.frame) coded as packet ``kind``
        (``base_kind``: view 0's at the same instant, which a kind-6 B picture follows); a kind that does not fit
        the plan is a :class:`BitstreamError`."""
        t = p.frame
        if kind not in DEPENDENT_KINDS[p.type]:
            raise BitstreamError(f"view {v} frame {t} is a dependent {p.type} picture of the coding structure, its "
                                 f"packet has kind {kind}")
        base = dpb.get(0, t)
        side = InterViewRefs(base, dpb.get(v - 1, t))
        if kind == INTERVIEW_KEY_PACKET:
            return side, [base.without_motion()]
        candidate = dependent_b_candidate(kind, base_kind) if p.type == "B" else 0
        return side, temporal_references(dpb, v, p, candidate)

    # ------------------------------------------------------------------------------------------ decode
    def decode(self, reader: MvcReader, views: Sequence[int], frames: range, skip_damaged: bool = False,
               ) -> Iterator[DecodedFrame | Skipped]:
        """Frame t of view v needs its dependency set (module docstring), read through the index's kinds."""
        h = reader.header
        if h.codec_id != self.id:
            raise BitstreamError(f"file was made by codec {h.codec_id!r}, not {self.id!r}")
        weights = self.decoder_weights(h)
        cfg = h.codec_config
        base_sha = cfg.get("base_sha256")
        if base_sha != weights.base_sha256:
            raise BitstreamError(f"lmvc header's base weights {str(base_sha)[:16]} are not those weights "
                                 f"{weights.id} extend")
        check_stored_config(cfg, "dependent", DependentConfig.from_stored, weights.config, self.id, weights.id)
        base = self.base_weights(base_sha)
        models = self.models(weights, base)
        rungs = header_rungs(h, base.top_rung)
        gop = 1 if h.structure == "intra" else h.gop
        ra_gop = header_ra_gop(h, self.id)
        index = PacketIndex(reader)
        for start, stop in periods(frames, gop, h.frames):
            plan = {p.frame: p for p in period_plan(start, stop, h.structure, models[1].cfg.references, ra_gop)}
            wanted = range(max(frames.start, start), min(frames.stop, stop))
            yield from self._decode_period(index, models, plan, views, wanted, rungs, skip_damaged)

    def _decode_period(self, index: PacketIndex, models: tuple[IntraModel, InterModel, DependentViewModel],
                       plan: dict[int, PlannedPicture], views: Sequence[int], wanted: range, rungs: Rungs,
                       skip_damaged: bool) -> Iterator[DecodedFrame | Skipped]:
        """Decode the dependency set of frames ``wanted`` of ``views`` in the period's coding order (time-major);
        yield them view by view.  A damaged packet costs exactly the pictures that depend on it."""
        h = index.reader.header
        dpb = DecodedPictureBuffer(len(plan))
        keys = KeyPictures(header_key_copy(h, self.id))

        def deps(key: tuple[int, int]) -> list[tuple[int, int]]:
            v, t = key
            kind = index.kind(v, t)
            if kind is None or kind == INTRA_PACKET:
                return []
            if kind in SINGLE_VIEW_KINDS:
                return [(v, r) for r in temporal_refs(plan[t], kind)]
            own: tuple[int, ...] = ()
            if kind == DEPENDENT_PACKET:
                own = plan[t].refs
            elif kind in DEPENDENT_KINDS["B"] and plan[t].type == "B":
                own = (plan[t].refs[dependent_b_candidate(kind, _kind_or(index.kind(0, t), -1))],)
            return [(v, r) for r in own] + [(0, t), (v - 1, t)]

        def decode_one(key: tuple[int, int]) -> np.ndarray:
            v, p = key[0], plan[key[1]]
            x_hat = self._decode_picture(models, dpb, index, v, p, rungs.of(p), keys.of(v, p))
            keys.note(dpb, v, p)
            return to_uint8(x_hat)

        keep = {(v, t) for v in views for t in wanted}
        needed = dependency_set(keep, deps)
        order = [(v, t) for t in plan for v in range(h.views) if (v, t) in needed]
        decoded, lost = decode_pictures(order, deps, keep, decode_one, lambda key: dpb.remove(*key), skip_damaged)
        yield from emit(views, wanted, decoded, lost)

    def _decode_picture(self, models: tuple[IntraModel, InterModel, DependentViewModel], dpb: DecodedPictureBuffer,
                        index: PacketIndex, v: int, p: PlannedPicture, quality: int,
                        key: DecodedPicture | None = None) -> torch.Tensor:
        """Picture (v, p.frame) at rung ``quality`` from its packet (read here; ``key``: the view's key picture of
        the period where the header allows key copies); puts it into ``dpb``."""
        intra, inter, dep = models
        h = index.reader.header
        t = p.frame
        payload, kind = index.read(v, t)
        if v == 0 or h.structure == "intra" or h.gop == 1 or kind == INTRA_PACKET or kind in SINGLE_VIEW_KINDS:
            return decode_single_view(intra, inter, dpb, payload, kind, v, p, h, quality, key)
        side, refs = self._dependent_inputs(dpb, v, p, kind, _kind_or(index.kind(0, t), -1))
        x_hat = dep.decompress(payload, dpb, v, t, h.height, h.width, quality, refs=refs, side=side,
                               frame_skip=header_frame_skip(h, self.id),
                               picture_copy=header_picture_copy(h, self.id),
                               key=key)
        if kind == INTERVIEW_KEY_PACKET:
            dpb.put(v, t, dpb.get(v, t).without_motion())
        return x_hat


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
                           header_config(base, header_rungs(h, base.top_rung), header_ra_gop(h, LmvcCodec.id)
                                         if h.structure == "ra" else None, header_frame_skip(h, LmvcCodec.id),
                                         header_picture_copy(h, LmvcCodec.id), header_key_copy(h, LmvcCodec.id)),
                           base.sha256,
                           h.view_names[:1], h.cameras[:1] if h.cameras else None)
        entries = reader.select(view=0)
        with MvcWriter(dst, header) as writer:
            for e in entries:
                writer.write_packet(0, e.first_frame, e.frame_count, reader.read_packet(e), e.kind)
    return len(entries)


def reference_weight_option(options: dict[str, Any]) -> float:
    """Option ``reference_weight`` (:data:`DEFAULT_REFERENCE_WEIGHT`): a number >= 0, else a one-line
    :class:`InputError`."""
    value = options.get("reference_weight", DEFAULT_REFERENCE_WEIGHT)
    try:
        weight = float(str(value))
    except ValueError:
        weight = -1.0
    if not 0.0 <= weight < float("inf"):
        raise InputError(f"reference_weight must be a number >= 0, got {value!r}")
    return weight


def dependent_b_candidate(kind: int, base_kind: int) -> int:
    """Which reference (0 past, 1 future) a dependent B picture of packet ``kind`` uses; kind 6 (older files)
    follows view 0's picture of the same instant (``base_kind``)."""
    if kind == DEPENDENT_B_PACKET:
        if base_kind not in (B_PAST_PACKET, B_FUTURE_PACKET):
            raise BitstreamError(f"a kind-6 dependent B picture needs view 0's B picture, whose kind is {base_kind}")
        return 0 if base_kind == B_PAST_PACKET else 1
    return 0 if kind == DEPENDENT_B_PAST_PACKET else 1


def _kind_or(kind: int | None, default: int) -> int:
    return default if kind is None else kind
