"""``mvcodec train``: train a learned codec from a YAML run config, resume a run, or list the training tasks.

::

    mvcodec train --config configs/toy.yaml [--out RUN] [--set stages.0.steps=10 batch_size=4 ...]
    mvcodec train --resume RUN [--set device=cuda log_every=50 ...]
                                                    continue RUN exactly where its last checkpoint left it
    mvcodec train --list-tasks
    torchrun --nproc_per_node=N -m mvcodec train ...   the same command on N processes (DDP; gloo/NCCL)

Writes RUN/config.yaml (resolved), RUN/checkpoints/, RUN/tb/ (TensorBoard), RUN/train_log.jsonl, and at the
end RUN/final.safetensors + RUN/final.json (see :mod:`mvcodec.train.engine`).
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import replace


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a learned codec (config YAML, resume, DDP under torchrun)",
                       description="Train a learned codec. Run under torchrun for several processes.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", metavar="YAML", help="run config (see configs/toy.yaml for every field)")
    what.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    what.add_argument("--list-tasks", action="store_true", help="list the registered training tasks")
    p.add_argument("--out", metavar="RUN", help="run folder (new or empty; overrides out: of the config)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                   help="override config fields by dotted key, e.g. stages.0.steps=10 batch_size=4 "
                        "(with --resume: only device, num_workers, log_every, checkpoint_every)")
    p.add_argument("--stop-after", type=int, metavar="N",
                   help="pause after N steps (checkpoint written); continue later with --resume")
    p.add_argument("--dump-state", metavar="DIR", help=argparse.SUPPRESS)  # every rank's weights (DDP tests)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mvcodec.errors import InputError

    if args.list_tasks:
        return _list_tasks()
    if args.resume and args.out:
        raise InputError("--resume continues the run in its own folder: --out cannot move it")
    if args.stop_after is not None and args.stop_after < 1:
        raise InputError("--stop-after must be >= 1")
    from mvcodec.train.config import load_config
    from mvcodec.train.engine import resume_config, train

    if args.resume:
        cfg = resume_config(args.resume, args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
        cfg = replace(cfg, out=args.out) if args.out else cfg
    result = train(cfg, resume=bool(args.resume), stop_after=args.stop_after, command=_command(args),
                   dump_state=args.dump_state)
    if not result.main:
        return 0
    if result.completed:
        print(f"{result.run_dir / 'final.safetensors'}: trained {result.global_step} steps, "
              f"{result.images_per_s:.2f} images/s")
    else:
        print(f"{result.run_dir}: paused at step {result.global_step}; continue with "
              f"mvcodec train --resume {shlex.quote(str(result.run_dir))}")
    return 0


def _list_tasks() -> int:
    from mvcodec.train.task import get_task, task_names

    for name in task_names():
        stages = ", ".join(f"{s.name} ({s.steps} steps)" for s in get_task(name).default_stages())
        print(f"{name:<16} default stages: {stages or 'none'}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (under torchrun: with its process count)."""
    words = ["mvcodec", "train"]
    words += ["--resume", args.resume] if args.resume else ["--config", args.config]
    if args.out:
        words += ["--out", args.out]
    if args.overrides:
        words += ["--set", *args.overrides]
    if args.stop_after is not None:
        words += ["--stop-after", str(args.stop_after)]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        per_node = os.environ.get("LOCAL_WORLD_SIZE", str(world))
        words = ["torchrun", f"--nproc_per_node={per_node}", "-m", *words]
    return shlex.join(words)
