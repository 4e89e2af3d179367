"""The training task ``multiview``: the dependent-view model (:mod:`mvcodec.models.multiview`) on multi-view clips,
with view 0 coded by the frozen single-view codec it extends.

::

    cfg.model = {"base": "zoo:mlvc-v1" | PATH of an mlvc weights file,  + DependentConfig's inter-view fields}
        --build_model--> DependentViewModel started from the base's inter weights (the single-view part of its
                         config is the base's), inter-view branches at zero: it starts as the single-view codec
    batch["frames"] (B, V, T, 3, H, W), V >= 2:
        view 0:   I picture by the base's intra model, P pictures 1..T-1 by the base's inter model (frozen,
                  rounded latents as in coding): the decoded pictures (frame, feature, motion, latents) at each t
        view v>0: t = 0: stage option key_picture = "interview" (default): a P picture whose reference is view
                  0's decoded picture at t = 0 (inter-view key picture; kept without its motion, so the view's
                  temporal chain starts there as after an I picture); = "intra": the view's own I picture by the
                  base's intra model (no loss term: what lmvc's encoder chooses where the views differ, as on
                  real stereo, so the P pictures train on the chains they will code)
                  t > 0: a P picture with its own previous decoded pictures as references
                  side = InterViewRefs(view 0 at t, view v-1 at t); gradients kept across the view's pictures
        loss = mean over the dependent pictures of lambda * D + bpp
    finalize: DependentViewModel.update()

Default schedule (HDC design, digest hdc.md "Training"; LMVC digest "Loss and training schedule"): the inter-view
entropy priors first (motion and frame priors, HDC-EM; with inter-view key pictures, which the encoder may
still choose), then the inter-view motion/context and HDC-FER modules with those, then everything, both over
chains of 3 P pictures from the dependent view's own I picture (key_picture intra: what lmvc-v4 was trained on,
and what made its inter-view coding pay on real stereo, BENCHMARKS.md "lmvc-v4"; lmvc-v3's modules, trained on
one P picture after an inter-view key, coded real chains worse than the view alone).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from mvcodec.errors import CodecError, InputError
from mvcodec.models.dpb import DecodedPicture
from mvcodec.models.inter import InterModel
from mvcodec.models.intra import IntraModel
from mvcodec.models.multiview import DependentConfig, DependentViewModel, InterViewRefs, from_single_view
from mvcodec.train.rd_loss import average_terms, rd_loss
from mvcodec.train.task import Stage, check_option_names, register_task

KEY_PICTURES = ("interview", "intra")
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
            Stage(name="modules", steps=40_000, lr=1e-4, trainable=MODULES, frames=4, options={"key_picture": "intra"}),
            Stage(name="all", steps=40_000, lr=5e-5, frames=4, options={"key_picture": "intra"}),
        ]

    def check_stage(self, stage: Stage) -> None:
        check_option_names("multiview", stage, ("key_picture",))
        key_picture(stage)

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
        views = [self._base_view(intra, base, clips[:, 0, : stage.frames], quality)]
        intra_key = key_picture(stage) == "intra"
        terms = []
        for v in range(1, clips.shape[1]):
            pictures, refs = [], None
            for t in range(stage.frames):
                x = clips[:, v, t]
                if t == 0 and intra_key:
                    pictures.append(DecodedPicture(intra.reconstruct(x, quality)))
                    refs = pictures[:1]
                    continue
                side = InterViewRefs(views[0][t], views[v - 1][t])
                refs = [_without_motion(views[0][t])] if t == 0 else refs
                out = model(x, refs, quality.clamp(max=_inner(model).cfg.qualities - 1), side=side)
                terms.append(rd_loss(out["x_hat"], x, out["bits"], lmbda, stage.distortion))
                picture = InterModel._picture(out)
                if t == 0:  # the key picture starts the view's temporal chain, as an intra picture does
                    picture = _without_motion(picture)
                pictures.append(picture)
                refs = [picture] if t == 0 else [picture, *refs][: _inner(model).cfg.references]
            views.append(pictures)
        out = average_terms(terms)
        out["images"] = torch.tensor(float(clips.shape[0] * len(terms)))
        return out

    @torch.no_grad()
    def _base_view(self, intra: IntraModel, base: InterModel, frames: torch.Tensor,
                   quality: torch.Tensor) -> list[DecodedPicture]:
        """View 0's decoded pictures (I, then P) by the frozen single-view codec, rounded as in coding."""
        pictures = [DecodedPicture(intra.reconstruct(frames[:, 0], quality))]
        for t in range(1, frames.shape[1]):
            out = base(frames[:, t], pictures[::-1][: base.cfg.references], quality.clamp(max=base.cfg.qualities - 1))
            pictures.append(InterModel._picture(out))
        return pictures

    def finalize(self, model: nn.Module) -> None:
        inner = _inner(model)
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


def _inner(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # unwrap DistributedDataParallel


def _without_motion(picture: DecodedPicture) -> DecodedPicture:
    """A picture of another view used as a reference: its motion belongs to its own view's time axis."""
    return DecodedPicture(picture.frame, picture.feature, None, picture.latents)
