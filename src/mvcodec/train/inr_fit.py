"""Fitting MV-MGINR to one clip: the encoder's training loop, with pruning, QAT, checkpoints and resume.

::

    frames (V, T, H, W, 3) uint8 --motion_mask--> M (V, T, H, W)           (once, before fitting)
    epochs 0 .. fit_epochs-1:   Adam on motion_aware_loss(crop(net(v, t)), x, M), batches of (v, t) pairs
    epoch fit_epochs:           prune_masks(sparsity) -> masks; new Adam at qat_lr
    epochs .. +qat_epochs-1:    the same loss through fake_quantize(w * mask) (8-bit QAT, pruned stay zero)
    after every epoch:          checkpoint = DIR/state.safetensors (weights, Adam moments, masks, RNG state)
                                             + DIR/state.json (epoch, config); written atomically
    (the synthesis net trains in channels-last (NHWC) memory layout and returns to NCHW at the end)

Precision: the fitting phase runs the network's forward under bfloat16 autocast where the hardware has native
bf16 matrix units (``precision="auto"``: CUDA, or a CPU whose oneDNN reports bf16 support, e.g. AMX/AVX512-BF16;
2-2.5x faster steps on this project's CPU), with float32 weights, optimizer and loss.  QAT runs in bfloat16 too,
except its last ``fp32_epochs`` epochs, which run in float32: the fit ends by fine-tuning exactly the arithmetic
of the decoder, which renders in float32.

The learning rate follows a cosine from ``lr`` to 0 over each phase, computed from the step alone, so a resumed
fit runs exactly the steps an uninterrupted one would.  Checkpoints are read with safetensors only (no pickle).
The progress bar shows the running PSNR of the epoch and the estimated bits of the quantized model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.func import functional_call
from tqdm import tqdm

from mvcodec.codecs.inr_payload import CodedWeights, estimate_bits, fake_quantize, prune_masks
from mvcodec.errors import InputError
from mvcodec.models.inr import MvMgInr, crop
from mvcodec.train.losses import motion_aware_loss
from mvcodec.train.motion import motion_mask
from mvcodec.train.precision import Precision, autocast_bf16, use_bf16


@dataclass(frozen=True)
class FitSchedule:
    """The fitting budget and loss; presets are rows of :data:`PRESETS` (paper: 300 + 100 epochs, batch 2)."""

    fit_epochs: int
    qat_epochs: int
    lr: float = 1e-2
    qat_lr: float = 1e-3
    batch: int = 2
    alpha: float = 0.7
    sparsity: float = 0.4
    motion_mask: bool = True
    seed: int = 0
    precision: Precision = "auto"
    fp32_epochs: int = 2     # the last QAT epochs run in float32 whatever ``precision`` says


PRESETS: dict[str, FitSchedule] = {
    "fast": FitSchedule(fit_epochs=30, qat_epochs=10, fp32_epochs=2),
    "medium": FitSchedule(fit_epochs=150, qat_epochs=50, fp32_epochs=10),
    "slow": FitSchedule(fit_epochs=300, qat_epochs=100, fp32_epochs=20),
}


@dataclass
class FitResult:
    masks: dict[str, torch.Tensor]
    seconds: float
    psnr: float          # running PSNR of the last epoch (quantized forward), dB
    start_epoch: int     # > 0 when resumed from a checkpoint


def effective_params(model: MvMgInr, masks: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """The weights a forward pass uses: raw in the first phase, ``fake_quantize(w * mask)`` in QAT."""
    params = dict(model.named_parameters())
    if masks is None:
        return params
    return {n: fake_quantize(p * masks[n] if n in masks else p) for n, p in params.items()}


def _lr(base: float, step: int, total: int) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(1, total)))


def fit(model: MvMgInr, frames: np.ndarray, schedule: FitSchedule, device: str = "cpu",
        checkpoint: str | os.PathLike | None = None, resume: bool = False, progress: bool = False,
        on_epoch_end: Callable[[int], None] | None = None) -> FitResult:
    """Fit ``model`` to ``frames`` (V, T, H, W, 3) uint8 in place; returns the pruning masks for coding.

    ``checkpoint`` (a folder) receives the state after every epoch; ``resume`` continues from it (a checkpoint
    of another clip or network is an :class:`InputError`).  ``on_epoch_end(epoch)`` is called after each
    checkpoint (tests use it to interrupt a fit)."""
    cfg = model.cfg
    v_count, t_count = frames.shape[:2]
    if (v_count, t_count, *frames.shape[2:4]) != (cfg.views, cfg.frames, cfg.height, cfg.width):
        raise InputError(f"clip of shape {frames.shape} does not match the network's config")
    start = time.perf_counter()
    model.to(device).train()
    _synthesis_layout(model, torch.channels_last)  # 1.7x faster convolutions on CPU (oneDNN NHWC kernels)
    # uint8 (V, T, 3, H, W) view of the frames (on the CPU no copy at all); each batch becomes float in [0, 1]:
    # a float32 copy of the clip would be 4x the clip's size (5.5 GB for 2 x 1000 frames of 640x360)
    target = torch.from_numpy(frames).to(device).permute(0, 1, 4, 2, 3)
    mask = torch.from_numpy(motion_mask(frames)).to(device) if schedule.motion_mask else None
    gen = torch.Generator().manual_seed(schedule.seed)
    pairs = torch.tensor([(v, t) for v in range(v_count) for t in range(t_count)], dtype=torch.int64)
    steps_per_epoch = math.ceil(len(pairs) / schedule.batch)
    total = schedule.fit_epochs + schedule.qat_epochs
    masks: dict[str, torch.Tensor] | None = None
    bf16 = use_bf16(schedule.precision, device)
    bf16_until = total - min(schedule.fp32_epochs, schedule.qat_epochs)  # the last QAT epochs run in float32
    opt = torch.optim.Adam(model.parameters(), lr=schedule.lr)
    epoch = 0
    ident = {"config": _config_key(model), "schedule": asdict(schedule), 
             "frames_sha256": hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()}
    if resume and checkpoint is not None and (Path(checkpoint) / "state.json").exists():
        epoch, masks, opt = _load(Path(checkpoint), model, gen, ident, schedule, device)
    first_epoch = epoch
    psnr = float("nan")
    bar = tqdm(range(epoch, total), desc="fit mv-mginr", unit="epoch", initial=epoch, total=total,
               disable=None if progress else True, leave=False)
    for epoch in bar:
        qat = epoch >= schedule.fit_epochs
        if qat and masks is None:
            masks = prune_masks(dict(model.named_parameters()), schedule.sparsity)
            opt = torch.optim.Adam(model.parameters(), lr=schedule.qat_lr)
        base, phase_steps = (schedule.qat_lr, schedule.qat_epochs) if qat else (schedule.lr, schedule.fit_epochs)
        phase_step = ((epoch - schedule.fit_epochs) if qat else epoch) * steps_per_epoch
        order = pairs[torch.randperm(len(pairs), generator=gen)]
        sq_err, count = 0.0, 0
        for i in range(0, len(order), schedule.batch):
            v, t = order[i:i + schedule.batch, 0].to(device), order[i:i + schedule.batch, 1].to(device)
            for group in opt.param_groups:
                group["lr"] = _lr(base, phase_step, phase_steps * steps_per_epoch)
            with autocast_bf16(device, bf16 and epoch < bf16_until):
                x_hat = crop(functional_call(model, effective_params(model, masks), (v, t)), cfg).float()
            x = target[v, t].float().div_(255)
            loss = motion_aware_loss(x_hat, x, None if mask is None else mask[v, t], schedule.alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            phase_step += 1
            sq_err += float(((x_hat.detach() - x) ** 2).mean()) * len(v)
            count += len(v)
        psnr = -10 * math.log10(max(sq_err / count, 1e-12))
        if bar.disable is False:
            coded = CodedWeights.from_params(dict(model.named_parameters()), masks or {})
            bar.set_postfix(psnr=f"{psnr:.2f}", est_kbit=f"{estimate_bits(coded)['total_bits'] / 1000:.1f}")
        if checkpoint is not None:
            _save(Path(checkpoint), model, opt, gen, masks, epoch + 1, ident)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()
    if masks is None:
        masks = prune_masks(dict(model.named_parameters()), schedule.sparsity)
    _synthesis_layout(model, torch.contiguous_format)
    model.eval()
    return FitResult({n: m.cpu() for n, m in masks.items()}, time.perf_counter() - start, psnr, first_epoch)


def _synthesis_layout(model: MvMgInr, layout: torch.memory_format) -> None:
    """Switch the 4-D weights of the synthesis net (blocks, head) between NCHW and NHWC in place; the grids are
    indexed, not convolved, and stay as they are.  Only the fit uses NHWC: the decoder's render is NCHW."""
    model.blocks.to(memory_format=layout)
    model.head.to(memory_format=layout)


