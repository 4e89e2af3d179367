"""The training engine: one plain PyTorch loop for every learned codec (the task contract: ``train.task``).

::

    RunConfig --get_task--> task --build_model(cfg.model)--> model     (seeded: every rank builds the same one)
                                 --dataset(cfg.data, "train")--> dataset --ResumableSampler + DataLoader--> batches
    for stage in cfg.stages (resumed: from the checkpoint's stage and step):
        freeze parameters outside stage.trainable; Adam(trainable, stage.lr)
        wrap _LossStep(task, model) in DistributedDataParallel when torchrun started several processes
        each step (global step g):  seed_step(seed, rank, g)
            batch["quality"] ~ U{0..L-1} per sample, lmbda = lambdas[quality]             (B,) each
            out = task.loss(model, batch, stage, lmbda)  [+ model.aux_loss() if it has one]   inside DDP forward
                  (under bf16 autocast when cfg.precision asks for it: train.precision)
            backward, clip_grad_norm_(grad_clip), Adam step
            rank 0: tqdm postfix + TensorBoard (RUN/tb) + RUN/train_log.jsonl every log_every steps;
                    checkpoint every checkpoint_every steps and at each stage end (train.checkpoint)
    task.finalize(model) -> RUN/final.safetensors + RUN/final.json (config, hash, command, steps, images/s)

The whole loss runs inside the DDP-wrapped module's ``forward``, so a task may call its model any number of
times (the cascaded inter loss), use its attributes, and leave parameters unused in a stage
(``find_unused_parameters``).  A resumed run reproduces the uninterrupted one exactly on CPU: the data position
and every random draw are functions of the global step (``train.distributed``), the weights and Adam moments
come back bit for bit.  Datasets whose items depend only on their index keep this with DataLoader workers too.
Throughput = pictures coded per second of training, over all processes: a loss may report its count as
``out["images"]``; otherwise B x V x T of ``batch["frames"]``, or B x stage.frames for other batches.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mvcodec import __version__
from mvcodec.atomic import atomic_write_text
from mvcodec.errors import CodecError, InputError
from mvcodec.train import distributed
from mvcodec.train.checkpoint import (
    TrainState,
    initial_weights,
    load_checkpoint,
    restore_model,
    restore_optimizer,
    save_checkpoint,
    save_weights,
    under,
)
from mvcodec.train.config import OPERATIONAL, RunConfig, config_hash, config_to_dict, load_config, save_config
from mvcodec.train.distributed import DistEnv, ResumableSampler
from mvcodec.train.precision import autocast_bf16, use_bf16
from mvcodec.train.task import Stage, TrainTask, get_task


@dataclass(frozen=True)
class TrainResult:
    """What a call of :func:`train` achieved: ``completed`` (all stages, final weights written) or paused."""

    run_dir: Path
    main: bool  # this process is rank 0 (the one that reports)
    completed: bool
    global_step: int
    images_per_s: float


class _LossStep(nn.Module):
    """The task's loss as a module, so that DistributedDataParallel sees the whole step in one ``forward``."""

    def __init__(self, task: TrainTask, model: nn.Module, bf16: bool = False) -> None:
        super().__init__()
        self.task, self.model, self.bf16 = task, model, bf16
        self.stage: Stage | None = None
        self.aux = callable(getattr(model, "aux_loss", None))

    def forward(self, batch: dict[str, torch.Tensor], lmbda: torch.Tensor) -> dict[str, torch.Tensor]:
        with autocast_bf16(lmbda.device, self.bf16):
            out = dict(self.task.loss(self.model, batch, self.stage, lmbda))
        if "loss" not in out or out["loss"].dim() != 0:
            raise CodecError(f"task {self.task.name!r}: loss() must return a scalar 'loss'")
        if self.aux:
            out["aux_loss"] = self.model.aux_loss()
            out["loss"] = out["loss"] + out["aux_loss"]
        return out


