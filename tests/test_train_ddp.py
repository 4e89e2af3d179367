"""DistributedDataParallel training: ``python -m torch.distributed.run --nproc_per_node=2`` on CPU (gloo).

Each rank dumps its weights at the start and the end (the hidden ``--dump-state`` option); both ranks must
start equal, end equal, and end somewhere else than they started.  Then the run is paused and resumed on two
processes, which must end exactly where one uninterrupted two-process run ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

TESTS = Path(__file__).resolve().parent
LAUNCHER = """
import argparse, sys
sys.path.insert(0, {tests!r})
import test_train_engine  # registers the toy training task
from mvcodec.cli import train_cmd
from mvcodec.errors import MvcodecError
parser = argparse.ArgumentParser(prog="mvcodec")
train_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.run(args))
except MvcodecError as exc:
    print(f"mvcodec: error: {{exc}}", file=sys.stderr)
    sys.exit(2)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(tmp_path: Path, *argv: str, status: int = 0) -> str:
    """Run ``train *argv`` on 2 processes; returns their stderr after checking the exit status."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER.format(tests=str(TESTS)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           str(launcher), "train", *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert (proc.returncode == 0) == (status == 0), proc.stderr[-3000:]
    return proc.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({
        "task": "toy-ae-test", "lambdas": [20.0, 200.0], "model": {"qualities": 2}, "data": {"count": 8},
        "stages": [{"name": "transforms", "steps": 2, "lr": 3e-3, "trainable": ["g_a", "g_s", "gain"]},
                   {"name": "all", "steps": 2, "lr": 1e-3}],
        "batch_size": 2, "num_workers": 0, "device": "auto", "log_every": 1, "checkpoint_every": 100}))
    return path


def states(folder: Path, when: str) -> list[dict[str, torch.Tensor]]:
    return [load_file(str(folder / f"rank{r}-{when}.safetensors")) for r in range(2)]


def test_two_cpu_processes_hold_identical_weights(tmp_path: Path, config: Path) -> None:
    run, dump = tmp_path / "run", tmp_path / "dump"
    torchrun(tmp_path, "--config", str(config), "--out", str(run), "--dump-state", str(dump))
    start, end = states(dump, "start"), states(dump, "end")
    assert all(torch.equal(start[0][k], start[1][k]) for k in start[0])
    assert all(torch.equal(end[0][k], end[1][k]) for k in end[0])
    assert not torch.equal(start[0]["g_a.0.weight"], end[0]["g_a.0.weight"])
    info = json.loads((run / "final.json").read_text())
    assert info["world_size"] == 2 and info["global_batch"] == 4 and info["images"] == 4 * 4
    assert info["command"].startswith("torchrun --nproc_per_node=2 -m mvcodec train --config")
    final = load_file(str(run / "final.safetensors"))
    assert all(torch.equal(final[k], end[0][k]) for k in final if "table" not in k and "medians" not in k)


@pytest.mark.slow
def test_two_processes_resume_exactly(tmp_path: Path, config: Path) -> None:
    torchrun(tmp_path, "--config", str(config), "--out", str(tmp_path / "whole"))
    torchrun(tmp_path, "--config", str(config), "--out", str(tmp_path / "parts"), "--stop-after", "3")
    torchrun(tmp_path, "--resume", str(tmp_path / "parts"), "--dump-state", str(tmp_path / "dump"))
    whole = load_file(str(tmp_path / "whole" / "final.safetensors"))
    parts = load_file(str(tmp_path / "parts" / "final.safetensors"))
    assert all(torch.equal(whole[k], parts[k]) for k in whole)
    end = states(tmp_path / "dump", "end")
    assert all(torch.equal(end[0][k], end[1][k]) for k in end[0])


@pytest.mark.slow
def test_an_error_on_every_rank_ends_the_run_without_hanging(tmp_path: Path, config: Path) -> None:
    stderr = torchrun(tmp_path, "--config", str(config), "--out", str(tmp_path / "run"),
                      "--set", "stages.1.options={poison: true}", status=1)
    assert "training diverged at step 3" in stderr
    assert (tmp_path / "run" / "stages" / "00-transforms.safetensors").is_file()
