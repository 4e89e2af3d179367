"""The training task ``inter``: the single-view P-picture codec (:mod:`mvcodec.models.inter`) on short clips.

::

    cfg.model (InterConfig fields)  --build_model-->  InterModel
    cfg.data  --dataset-->  mvcodec.data.datasets.build_dataset(data, split): items {"frames": (V, T, 3, H, W),
                            "flow": (V, T-1, 2, H, W) forward flow t -> t+1 (synthetic data only)}
    batch["frames"] (B, V, T, ...) --each view is a sequence--> x (B*V, stage.frames, 3, H, W)   (H, W: 64k)
    I picture: the first frame, coded by a frozen intra model (stage option "intra_weights": a .safetensors of
               mvc-intra, or "zoo:ID" for shipped weights such as zoo:mvc-intra-v1) or, without one, the original
               plus Gaussian noise (option "i_frame_noise", 0.01)
    stage option "structure": "ld" (default: I, then the cascade of P pictures 1 .. T-1), "ra" (one hierarchical
               GOP of T-1 frames, T = 3, 5, 9, ..: the P anchor T-1 frames from the I picture, then B pictures each
               from one of its two references, drawn per picture) or "mixed" (one of them per step): the pictures
               of one intra period coded in the codec's order from the references the encoder gives them
               (:mod:`mvcodec.train.structure`; mlvc's random access predicts from 1 .. T-1 frames away)
    stage option "loss":
        "flow"    flow warm-start: mean end-point error against the ground-truth backward flow (when the batch
                  has "flow") + photometric warping MSE, on the encoder's FlowNet alone
        "motion"  motion coding: lambda * MSE(ref warped by the decoded motion, x) + motion bpp, cascaded over
                  the stage's frames (the prediction is the next reference, so MV prediction sees decoded MVs);
                  stage option "flow_target" w (default 0) adds w * the end-point error of the decoded motion
                  against the encoder's flow estimate (detached): the motion coder's warm start, logged
                  "epe_motion" (the warping term alone did not teach a fresh motion coder to carry any motion)
        "reconstruction"  lambda * D(x_hat, x) alone, no rate (DCVC-TCM's "reconstruction without rate"): the
                  contextual decoder must learn to read the frame latent before any rate pressure exists;
                  without this stage it builds the picture from the temporal contexts alone and the encoder
                  collapses to all-zero latents (BENCHMARKS.md, "rate collapse")
        "context" lambda * D(x_hat, x) + the frame latent's bpp (z, y; DCVC-TCM's "adding context rate"): the
                  motion terms are left out, for a stage with the motion networks frozen
        "rd"      the whole codec: lambda * D(x_hat, x) + bpp per P picture, averaged over the stage's P pictures
                  with gradients across them (the cascaded loss; frames = 2 is a single P picture)
    Every loss but "flow" is cascaded the same way over the stage's frames; the logged "bpp" is always the
    whole picture's estimate, whatever enters the loss, and "psnr_prediction" (all but "motion") the PSNR of the
    motion-compensated prediction alone: psnr - psnr_prediction is what the frame coder adds.
    finalize: InterModel.update()  (integer tables of both factorized priors)

Default schedule (data, :meth:`InterTask.default_stages`): the staged training of DCVC-TCM and M-LVC (digests
dcvc_b_tcm.md "Loss and training schedule", mlvc.md "step-by-step"): flow warm-start, motion coding (the flow
net frozen), reconstruction without rate and then with the frame rate (motion frozen), the whole codec on one P
picture, then the cascade over 4 P pictures (1, 2, 3, 3 references).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from mvcodec.codecs.learned_inter import temporal_references
from mvcodec.errors import CodecError, InputError
from mvcodec.layers.warp import warp
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter import InterConfig, InterModel, TrainCoder, build_inter
from mvcodec.models.intra import IntraModel
from mvcodec.train.rd_loss import average_terms, mean_psnr, rd_loss
from mvcodec.train.structure import check_structure, draw_candidate, training_plan
from mvcodec.train.task import Stage, check_option_names, register_task, unwrap

MOTION_CODER_PARAMS = ("motion.", "mv_predictor.", "mv_refiner.", "mv_gain", "mv_inv_gain", "mv_entropy_bottleneck.")
"""What the "motion" stage trains: the motion coder, with the flow net frozen.  Trained with it, the flow net
shrank to zero flow within the stage (its warping error back at the unmoved reference's, from a tenth of it
after the flow warm-start): a fresh motion coder cannot yet carry the flow, so the rate term is the only gradient
that reaches the flow net, and it asks for no motion (BENCHMARKS.md, "The flow net never learned").  The flow net
joins again in the whole-codec stages, where the distortion reaches it through a motion coder that works."""
FRAME_PARAMS = ("context.", "ctx_enc.", "ctx_dec.", "h_a.", "h_s.", "temporal_prior.", "prior_fusion.", "refiner.",
                "to_rgb.", "gain", "inv_gain", "entropy_bottleneck.")
"""What the "reconstruction" and "context" stages train: everything after the motion (the flow net and
MOTION_CODER_PARAMS frozen)."""
FLOW_TARGET = 20.0
"""The default motion stage's ``flow_target`` weight.  At 1 the rate term won: a fresh motion coder's decoded motion
stayed at zero (end-point error 2.7 -> 2.65 px in 100 steps) while its rate fell; at 20 the error fell 2.64 ->
0.32 px in 400 steps and the prediction rose from 18.7 to 26.7 dB (BENCHMARKS.md, "The flow net never learned")."""
LOSSES = ("flow", "motion", "reconstruction", "context", "rd")
RATE = {"motion": "bits_motion", "reconstruction": None, "context": "bits_frame", "rd": "bits"}
"""Which estimated bits each loss charges (None: no rate term)."""


def sequences(batch: dict[str, torch.Tensor], frames: int, lmbda: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(x (S, frames, 3, H, W), quality (S,), lmbda (S,), flow (S, frames-1, 2, H, W) or None)``, S = B*V:
    every view of every item is one sequence, cut to its first ``frames`` frames."""
    clips = batch.get("frames")
    if clips is None or clips.dim() != 6 or clips.shape[3] != 3:
        raise InputError(f"inter task: batch['frames'] must be (B, V, T, 3, H, W), got "
                         f"{None if clips is None else tuple(clips.shape)}")
    if clips.shape[2] < frames:
        raise InputError(f"inter task: the stage needs {frames} frames per sequence, the data gives {clips.shape[2]}")
    views = clips.shape[1]
    quality = batch["quality"].to(clips.device).repeat_interleave(views)
    lmbda = torch.as_tensor(lmbda, device=clips.device).expand(clips.shape[0]).repeat_interleave(views)
    flow = batch.get("flow")
    if flow is not None:
        flow = flow[:, :, : frames - 1].flatten(0, 1)
    return clips[:, :, :frames].flatten(0, 1), quality, lmbda, flow