def check_trainable(model: nn.Module, stages: tuple[Stage, ...]) -> None:
    """Every ``trainable`` prefix of every stage must name at least one parameter (a typo freezes nothing), or a
    module the model's config switched off (an attribute that is None: a schedule written for the full model
    also trains its ablations)."""
    names = [n for n, _ in model.named_parameters()]
    for i, stage in enumerate(stages):
        for prefix in stage.trainable:
            head = prefix.rstrip(".").split(".")[0]
            switched_off = head in vars(model) and getattr(model, head) is None
            if not switched_off and not any(under(n, prefix) for n in names):
                raise InputError(f"stages.{i}.trainable: {prefix!r} names no parameter of the model")


def freeze(model: nn.Module, trainable: tuple[str, ...]) -> list[tuple[str, nn.Parameter]]:
    """Make only parameters under the ``trainable`` name prefixes (all when empty) require gradients; returns
    the trainable ``(name, parameter)`` pairs."""
    chosen = []
    for name, p in model.named_parameters():
        p.requires_grad_(not trainable or any(under(name, prefix) for prefix in trainable))
        if p.requires_grad:
            chosen.append((name, p))
    return chosen


def batches(dataset: Dataset, cfg: RunConfig, env: DistEnv, start_step: int) -> Iterator[dict[str, Any]]:
    """Endless batches of this rank from global step ``start_step`` on (epoch and offset follow from it)."""
    sampler = ResumableSampler(dataset, env, cfg.seed)
    per_epoch = len(sampler) // cfg.batch_size
    if per_epoch == 0:
        raise InputError(f"the dataset has {len(dataset)} items: fewer than batch_size {cfg.batch_size} per process")
    return _endless(dataset, sampler, per_epoch, cfg, env, start_step)


def _endless(dataset: Dataset, sampler: ResumableSampler, per_epoch: int, cfg: RunConfig, env: DistEnv,
             step: int) -> Iterator[dict[str, Any]]:
    while True:
        epoch, offset = divmod(step, per_epoch)
        sampler.set_epoch(epoch)
        if hasattr(dataset, "set_epoch"):  # datasets that draw new items per epoch (synthetic, random crops)
            dataset.set_epoch(epoch)
        sampler.start = offset * cfg.batch_size
        loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                            drop_last=True, pin_memory=env.device.type == "cuda",
                            worker_init_fn=functools.partial(distributed.seed_worker, cfg.seed, env.rank, epoch),
                            generator=torch.Generator().manual_seed(cfg.seed))
        for batch in loader:
            yield batch
            step += 1


def train(cfg: RunConfig, *, resume: bool = False, stop_after: int | None = None, command: str = "",
          dump_state: str | Path | None = None) -> TrainResult:
    """Train (or with ``resume``, continue) the run of ``cfg`` in ``cfg.out``.

    ``stop_after``: pause after that many steps of this call (checkpoint written; continue with ``resume``).
    ``command``: the command line, recorded in ``final.json``.  ``dump_state``: a folder where every rank writes
    its weights at the start and the end (``rank<R>-start/end.safetensors``; a debugging aid for DDP).
    """
    env = distributed.init(cfg.device)
    try:
        result = _Run(cfg, env, command, dump_state).run(resume, stop_after)
    except BaseException:
        distributed.abort(env)  # no barrier: the other ranks may be stuck in a collective; torchrun ends them
        raise
    distributed.shutdown(env)
    return result


