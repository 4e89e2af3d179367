"""Processes, devices and data order of a training run, one process or many under ``torchrun``.

::

    torchrun --nproc_per_node=N mvcodec train ...     (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT set)
        init(device) -> DistEnv(rank, world_size, local_rank, device)
            device "auto": cuda:LOCAL_RANK when CUDA is available, else cpu
            backend:       NCCL on CUDA, gloo on CPU  (init_method env://)
    plain `mvcodec train ...`: DistEnv(rank 0, world 1), no process group

    data order: ResumableSampler = DistributedSampler(seed, shuffle) + a start offset in the epoch
        epoch e, rank r: the rank's share of permutation(seed, e); a resumed run starts at the batch it left
    randomness: seed_step(seed, rank, global step) seeds torch / numpy / random before every step and a
        DataLoader worker by (seed, rank, epoch, worker id): nothing depends on process start order or time,
        and a resumed run needs no RNG state beyond the step it resumes at.

The same command runs unchanged on CPU or GPU, one process or many: only rank 0 writes files.
"""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from mvcodec.errors import InputError


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank among ``world_size`` processes and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(choice: Literal["auto", "cpu", "cuda"], local_rank: int = 0) -> torch.device:
    """The device of ``choice`` for the process of ``local_rank`` ("auto": CUDA when present)."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda was asked for but no CUDA device is available (use auto or cpu)")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise InputError(f"device: LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices")
    return torch.device("cuda", local_rank)


def init(choice: Literal["auto", "cpu", "cuda"]) -> DistEnv:
    """Join the process group that ``torchrun`` describes in the environment, or run alone without one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(choice, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://",
                                rank=rank, world_size=world)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=device)


def shutdown(env: DistEnv) -> None:
    """Leave the process group (after every rank got here)."""
    if env.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def abort(env: DistEnv) -> None:
    """Leave the process group after an error on this rank (no barrier: the others may never get there)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def all_true(env: DistEnv, ok: bool) -> bool:
    """Whether ``ok`` holds on every rank (so that all ranks take the same branch, e.g. to raise)."""
    if not env.distributed:
        return ok
    flag = torch.tensor([0 if ok else 1], device=env.device)
    dist.all_reduce(flag)
    return int(flag.item()) == 0


def mean_over_ranks(env: DistEnv, values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over all ranks (itself when alone)."""
    if env.distributed:
        values = values.clone()
        dist.all_reduce(values)
        values /= env.world_size
    return values


_STEP, _WORKER = 0, 1  # first word of the key: which kind of random stream


def derive_seeds(*key: int) -> tuple[int, int, int]:
    """Seeds (torch 64-bit, numpy 32-bit, python) derived from the integers ``key`` alone (SeedSequence)."""
    a, b, c, d = np.random.SeedSequence(list(key)).generate_state(4, dtype=np.uint32).tolist()
    return (a << 32) | b, c, d


def seed_step(seed: int, rank: int, step: int) -> torch.Generator:
    """Seed torch (all devices), numpy and ``random`` for this step; returns a CPU generator for draws the engine
    makes itself (the quality indexes)."""
    t, n, p = derive_seeds(_STEP, seed, rank, step)
    torch.manual_seed(t)
    np.random.seed(n)
    random.seed(p)
    return torch.Generator().manual_seed(t ^ 0x5DEECE66D)


def seed_worker(seed: int, rank: int, epoch: int, worker_id: int) -> None:
    """``worker_init_fn`` of the DataLoader (bound with functools.partial): seeds the worker's generators."""
    t, n, p = derive_seeds(_WORKER, seed, rank, epoch, worker_id)
    torch.manual_seed(t)
    np.random.seed(n)
    random.seed(p)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled by ``seed`` and the epoch, this rank's share) that can start mid-epoch:
    ``start`` items of the rank's share are skipped, so a resumed run sees the very batches it would have."""

    def __init__(self, dataset: Dataset, env: DistEnv, seed: int) -> None:
        super().__init__(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=seed)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return super().__len__() - self.start
