"""``mvcodec train``: config + overrides, resume, task listing, one-line errors; and configs/toy.yaml documents
every field.  The subcommand is mounted on a parser built like ``mvcodec.cli.main`` (the toy task of
test_train_engine is registered by importing it)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import test_train_engine  # noqa: F401  (registers the toy training tasks)
import yaml

from mvcodec.cli import train_cmd
from mvcodec.cli.main import EXIT_USAGE, OneLineParser
from mvcodec.errors import MvcodecError
from mvcodec.train.config import RunConfig
from mvcodec.train.task import Stage

TOY_YAML = Path(__file__).resolve().parents[1] / "configs" / "toy.yaml"
FAST = ["task=toy-ae-test", "model.qualities=6", "stages.0.steps=3", "batch_size=2", "num_workers=0", "device=cpu",
        "log_every=1"]


def cli(argv: list[str]) -> int:
    """What ``mvcodec.cli.main.main`` does with ``train`` registered: run, or one error line and status 2."""
    parser = OneLineParser(prog="mvcodec")
    train_cmd.add_parser(parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except MvcodecError as exc:
        print(f"mvcodec: error: {exc}")
        return EXIT_USAGE


def test_list_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["train", "--list-tasks"]) == 0
    out = capsys.readouterr().out
    assert "toy-ae-test" in out and "transforms (3 steps)" in out


def test_train_from_the_toy_config_with_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert cli(["train", "--config", str(TOY_YAML), "--out", str(run), "--set", *FAST]) == 0
    assert "final.safetensors: trained 3 steps" in capsys.readouterr().out
    info = json.loads((run / "final.json").read_text())
    assert info["command"] == f"mvcodec train --config {TOY_YAML} --out {run} --set {' '.join(FAST)}"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["out"] == str(run) and saved["stages"][0]["steps"] == 3 and saved["task"] == "toy-ae-test"


def test_stop_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert cli(["train", "--config", str(TOY_YAML), "--out", str(run), "--stop-after", "2", "--set", *FAST]) == 0
    assert f"paused at step 2; continue with mvcodec train --resume {run}" in capsys.readouterr().out
    assert not (run / "final.json").exists()
    assert cli(["train", "--resume", str(run), "--set", "seed=1"]) == EXIT_USAGE
    assert "--resume may only change device, num_workers, log_every, checkpoint_every" in capsys.readouterr().out
    assert cli(["train", "--resume", str(run), "--set", "log_every=3"]) == 0
    info = json.loads((run / "final.json").read_text())
    assert info["resumed_with"] == [f"mvcodec train --resume {run} --set log_every=3"]
    assert info["config"]["log_every"] == 3 and yaml.safe_load((run / "config.yaml").read_text())["log_every"] == 1


@pytest.mark.parametrize("argv, fragment", [
    (["--config", "missing.yaml"], "missing.yaml: no such config file"),
    (["--config", str(TOY_YAML), "--set", "batch_size=two"], "batch_size: expected int"),
    (["--resume", "RUN", "--out", "elsewhere"], "--out cannot move it"),
    (["--resume", "nowhere"], "not a training run folder"),
    (["--config", str(TOY_YAML), "--stop-after", "0"], "--stop-after must be >= 1"),
    (["--config", str(TOY_YAML), "--out", "never-written", "--set", "init=missing.safetensors"],
     "init: missing.safetensors: no such weights file"),
    (["--config", str(TOY_YAML), "--out", "never-written", "--set", "init=zoo:nope-v0"],
     "init: no shipped weights 'nope-v0'"),
])
def test_errors_are_one_line_status_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["train", *argv]) == EXIT_USAGE
    out = capsys.readouterr().out
    assert fragment in out and out.count("\n") == 1


def test_an_existing_run_folder_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    assert cli(["train", "--config", str(TOY_YAML), "--out", str(run), "--set", *FAST]) == EXIT_USAGE
    assert "exists and is not empty" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == ["keep.txt"]


def test_one_mode_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli(["train"])
    assert info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit):
        cli(["train", "--config", "a.yaml", "--resume", "RUN"])


def test_toy_yaml_documents_every_field() -> None:
    text = TOY_YAML.read_text()
    raw = yaml.safe_load(text)
    assert list(raw) == [f.name for f in dataclasses.fields(RunConfig)]
    assert set(raw["stages"][0]) == {f.name for f in dataclasses.fields(Stage)}
    lines = text.splitlines()
    for key in raw:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
        assert lines[index - 1].startswith("#"), f"{key} has no comment above it"
    for field in dataclasses.fields(Stage):
        assert any(line.startswith(f"#   {field.name} ") for line in lines), f"stage field {field.name} undocumented"