def _config_key(model: MvMgInr) -> dict:
    cfg = model.cfg
    return {"arch": cfg.arch.to_json(), "size": [cfg.views, cfg.frames, cfg.height, cfg.width]}


def _save(folder: Path, model: MvMgInr, opt: torch.optim.Optimizer, gen: torch.Generator,
          masks: dict[str, torch.Tensor] | None, next_epoch: int, ident: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {f"param.{n}": p.detach().cpu().contiguous() for n, p in model.named_parameters()}
    for p, st in opt.state.items():
        for k, v in st.items():
            tensors[f"adam.{k}.{names[id(p)]}"] = v.detach().cpu().contiguous().reshape(v.shape)
    for n, m in (masks or {}).items():
        tensors[f"mask.{n}"] = m.cpu().to(torch.uint8).contiguous()
    tensors["rng"] = gen.get_state()
    tmp = folder / ".state.safetensors.partial"
    save_file(tensors, str(tmp))
    meta = {**ident, "next_epoch": next_epoch, "has_masks": masks is not None}
    tmp_json = folder / ".state.json.partial"
    tmp_json.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, folder / "state.safetensors")   # weights first: a json always describes its weights
    os.replace(tmp_json, folder / "state.json")


def _load(folder: Path, model: MvMgInr, gen: torch.Generator, ident: dict, schedule: FitSchedule, device: str,
          ) -> tuple[int, dict[str, torch.Tensor] | None, torch.optim.Optimizer]:
    meta = json.loads((folder / "state.json").read_text())
    if any(meta.get(k) != v for k, v in ident.items()):
        raise InputError(f"checkpoint {folder} belongs to another clip, network or schedule; cannot resume")
    tensors = load_file(str(folder / "state.safetensors"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(tensors[f"param.{n}"].to(device))
    masks = None
    if meta["has_masks"]:
        masks = {k[5:]: v.to(device).bool() for k, v in tensors.items() if k.startswith("mask.")}
    opt = torch.optim.Adam(model.parameters(), lr=schedule.qat_lr if masks is not None else schedule.lr)
    for n, p in model.named_parameters():
        st = {k: tensors[f"adam.{k}.{n}"].to(device if k != "step" else "cpu")
              for k in ("step", "exp_avg", "exp_avg_sq") if f"adam.{k}.{n}" in tensors}
        if st:
            opt.state[p] = st
    gen.set_state(tensors["rng"])
    return int(meta["next_epoch"]), masks, opt
