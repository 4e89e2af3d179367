"""The training task ``intra``: the learned intra codec (:mod:`mvcodec.models.intra`) on single pictures.

::

    cfg.model (IntraConfig fields)  --build_model-->  IntraModel
    cfg.data  --dataset-->  mvcodec.data.datasets.build_dataset(data, split): items {"frames": (V, T, 3, H, W)}
    batch["frames"] (B, V, T, 3, H, W) --every (view, frame) is a picture--> x (B*V*T, 3, H, W)
    batch["quality"] (B,), lmbda (B,) --repeated per picture--> model(x, quality) --> rd_loss:
        mean(lmbda * MSE + bpp)   (or lmbda * (1 - MS-SSIM) + bpp for a stage with distortion "msssim")
    finalize: IntraModel.update()  (integer tables of the factorized prior, saved with the weights)

One stage by default (intra trains alone; the inter codec reuses the result).  Run configs usually ask the data
factory for one view and one frame per item, so a batch is a batch of pictures.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from mvcodec.errors import InputError
from mvcodec.models.intra import IntraConfig, IntraModel, build_intra
from mvcodec.train.rd_loss import rd_loss
from mvcodec.train.task import Stage, check_option_names, register_task, unwrap


def pictures(batch: dict[str, torch.Tensor], lmbda: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(x (P,3,H,W), quality (P,), lmbda (P,))`` from a batch of clips, P = B*V*T pictures."""
    frames = batch.get("frames")
    if frames is None or frames.dim() != 6 or frames.shape[3] != 3:
        shape = None if frames is None else tuple(frames.shape)
        raise InputError(f"intra task: batch['frames'] must be (B, V, T, 3, H, W), got {shape}")
    per_item = frames.shape[1] * frames.shape[2]
    quality = batch["quality"].to(frames.device).repeat_interleave(per_item)
    lmbda = torch.as_tensor(lmbda, device=frames.device).expand(frames.shape[0]).repeat_interleave(per_item)
    return frames.flatten(0, 2), quality, lmbda


@register_task("intra")
class IntraTask:
    """The ``intra`` task (module docstring)."""

    name = "intra"

    def build_model(self, model_cfg: dict[str, Any]) -> nn.Module:
        return build_intra(IntraConfig.from_json(dict(model_cfg)))

    def dataset(self, data_cfg: dict[str, Any], split: Literal["train", "val"]) -> Dataset:
        from mvcodec.data.datasets import build_dataset  # the data factory (heavy imports only when training)
        return build_dataset(data_cfg, split)

    def default_stages(self) -> list[Stage]:
        return [Stage(name="intra", steps=200_000, lr=1e-4)]

    def check_stage(self, stage: Stage) -> None:
        check_option_names("intra", stage, ())

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: Stage,
             lmbda: torch.Tensor) -> dict[str, torch.Tensor]:
        x, quality, lmbda = pictures(batch, lmbda)
        out = model(x, quality)
        return rd_loss(out["x_hat"], x, out["bits"], lmbda, stage.distortion)

    def finalize(self, model: nn.Module) -> None:
        inner = unwrap(model)
        if not isinstance(inner, IntraModel):
            raise TypeError(f"intra task: finalize expects an IntraModel, got {type(inner).__name__}")
        inner.update()
