"""The training task ``multiview``: the dependent-view model (:mod:`mvcodec.models.multiview`) on multi-view clips,
with view 0 coded by the frozen single-view codec it extends.

::

    cfg.model = {"base": "zoo:mlvc-v1" | PATH of an mlvc weights file,  + DependentConfig's inter-view fields}
        --build_model--> DependentViewModel started from the base's inter weights (the single-view part of its
                         config is the base's), inter-view branches at zero: it starts as the single-view codec
    batch["frames"] (B, V, T, 3, H, W), V >= 2, coded as the codec codes one intra period of T = stage.frames
    frames (:func:`mvcodec.codecs.learned_structure.period_plan`), picture by picture in coding order, views
    0 .. V-1 at each instant, the references taken from a decoded picture buffer as the encoder takes them:
        stage option structure = "ld" (default), "ra" (one hierarchical GOP of T-1 frames) or "mixed" (one of
                                 them per step): :mod:`mvcodec.train.structure`; a B picture's reference
                                 (past or future) is drawn per picture, the same for every view
        view 0:   the frozen single-view codec (I picture by the base's intra model, P/B pictures by the base's
                  inter model, rounded latents as in coding, no gradient)
        view v>0: the I instant: stage option key_picture = "interview" (default): a P picture whose reference is
                  view 0's decoded picture at t = 0 (inter-view key picture; kept without its motion, so the
                  view's temporal chain starts there as after an I picture); = "intra": the view's own I picture
                  by the base's intra model (no loss term: what lmvc's encoder chooses where the views differ, as
                  on real stereo, so the P pictures train on the chains they will code)
                  P / B pictures: the dependent model from the view's own references, side = InterViewRefs(view
                  0 at t, view v-1 at t); gradients kept across the view's pictures
        loss = mean over the dependent pictures of lambda * D + bpp
    finalize: DependentViewModel.update()

Default schedule (HDC design, digest hdc.md "Training"; LMVC digest "Loss and training schedule"): the inter-view
entropy priors first (motion and frame priors, HDC-EM; with inter-view key pictures, which the encoder may
still choose), then the inter-view motion/context and HDC-FER modules with those, then everything, both over
one 9-frame intra period from the dependent view's own I picture, low delay or random access drawn per step
(:data:`CHAINS`: what lmvc-v5 and lmvc-v6 were trained on).  lmvc-v3's modules, trained on one P picture after
an inter-view key, coded real chains worse than the view alone; lmvc-v4's, on 3 P pictures from an intra key,
gained in low delay but not in random access (its B pictures predict from 1-8 frames away); lmvc-v5, 240 more
steps on the 9-frame periods of both structures, gained in both; lmvc-v6, 400 steps of the "all" stage on top
(the dependent model's own copy of the single-view networks trains too), 12-15% fewer bits again, where 400 more
steps of the modules alone gave nothing (BENCHMARKS.md, "lmvc-v6"); lmvc-v7, 320 more steps of the "all" stage
with ``model.iv_context`` and ``model.hdc_fer`` false, gained again on real stereo where the same steps with
them gained less (BENCHMARKS.md, "lmvc-v7"); lmvc-v8, 400 more on new batches, gained mostly in random access
(BENCHMARKS.md, "lmvc-v8"); lmvc-v9, the same 400 steps with ``model.hdc_shift`` false, gained more on real stereo
(BENCHMARKS.md, "lmvc-v9").  The schedule's trainable prefixes that name a branch the model's
config switched off (a None attribute of the model) are skipped.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from mvcodec.codecs.learned_inter import temporal_references
from mvcodec.errors import CodecError, InputError
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter import InterModel
from mvcodec.models.intra import IntraModel
from mvcodec.models.multiview import DependentConfig, DependentViewModel, InterViewRefs, from_single_view
from mvcodec.train.rd_loss import average_terms, rd_loss
from mvcodec.train.structure import check_structure, draw_candidate, training_plan
from mvcodec.train.task import Stage, check_option_names, register_task, unwrap

KEY_PICTURES = ("interview", "intra")
CHAINS = {"key_picture": "intra", "structure": "mixed"}
"""The default schedule's chains after the priors stage: one 9-frame intra period from the dependent view's own I
picture, low delay or random access (GOP 8) drawn per step, as lmvc's encoder codes real stereo (BENCHMARKS.md,
"lmvc-v5", "lmvc-v6": trained so on top of lmvc-v4, the dependent view gained in both structures)."""
PRIORS = ("iv_mv_down.", "iv_mv_prior.", "iv_pyramid.", "iv_prior_down.", "iv_prior.", "hdc_em.")
MODULES = PRIORS + ("iv_mv_enc.", "iv_mv_dec.", "iv_predict.", "hdc_fer.")


def load_base(spec: str) -> tuple[IntraModel, InterModel, str]:
    """The frozen single-view codec ``spec`` ("zoo:ID" or an mlvc weights file): (intra, inter, its sha256)."""
    from mvcodec.codecs.learned_inter import read_weights_file, zoo_weights

    try:
        weights = zoo_weights(spec[4:]) if spec.startswith("zoo:") else read_weights_file(spec)
        intra, inter = weights.models()
    except CodecError as exc:
        raise InputError(f"multiview task: base weights {spec!r}: {exc}") from None
    return intra, inter, weights.sha256


@register_task("multiview")
class MultiviewTask:
    """The ``multiview`` task (module docstring)."""

    name = "multiview"

    def __init__(self) -> None:
        self._base: tuple[IntraModel, InterModel] | None = None

    def build_model(self, model_cfg: dict[str, Any]) -> nn.Module:
        cfg = dict(model_cfg)
        spec = cfg.pop("base", None)
        if not isinstance(spec, str):
            raise InputError("multiview task: model.base must name the single-view weights (zoo:ID or a file)")
        intra, inter, _ = load_base(spec)
        for model in (intra, inter):
            model.requires_grad_(False)
        self._base = (intra, inter)
        dep_cfg = DependentConfig.from_json({**inter.cfg.to_json(), **cfg})
        return from_single_view(dep_cfg, inter)

    def dataset(self, data_cfg: dict[str, Any], split: Literal["train", "val"]) -> Dataset:
        from mvcodec.data.datasets import build_dataset
        return build_dataset(data_cfg, split)

    def default_stages(self) -> list[Stage]:
        return [
            Stage(name="priors", steps=20_000, lr=1e-4, trainable=PRIORS, frames=2),
            Stage(name="modules", steps=40_000, lr=1e-4, trainable=MODULES, frames=9, options=dict(CHAINS)),
            Stage(name="all", steps=40_000, lr=5e-5, frames=9, options=dict(CHAINS)),
        ]

    def check_stage(self, stage: Stage) -> None:
        check_option_names("multiview", stage, ("key_picture", "structure"))
        key_picture(stage)
        check_structure(self.name, stage)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: Stage,
             lmbda: torch.Tensor) -> dict[str, torch.Tensor]:
        clips = batch.get("frames")
        if clips is None or clips.dim() != 6 or clips.shape[1] < 2 or clips.shape[2] < stage.frames:
            raise InputError(f"multiview task: batch['frames'] must be (B, V>=2, T>={stage.frames}, 3, H, W), got "
                             f"{None if clips is None else tuple(clips.shape)}")
        if self._base is None:
            raise InputError("multiview task: build_model (which loads the base weights) must run first")
        intra, base = (m.to(clips.device).eval() for m in self._base)
        quality = batch["quality"].to(clips.device)
        lmbda = torch.as_tensor(lmbda, device=clips.device).expand(clips.shape[0])
        intra_key = key_picture(stage) == "intra"
        dep = unwrap(model)
        dpb = DecodedPictureBuffer(stage.frames)
        terms = []
        for p in training_plan(self.name, stage, dep.cfg.references):
            candidate = draw_candidate(p)  # the same for every view
            t = p.frame
            for v in range(clips.shape[1]):
                x = clips[:, v, t]
                if p.type == "I" and (v == 0 or intra_key):
                    dpb.put(v, t, DecodedPicture(intra.reconstruct(x, quality)))
                    continue
                refs = [dpb.get(0, t).without_motion()] if p.type == "I" else temporal_references(dpb, v, p, candidate)
                if v == 0:
                    with torch.no_grad():  # the frozen base, rounded latents as in coding
                        out = base(x, refs, quality.clamp(max=base.cfg.qualities - 1))
                    dpb.put(v, t, InterModel._picture(out))
                    continue
                side = InterViewRefs(dpb.get(0, t), dpb.get(v - 1, t))
                out = model(x, refs, quality.clamp(max=dep.cfg.qualities - 1), side=side)
                terms.append(rd_loss(out["x_hat"], x, out["bits"], lmbda, stage.distortion))
                picture = InterModel._picture(out)
                # an inter-view key picture starts the view's temporal chain, as an intra picture does
                dpb.put(v, t, picture.without_motion() if p.type == "I" else picture)
        out = average_terms(terms)
        out["images"] = torch.tensor(float(clips.shape[0] * len(terms)))
        return out

    def finalize(self, model: nn.Module) -> None:
        inner = unwrap(model)
        if not isinstance(inner, DependentViewModel):
            raise TypeError(f"multiview task: finalize expects a DependentViewModel, got {type(inner).__name__}")
        inner.update()


def key_picture(stage: Stage) -> str:
    """Stage option ``key_picture``: how the dependent view's first picture is coded (module docstring)."""
    value = stage.options.get("key_picture", "interview")
    if value not in KEY_PICTURES:
        raise InputError(f"multiview task: stage {stage.name} has key_picture {value!r} (choose from "
                         f"{', '.join(KEY_PICTURES)})")
    if value == "intra" and stage.frames < 2:
        raise InputError(f"multiview task: stage {stage.name} starts each chain from an I picture (key_picture "
                         f"intra), so it needs frames >= 2 for a P picture to train on")
    return value