def resume_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """The resolved config saved in ``run_dir`` (``out`` = ``run_dir`` wherever it moved), with ``overrides``
    of the fields a resumed run may change (:data:`~mvcodec.train.config.OPERATIONAL`)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise InputError(f"{run_dir}: not a training run folder (no config.yaml)")
    saved = load_config(path)
    cfg = replace(load_config(path, overrides), out=str(run_dir))
    if config_hash(cfg) != config_hash(saved):
        raise InputError(f"--resume may only change {', '.join(OPERATIONAL[1:])}; start a new run for the rest")
    return cfg


class _Run:
    def __init__(self, cfg: RunConfig, env: DistEnv, command: str, dump_state: str | Path | None) -> None:
        if not cfg.out:
            raise InputError("no run folder: give --out RUN or out: in the config")
        self.cfg, self.env, self.command = cfg, env, command
        self.run_dir = Path(cfg.out)
        self.dump = Path(dump_state) if dump_state is not None else None
        self.hash = config_hash(cfg)
        self.lambdas = torch.tensor(cfg.lambdas, dtype=torch.float32)

    # ------------------------------------------------------------------------------------------------ setup
    def _check_folder(self, resume: bool) -> None:
        if resume:
            if (self.run_dir / "final.json").exists():
                raise InputError(f"{self.run_dir}: this run is complete (final.json exists); nothing to resume")
        elif self.run_dir.exists() and (not self.run_dir.is_dir() or any(self.run_dir.iterdir())):
            raise InputError(f"{self.run_dir}: exists and is not empty; --resume it or choose another --out")

    def _create_folder(self, resume: bool) -> None:
        distributed.barrier(self.env)  # every rank has checked the folder before rank 0 fills it
        if self.env.is_main and not resume:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
        distributed.barrier(self.env)

    def run(self, resume: bool, stop_after: int | None) -> TrainResult:
        started = time.perf_counter()
        self._check_folder(resume)
        task = get_task(self.cfg.task)
        torch.manual_seed(self.cfg.seed)  # every rank builds the same initial model
        model = task.build_model(dict(self.cfg.model)).to(self.env.device)
        qualities = getattr(getattr(model, "cfg", None), "qualities", None)
        if isinstance(qualities, int) and qualities != len(self.cfg.lambdas):
            raise InputError(f"the model has {qualities} quality gains but the config lists "
                             f"{len(self.cfg.lambdas)} lambdas: they must match")
        check_trainable(model, self.cfg.stages)
        for stage in self.cfg.stages:
            task.check_stage(stage)
        loaded = load_checkpoint(self.run_dir, self.hash) if resume else None
        state, tensors = loaded if loaded is not None else (TrainState(), {})
        if tensors:
            restore_model(model, tensors)
        elif self.cfg.init:
            state.init_sha256, _ = initial_weights(model, self.cfg.init, self.cfg.init_prefix,
                                                  self.cfg.init_exclude)
        state.commands = [*state.commands, self.command]
        stream = batches(task.dataset(dict(self.cfg.data), "train"), self.cfg, self.env, state.global_step)
        self._create_folder(resume)  # only once the model and the data are known to work
        self._dump(model, "start")
        log = RunLogger(self.run_dir, self.env, self.cfg.log_every, state, resume)
        step_module = _LossStep(task, model, use_bf16(self.cfg.precision, self.env.device))
        budget = stop_after if stop_after is not None else self.cfg.total_steps
        try:
            for si in range(state.stage, len(self.cfg.stages)):
                first = state.step if si == state.stage else 0
                if first < self.cfg.stages[si].steps:
                    budget -= self._stage(si, first, step_module, stream, state, tensors, budget, log, started)
                    tensors = {}  # the checkpoint's optimizer moments belong to the stage it was taken in
                if budget <= 0:
                    break
        finally:
            log.close()
        self._dump(model, "end")
        rate = state.images / max(state.train_time_s, 1e-9)
        complete = state.stage == len(self.cfg.stages) - 1 and state.step == self.cfg.stages[-1].steps
        if complete:
            task.finalize(model)
            if self.env.is_main:
                self._export(model, state, started, rate)
        log.message(f"{'finished' if complete else 'paused'} at step {state.global_step}/{self.cfg.total_steps}: "
                    f"{state.images} images in {state.train_time_s:.1f} s of training, {rate:.2f} images/s")
        return TrainResult(self.run_dir, self.env.is_main, complete, state.global_step, rate)

    def _stage(self, si: int, first: int, step_module: _LossStep, stream: Iterator[dict[str, Any]],
               state: TrainState, tensors: dict[str, torch.Tensor], budget: int, log: RunLogger,
               started: float) -> int:
        """Run stage ``si`` from its step ``first`` for at most ``budget`` steps; returns the steps run."""
        stage, model = self.cfg.stages[si], step_module.model
        named = freeze(model, stage.trainable)
        names, params = [n for n, _ in named], [p for _, p in named]
        opt = torch.optim.Adam(params, lr=stage.lr)
        if first > 0 and tensors:
            restore_optimizer(opt, names, tensors)
        step_module.stage = stage
        model.train()
        runner = self._wrap(step_module)
        log.start_stage(si, stage, len(self.cfg.stages), first)
        end = min(stage.steps, first + budget)
        for step in range(first, end):
            t0 = time.perf_counter()
            terms, images = self._step(runner, opt, params, next(stream), stage, state.global_step)
            state.stage, state.step, state.global_step = si, step + 1, state.global_step + 1
            state.images += images
            state.train_time_s += time.perf_counter() - t0
            log.step(terms, state, opt.param_groups[0]["lr"])
            if step + 1 == end or state.global_step % self.cfg.checkpoint_every == 0:
                self._checkpoint(model, opt, names, state, started)
        if end == stage.steps and self.env.is_main:
            (self.run_dir / "stages").mkdir(exist_ok=True)
            save_weights(self.run_dir / "stages" / f"{si:02d}-{stage.name}.safetensors", model)
        log.end_stage()
        return end - first

    # ------------------------------------------------------------------------------------------------ one step
    def _wrap(self, module: _LossStep) -> nn.Module:
        if not self.env.distributed:
            return module
        ids = [self.env.device.index] if self.env.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def _step(self, runner: nn.Module, opt: torch.optim.Optimizer, params: list[nn.Parameter],
              batch: dict[str, Any], stage: Stage, global_step: int) -> tuple[dict[str, torch.Tensor], int]:
        gen = distributed.seed_step(self.cfg.seed, self.env.rank, global_step)
        batch = {k: v.to(self.env.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items()}
        size = next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor))
        quality = torch.randint(len(self.cfg.lambdas), (size,), generator=gen)
        batch["quality"] = quality.to(self.env.device)
        lmbda = self.lambdas[quality].to(self.env.device)
        out = runner(batch, lmbda)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if self.cfg.grad_clip > 0:
            out["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        opt.step()
        terms = {k: v.detach() for k, v in out.items()
                 if isinstance(v, torch.Tensor) and v.dim() == 0 and k != "images"}
        return terms, _images(out, batch, stage) * self.env.world_size

    # ------------------------------------------------------------------------------------------------ files
    def _checkpoint(self, model: nn.Module, opt: torch.optim.Optimizer, names: list[str], state: TrainState,
                    started: float) -> None:
        if self.env.is_main:
            saved = replace(state, wall_time_s=state.wall_time_s + time.perf_counter() - started)
            rng = {"scheme": "every step reseeds torch, numpy and random from SeedSequence(0, seed, rank, "
                   "global_step) (train.distributed.seed_step); nothing else to restore", "seed": self.cfg.seed}
            save_checkpoint(self.run_dir, model, opt, names, saved, self.hash, rng)
        distributed.barrier(self.env)

    def _dump(self, model: nn.Module, when: str) -> None:
        if self.dump is not None:
            self.dump.mkdir(parents=True, exist_ok=True)
            save_weights(self.dump / f"rank{self.env.rank}-{when}.safetensors", model)

    def _export(self, model: nn.Module, state: TrainState, started: float, rate: float) -> None:
        sha = save_weights(self.run_dir / "final.safetensors", model, {"task": self.cfg.task, "config": self.hash})
        info = {
            "task": self.cfg.task, "file": "final.safetensors", "sha256": sha,
            "bytes": (self.run_dir / "final.safetensors").stat().st_size,
            "config": config_to_dict(self.cfg), "config_sha256": self.hash,
            "command": state.commands[0] if state.commands else "", "resumed_with": state.commands[1:],
            "init": {"weights": self.cfg.init, "prefix": self.cfg.init_prefix, "exclude": list(self.cfg.init_exclude),
                     "sha256": state.init_sha256}
            if self.cfg.init else None,
            "steps": {s.name: s.steps for s in self.cfg.stages}, "total_steps": state.global_step,
            "images": state.images, "images_per_s": rate, "train_time_s": state.train_time_s,
            "wall_time_s": state.wall_time_s + time.perf_counter() - started,
            "device": _device_name(self.env.device), "world_size": self.env.world_size,
            "arithmetic": "bf16 autocast" if use_bf16(self.cfg.precision, self.env.device) else "fp32",
            "global_batch": self.cfg.batch_size * self.env.world_size,
            "mvcodec": __version__, "torch": torch.__version__,
        }
        atomic_write_text(self.run_dir / "final.json", json.dumps(info, indent=2))


def _images(out: dict[str, Any], batch: dict[str, Any], stage: Stage) -> int:
    """Pictures coded by one step of one rank: the loss's "images" when it reports them, else B x V x T of
    ``batch["frames"]`` (B, V, T, 3, H, W), else B x stage.frames."""
    if "images" in out:
        return int(out["images"])
    frames = batch.get("frames")
    if isinstance(frames, torch.Tensor) and frames.dim() == 6:
        return frames.shape[0] * frames.shape[1] * frames.shape[2]
    return next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor)) * stage.frames


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


class RunLogger:
    """Rank 0's view of training: a tqdm bar per stage, TensorBoard scalars (RUN/tb) and RUN/train_log.jsonl.

    Every ``log_every`` steps the window's mean of each scalar term is averaged over ranks (all ranks call
    :meth:`step`), checked to be finite, and written.  A resumed run appends to the same files; TensorBoard
    drops the events after the resumed step (``purge_step``), readers of the JSON lines keep each step's last row.
    """

    def __init__(self, run_dir: Path, env: DistEnv, log_every: int, state: TrainState, resume: bool) -> None:
        self.env, self.log_every = env, log_every
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.images, self.seconds = 0, state.images, state.train_time_s
        self.bar: tqdm | None = None
        self.stage_name = ""
        self.writer = self.jsonl = None
        if env.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=state.global_step if resume else None)
            self.jsonl = open(run_dir / "train_log.jsonl", "a", encoding="utf-8")

    def start_stage(self, index: int, stage: Stage, stages: int, first: int) -> None:
        self.stage_name = stage.name
        self.bar = tqdm(total=stage.steps, initial=first, desc=f"stage {index + 1}/{stages} {stage.name}",
                        disable=not self.env.is_main, dynamic_ncols=True, file=sys.stderr)

    def step(self, terms: dict[str, torch.Tensor], state: TrainState, lr: float) -> None:
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0) + value.float()
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
        if state.global_step % self.log_every:
            return
        keys = sorted(self.sums)
        means = distributed.mean_over_ranks(self.env, torch.stack([self.sums[k] for k in keys]) / self.count)
        values = dict(zip(keys, means.tolist()))
        if not all(v == v and abs(v) != float("inf") for v in values.values()):
            raise CodecError(f"training diverged at step {state.global_step} (stage {self.stage_name!r}): "
                             f"{', '.join(f'{k}={v:.4g}' for k, v in values.items())}; lower the lr or grad_clip")
        # the window's throughput, over the time spent in training steps (as in final.json)
        values["images_per_s"] = (state.images - self.images) / max(state.train_time_s - self.seconds, 1e-9)
        values["lr"] = lr
        self.sums, self.count, self.images, self.seconds = {}, 0, state.images, state.train_time_s
        if not self.env.is_main:
            return
        for key, value in values.items():
            self.writer.add_scalar(f"train/{key}", value, state.global_step)
        self.jsonl.write(json.dumps({"step": state.global_step, "stage": self.stage_name, **values}) + "\n")
        self.jsonl.flush()
        shown = {k: f"{values[k]:.4g}" for k in ("loss", "bpp", "psnr", "images_per_s") if k in values}
        self.bar.set_postfix(shown, refresh=False)

    def end_stage(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def message(self, text: str) -> None:
        if self.env.is_main:
            tqdm.write(f"mvcodec train: {text}", file=sys.stderr)

    def close(self) -> None:
        self.end_stage()
        if self.writer is not None:
            self.writer.close()
            self.jsonl.close()
