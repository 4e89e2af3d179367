"""The contract between the training engine and the learned models it trains: a :class:`TrainTask` per model kind.

::

    engine (train.engine)                         task (one per model kind: "intra", "inter", ...)
    ---------------------                         -----------------------------------------------
    cfg.model (dict from YAML)     ------------>  build_model(cfg.model) -> nn.Module
    cfg.data  (dict from YAML)     ------------>  dataset(cfg.data, split) -> torch Dataset of dict batches
    schedule (cfg.stages or        <------------  default_stages() -> list[Stage]
              the task's default)
    before the run folder exists   ------------>  check_stage(stage): the stage's options and frames, or a one-line
                                                   InputError (a misspelt option would otherwise do nothing)
    each step: batch, stage, lmbda ------------>  loss(model, batch, stage, lmbda) -> {"loss": scalar tensor,
                                                   "bpp": ..., "mse": ..., "psnr": ... (detached, for logs)}
    after training                 ------------>  finalize(model): integer entropy tables (EntropyBottleneck.update)

Variable rate: the run config lists the lambdas of the quality ladder (index 0 = lowest rate).  For every batch
the engine draws a quality index per sample and passes ``batch["quality"]`` (B,) int64 and ``lmbda`` (B,) float32
= lambdas[quality]; a model with per-quality gain vectors reads ``batch["quality"]``.  Batches are dicts of tensors;
video items carry ``batch["frames"]`` (B, V, T, 3, H, W) float32 in [0, 1] (see ``mvcodec.data``).

The engine owns everything generic (optimizer, stages, checkpoints, logging, DistributedDataParallel); a task owns
what is specific to its model.  Tasks register themselves with :func:`register_task` under a frozen name that run
configs refer to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from mvcodec.errors import InputError


@dataclass(frozen=True)
class Stage:
    """One stage of a staged schedule (schedules are data: a list of these, from YAML or a task's default).

    ``trainable``: parameter-name prefixes that train in this stage (empty: all; the rest is frozen);
    ``frames``: frames per training sequence (1 for intra; > 1 for the cascaded inter loss, gradients kept across
    them); ``distortion``: "mse" (lambda * MSE + R) or "msssim" (lambda * (1 - MS-SSIM) + R); ``options``:
    task-specific switches (e.g. {"loss": "motion"} of the inter task; ``TrainTask.check_stage`` refuses
    one the task does not read).
    """

    name: str
    steps: int
    lr: float = 1e-4
    trainable: tuple[str, ...] = ()
    frames: int = 1
    distortion: Literal["mse", "msssim"] = "mse"
    options: dict[str, Any] = field(default_factory=dict)


class TrainTask(Protocol):
    """What the engine needs from a model kind (see the module docstring)."""

    name: str

    def build_model(self, model_cfg: dict[str, Any]) -> nn.Module: ...

    def dataset(self, data_cfg: dict[str, Any], split: Literal["train", "val"]) -> Dataset: ...

    def default_stages(self) -> list[Stage]: ...

    def check_stage(self, stage: Stage) -> None: ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: Stage,
             lmbda: torch.Tensor) -> dict[str, torch.Tensor]: ...

    def finalize(self, model: nn.Module) -> None: ...


def check_option_names(task: str, stage: Stage, known: Iterable[str]) -> None:
    """A stage option that the task does not read is a one-line :class:`InputError` naming it and the known ones
    (a misspelt ``flow_targt: 20`` would otherwise train without the term)."""
    known = sorted(known)
    unknown = sorted(set(stage.options) - set(known))
    if unknown:
        raise InputError(f"{task} task: stage {stage.name} has the option {unknown[0]!r}, which this task does not "
                         f"read (its options: {', '.join(known) or 'none'})")


def unwrap(model: nn.Module) -> nn.Module:
    """The task's own model inside a :class:`~torch.nn.parallel.DistributedDataParallel` wrapper (or ``model``)."""
    return getattr(model, "module", model)


_TASKS: dict[str, Callable[[], TrainTask]] = {}


def register_task(name: str) -> Callable[[Callable[[], TrainTask]], Callable[[], TrainTask]]:
    """Class decorator: ``@register_task("intra")`` makes the task available to run configs under ``name``."""
    def add(factory: Callable[[], TrainTask]) -> Callable[[], TrainTask]:
        if name in _TASKS:
            raise ValueError(f"training task {name!r} is already registered")
        _TASKS[name] = factory
        return factory
    return add


def get_task(name: str) -> TrainTask:
    """The task registered under ``name``; unknown names are a ``KeyError`` listing the known ones."""
    import mvcodec.train.tasks  # noqa: F401  (imports every built-in task so they register)
    if name not in _TASKS:
        raise KeyError(f"unknown training task {name!r}; known: {', '.join(sorted(_TASKS)) or 'none'}")
    return _TASKS[name]()


def task_names() -> list[str]:
    import mvcodec.train.tasks  # noqa: F401
    return sorted(_TASKS)