OPTIONS = ("loss", "flow_target", "decoder_quantization", "intra_weights", "i_frame_noise", "structure")
"""The stage options this task reads (module docstring)."""
I_FRAME_NOISE = 0.01
"""Default of option ``i_frame_noise``: the noise of the stand-in I picture when no ``intra_weights`` are given."""


def loss_kind(stage: Stage) -> str:
    """Stage option ``loss`` (one of :data:`LOSSES`, default "rd"); every loss needs ``frames >= 2``."""
    kind = stage.options.get("loss", "rd")
    if kind not in LOSSES:
        raise InputError(f"inter task: stage {stage.name} has loss {kind!r} (choose from {', '.join(LOSSES)})")
    if stage.frames < 2:
        raise InputError(f"inter task: stage {stage.name} needs frames >= 2 (an I picture and a P picture)")
    return kind


def decoder_quantization(stage: Stage) -> str:
    """Stage option ``decoder_quantization``: "ste" (default: the decoder sees round(y)), "noise" (y + U(-1/2,
    1/2) for every latent) or "frame-noise" (for the frame latent only; :class:`~mvcodec.models.inter.TrainCoder`)."""
    mode = stage.options.get("decoder_quantization", "ste")
    if mode not in TrainCoder.DECODER_MODES:
        raise InputError(f"stage {stage.name}: decoder_quantization is one of {', '.join(TrainCoder.DECODER_MODES)}, "
                         f"not {mode!r}")
    return mode


def nonnegative_option(stage: Stage, name: str, default: float) -> float:
    """Stage option ``name``, a number >= 0 (``default`` when absent); anything else is a one-line InputError."""
    value = stage.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InputError(f"stage {stage.name}: {name} is a number >= 0, not {value!r}")
    return float(value)


def flow_target(stage: Stage) -> float:
    """Stage option ``flow_target``: the weight (a number >= 0, default 0) of the motion loss's flow term."""
    return nonnegative_option(stage, "flow_target", 0.0)


def charged_bits(out: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """The estimated bits ``(S,)`` that the loss ``kind`` charges for one P picture's :meth:`InterModel.forward`
    output (:data:`RATE`; zeros for "reconstruction")."""
    name = RATE[kind]
    if name is None:
        return torch.zeros_like(out["bits"])
    if name == "bits_frame":
        return out["bits"] - out["bits_motion"]
    return out[name]


def flow_target_loss(outs: list[dict[str, torch.Tensor]], weight: float,
                     loss: torch.Tensor) -> dict[str, torch.Tensor]:
    """The "motion" loss's ``flow_target`` term (module docstring): ``{"loss": loss + weight * mean EPE,
    "epe_motion"}`` over the P pictures of ``outs``, each decoded motion ``(S, 2, H, W)`` against its detached
    flow estimate."""
    epe = torch.stack([(o["motion"] - o["flow"].detach()).pow(2).sum(1).add(1e-8).sqrt().mean() for o in outs]).mean()
    return {"loss": loss + weight * epe if weight else loss, "epe_motion": epe.detach()}


def backward_flow(forward: torch.Tensor) -> torch.Tensor:
    """Approximate backward flow t -> t-1 ``(S, 2, H, W)`` from the forward flow t-1 -> t: ``-f(p - f(p))``."""
    return -warp(forward, -forward)


@register_task("inter")
class InterTask:
    """The ``inter`` task (module docstring)."""

    name = "inter"

    def __init__(self) -> None:
        self._intra: dict[tuple[str, torch.device], IntraModel] = {}

    def build_model(self, model_cfg: dict[str, Any]) -> nn.Module:
        return build_inter(InterConfig.from_json(dict(model_cfg)))

    def dataset(self, data_cfg: dict[str, Any], split: Literal["train", "val"]) -> Dataset:
        from mvcodec.data.datasets import build_dataset  # the data factory (heavy imports only when training)
        return build_dataset(data_cfg, split)

    def default_stages(self) -> list[Stage]:
        return [
            Stage(name="flow", steps=20_000, lr=1e-4, trainable=("flow.",), frames=2, options={"loss": "flow"}),
            Stage(name="motion", steps=40_000, lr=1e-4, trainable=MOTION_CODER_PARAMS, frames=4,
                  options={"loss": "motion", "flow_target": FLOW_TARGET}),
            Stage(name="reconstruction", steps=20_000, lr=1e-4, trainable=FRAME_PARAMS, frames=2,
                  options={"loss": "reconstruction", "decoder_quantization": "frame-noise"}),
            Stage(name="context", steps=20_000, lr=1e-4, trainable=FRAME_PARAMS, frames=2,
                  options={"loss": "context"}),
            Stage(name="single-p", steps=80_000, lr=1e-4, frames=2, options={"loss": "rd"}),
            Stage(name="cascade", steps=40_000, lr=5e-5, frames=5, options={"loss": "rd"}),
        ]

    def check_stage(self, stage: Stage) -> None:
        """Every option of ``stage`` before the run starts (the loss reads them again, one step at a time)."""
        check_option_names("inter", stage, OPTIONS)
        loss_kind(stage)
        check_structure(self.name, stage)
        decoder_quantization(stage)
        flow_target(stage)
        nonnegative_option(stage, "i_frame_noise", I_FRAME_NOISE)
        path = stage.options.get("intra_weights")
        if path is not None:
            if not isinstance(path, str) or not path:
                raise InputError(f"stage {stage.name}: intra_weights is a weights file or zoo:ID, not {path!r}")
            self._intra_model(path, torch.device("cpu"))

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: Stage,
             lmbda: torch.Tensor) -> dict[str, torch.Tensor]:
        kind = loss_kind(stage)
        x, quality, lmbda, flow = sequences(batch, stage.frames, lmbda)
        if kind == "flow":
            return self._flow_loss(model, x, flow)
        i_frame = self.i_picture(x[:, 0], quality, stage)
        model.decoder_quantization = decoder_quantization(stage)
        coded = self.code_period(model, x, i_frame, quality, stage, motion_only=kind == "motion")
        outs = [o for _, o in coded]
        key = "prediction" if kind == "motion" else "x_hat"
        terms = [rd_loss(o[key], x[:, t], charged_bits(o, kind), lmbda, stage.distortion) for t, o in coded]
        out = average_terms(terms)
        if kind == "motion":
            out.update(flow_target_loss(outs, flow_target(stage), out["loss"]))
        out["bpp"] = torch.stack([o["bits"].detach().mean() for o in outs]).mean() / x[0, 0, 0].numel()
        if kind != "motion":  # what the frame coder adds: x_hat's PSNR against the motion-compensated prediction's
            out["psnr_prediction"] = torch.stack([
                mean_psnr((o["prediction"].detach() - x[:, t]).pow(2).flatten(1).mean(1))
                for t, o in coded]).mean()
        out["bpp_motion"] = torch.stack([o["bits_motion"].detach().mean() for o in outs]).mean() / x[0, 0, 0].numel()
        out["images"] = torch.tensor(float(x.shape[0] * len(outs)))
        return out

    def code_period(self, model: nn.Module, x: torch.Tensor, i_frame: torch.Tensor, quality: torch.Tensor,
                    stage: Stage, motion_only: bool = False) -> list[tuple[int, dict[str, Any]]]:
        """The P and B pictures of one intra period of ``x (S, stage.frames, 3, H, W)`` after the I picture
        ``i_frame (S, 3, H, W)``, coded in the order and from the references the codec gives them (stage option
        ``structure``, :mod:`mvcodec.train.structure`), gradients kept across them: ``[(frame, forward dict)]``
        in coding order.  Low delay is the cascade of :meth:`InterModel.forward_sequence`."""
        dpb = DecodedPictureBuffer(stage.frames)
        coded = []
        for p in training_plan(self.name, stage, unwrap(model).cfg.references):
            if p.type == "I":
                dpb.put(0, p.frame, DecodedPicture(i_frame))
                continue
            out = model(x[:, p.frame], temporal_references(dpb, 0, p, draw_candidate(p)), quality, motion_only)
            dpb.put(0, p.frame, InterModel._picture(out))
            coded.append((p.frame, out))
        return coded

    def _flow_loss(self, model: nn.Module, x: torch.Tensor, flow: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The flow warm-start on consecutive pairs of every sequence (module docstring)."""
        inner = unwrap(model)
        cur, ref = x[:, 1:].flatten(0, 1), x[:, :-1].flatten(0, 1)
        est = inner.flow(cur, ref)
        warp_mse = (warp(ref, est) - cur).pow(2).mean()
        out = {"warp_mse": warp_mse.detach()}
        loss = warp_mse
        if flow is not None:
            epe = (est - backward_flow(flow.flatten(0, 1).to(est))).pow(2).sum(1).add(1e-8).sqrt().mean()
            loss = loss + 0.01 * epe
            out["epe"] = epe.detach()
        return {"loss": loss, **out, "images": torch.tensor(float(cur.shape[0]))}

    def i_picture(self, x0: torch.Tensor, quality: torch.Tensor, stage: Stage) -> torch.Tensor:
        """The I picture the cascade starts from ``(S, 3, H, W)``: the frozen intra model's reconstruction, or the
        original with Gaussian noise (stage options "intra_weights" / "i_frame_noise")."""
        path = stage.options.get("intra_weights")
        with torch.no_grad():
            if path:
                return self._intra_model(str(path), x0.device).reconstruct(x0, quality)
            sigma = nonnegative_option(stage, "i_frame_noise", I_FRAME_NOISE)
            return (x0 + sigma * torch.randn_like(x0)).clamp(0, 1)

    def _intra_model(self, path: str, device: torch.device) -> IntraModel:
        """The frozen intra model of ``path`` on ``device``: a weights file, or ``zoo:ID`` for shipped weights; one
        that cannot be read is a one-line :class:`InputError` naming the option."""
        key = (path, device)
        if key not in self._intra:  # once per weights and device: the loss asks for it at every step
            from mvcodec.codecs.learned_intra import read_weights_file, zoo_weights
            try:
                weights = zoo_weights(path[4:]) if path.startswith("zoo:") else read_weights_file(path)
            except CodecError as exc:
                raise InputError(f"inter task: intra_weights {path!r}: {exc}") from None
            self._intra[key] = weights.model().to(device).eval()
        return self._intra[key]

    def finalize(self, model: nn.Module) -> None:
        inner = unwrap(model)
        if not isinstance(inner, InterModel):
            raise TypeError(f"inter task: finalize expects an InterModel, got {type(inner).__name__}")
        inner.update()

