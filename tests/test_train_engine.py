"""The training engine with a toy task: config parsing, the RD loss, stages, checkpoints and exact resume.

The toy task (a tiny conv auto-encoder with a factorized prior and per-quality gains, on deterministic
synthetic images) is registered here under test-only names; the other training test modules import it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset

from mvcodec.entropy import EntropyBottleneck
from mvcodec.errors import CodecError, InputError
from mvcodec.metrics.msssim import ms_ssim_rgb_batch
from mvcodec.train.checkpoint import sha256_file
from mvcodec.train.config import RunConfig, config_hash, load_config, save_config
from mvcodec.train.engine import resume_config, train
from mvcodec.train.rd_loss import average_terms, likelihood_bits, ms_ssim, rd_loss
from mvcodec.train.task import Stage, check_option_names, register_task

TOY = "toy-ae-test"
TOY_AUX = "toy-ae-aux-test"
torch.set_num_threads(1)


class ToyCodec(nn.Module):
    """x (B, 3, H, W) -> g_a -> y * gain[q] -> EntropyBottleneck -> / gain[q] -> g_s -> x_hat."""

    def __init__(self, channels: int = 6, latent: int = 3, qualities: int = 2) -> None:
        super().__init__()
        self.g_a = nn.Sequential(nn.Conv2d(3, channels, 3, 2, 1), nn.ReLU(), nn.Conv2d(channels, latent, 3, 2, 1))
        self.g_s = nn.Sequential(nn.ConvTranspose2d(latent, channels, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(channels, 3, 4, 2, 1))
        self.gain = nn.Parameter(torch.ones(qualities, latent))
        self.entropy_bottleneck = EntropyBottleneck(latent, filters=(3, 3))

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict[str, Any]:
        gain = self.gain[quality][:, :, None, None]
        y_hat, likelihoods = self.entropy_bottleneck(self.g_a(x) * gain)
        return {"x_hat": self.g_s(y_hat / gain), "likelihoods": {"y": likelihoods}}


class ToyAuxCodec(ToyCodec):
    """ToyCodec plus an auxiliary parameter trained only by ``aux_loss`` (like CompressAI's quantiles)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.aux_target = nn.Parameter(torch.zeros(4))

    def aux_loss(self) -> torch.Tensor:
        return (self.aux_target - 1).pow(2).sum()


class ToyImages(Dataset):
    """``count`` smooth random images (3, size, size) in [0, 1]; item i depends on (seed, i) only."""

    def __init__(self, count: int = 12, size: int = 16, seed: int = 0) -> None:
        self.count, self.size, self.seed = count, size, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + i)
        coarse = torch.rand(1, 3, 4, 4, generator=g)
        img = torch.nn.functional.interpolate(coarse, size=(self.size, self.size), mode="bilinear")[0]
        return {"image": (img + 0.05 * torch.rand(img.shape, generator=g)).clamp(0, 1)}


class ToyTask:
    name = TOY
    model_class: type[ToyCodec] = ToyCodec

    def build_model(self, model_cfg: dict[str, Any]) -> nn.Module:
        unknown = set(model_cfg) - {"channels", "latent", "qualities"}
        if unknown:
            raise InputError(f"model: unknown key {sorted(unknown)[0]!r}")
        return self.model_class(**model_cfg)

    def dataset(self, data_cfg: dict[str, Any], split: str) -> Dataset:
        return ToyImages(**data_cfg)

    def default_stages(self) -> list[Stage]:
        return [Stage("transforms", steps=3, lr=3e-3, trainable=("g_a", "g_s", "gain")),
                Stage("all", steps=3, lr=1e-3)]

    def check_stage(self, stage: Stage) -> None:
        check_option_names(TOY, stage, ("poison",))

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: Stage,
             lmbda: torch.Tensor) -> dict[str, torch.Tensor]:
        x = batch["image"]
        out = model(x, batch["quality"])
        terms = rd_loss(out["x_hat"], x, likelihood_bits(out["likelihoods"]), lmbda, stage.distortion)
        if stage.options.get("poison"):
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    def finalize(self, model: nn.Module) -> None:
        model.entropy_bottleneck.update()


class ToyAuxTask(ToyTask):
    name = TOY_AUX
    model_class = ToyAuxCodec


for _name, _factory in ((TOY, ToyTask), (TOY_AUX, ToyAuxTask)):
    try:
        register_task(_name)(_factory)
    except ValueError:  # imported a second time by another test module
        pass


def toy_config(out: Path, **overrides: Any) -> RunConfig:
    """A toy run: 2 stages of 3 steps, batch 2, no workers, CPU."""
    base = {"task": TOY, "lambdas": [20.0, 200.0], "out": str(out), "model": {"qualities": 2},
            "data": {"count": 8, "size": 16}, "batch_size": 2, "num_workers": 0, "device": "cpu",
            "log_every": 2, "checkpoint_every": 100}
    base.update(overrides)
    return load_config(base=base)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


# ------------------------------------------------------------------------------------------------ config
def test_config_from_yaml_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"task": TOY, "lambdas": [1, 2.5], "batch_size": 2}))
    cfg = load_config(path, ["stages.0.steps=7", "stages.1.lr=1e-4", "batch_size=4", "model.channels=5",
                             "device=cpu"])
    default = ToyTask().default_stages()
    assert [s.name for s in cfg.stages] == [s.name for s in default]  # absent stages: the task's default
    assert cfg.stages[0].steps == 7 and cfg.stages[0].trainable == default[0].trainable
    assert cfg.stages[1].lr == 1e-4 and isinstance(cfg.stages[1].lr, float)
    assert cfg.batch_size == 4 and cfg.model == {"channels": 5} and cfg.device == "cpu"
    assert cfg.lambdas == (1.0, 2.5) and all(isinstance(v, float) for v in cfg.lambdas)
    assert cfg.total_steps == 7 + default[1].steps


@pytest.mark.parametrize("override, fragment", [
    ("batchsize=3", "unknown key 'batchsize'"),
    ("batch_size=abc", "batch_size: expected int"),
    ("batch_size=2.5", "batch_size: expected int"),
    ("device=gpu", "device: 'gpu' is not one of"),
    ("stages.0.distortion=ssim", "stages.0.distortion"),
    ("stages.0.bogus=1", "config: stages.0: unknown key 'bogus'"),
    ("stages.5.steps=1", "not an index of a list of 2"),
    ("lambdas=[]", "lambdas: at least one"),
    ("batch_size=0", "batch_size: must be >= 1"),
    ("stages.1.name=transforms", "stages: names must be unique"),
    ("stages.0.name=a/b", "stages.0.name: letters, digits"),
    ("stages.0.steps=0", "stages.0.steps: must be >= 1"),
    ("seed=-1", "seed: must be >= 0"),
    ("grad_clip=true", "grad_clip: expected float"),
    ("task=nope", "unknown training task 'nope'"),
    ("noequals", "expected dotted.key=value"),
])
def test_config_errors_are_one_line(tmp_path: Path, override: str, fragment: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"task": TOY, "lambdas": [1.0]}))
    with pytest.raises(InputError) as info:
        load_config(path, [override])
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_config(bad)
    bad.write_text(yaml.safe_dump({"lambdas": [1.0]}))
    with pytest.raises(InputError, match="task"):
        load_config(bad)


def test_saved_config_round_trips_and_hash_ignores_operational_fields(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path / "a", stages=[{"name": "s", "steps": 2, "options": {"k": [1, 2]}}])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert config_hash(replace(cfg, out="elsewhere", device="cuda", num_workers=3, log_every=7)) == config_hash(cfg)
    assert config_hash(replace(cfg, seed=1)) != config_hash(cfg)


# ------------------------------------------------------------------------------------------------ rd loss
def test_likelihood_bits_sums_every_tensor_per_sample() -> None:
    a, b = torch.rand(2, 3, 4, 4) * 0.9 + 0.05, torch.rand(2, 5) * 0.9 + 0.05
    expected = -torch.log2(a).flatten(1).sum(1) - torch.log2(b).sum(1)
    for form in ([a, b], {"y": a, "z": b}):
        torch.testing.assert_close(likelihood_bits(form), expected)
    torch.testing.assert_close(likelihood_bits(a), -torch.log2(a).flatten(1).sum(1))


def test_rd_loss_mse_is_lambda_times_mse_plus_bpp_per_sample() -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 10)
    x_hat = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    bits, lmbda = torch.tensor([80.0, 160.0, 0.0]), torch.tensor([1.0, 10.0, 100.0])
    out = rd_loss(x_hat, x, bits, lmbda)
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(out["loss"], (lmbda * mse + bits / 80).mean())
    torch.testing.assert_close(out["bpp"], (bits / 80).mean())
    torch.testing.assert_close(out["psnr"], (-10 * torch.log10(mse)).mean().detach())
    assert all(not out[k].requires_grad for k in ("bpp", "mse", "psnr"))
    out["loss"].backward()
    per_sample = x_hat.grad.flatten(1).norm(dim=1) / (x_hat - x).detach().flatten(1).norm(dim=1)
    torch.testing.assert_close(per_sample / per_sample[0], lmbda / lmbda[0])  # the gradient scales with lambda


def test_rd_loss_video_counts_every_frame_as_pixels() -> None:
    x = torch.rand(2, 4, 3, 8, 8)  # (B, T, 3, H, W)
    out = rd_loss(x.clone(), x, torch.tensor([256.0, 512.0]), torch.ones(2))
    torch.testing.assert_close(out["bpp"], torch.tensor((1.0 + 2.0) / 2))
    assert out["psnr"].item() == pytest.approx(100.0)  # identical frames: the evaluation's cap


@pytest.mark.parametrize("size", [(8, 12), (24, 20), (64, 48), (170, 165)])
def test_ms_ssim_is_the_evaluation_metric_and_differentiable(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (2, *size, 3), dtype=np.uint8)
    rec = np.clip(ref + rng.normal(0, 25, ref.shape), 0, 255).astype(np.uint8)
    x, x_hat = (torch.from_numpy(a).permute(0, 3, 1, 2).float().div(255) for a in (ref, rec))
    x_hat.requires_grad_()
    score = ms_ssim(x_hat, x)
    np.testing.assert_allclose(score.detach().double().numpy(), ms_ssim_rgb_batch(ref, rec), atol=2e-5)
    (1 - score).sum().backward()
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0


def test_rd_loss_msssim_and_average_terms() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    x_hat = (x + 0.05 * torch.randn_like(x)).requires_grad_()
    frames = [rd_loss(x_hat * s, x, torch.tensor([10.0, 20.0]), torch.tensor([4.0, 8.0]), "msssim")
              for s in (1.0, 0.9)]
    score = ms_ssim(x_hat.detach(), x)
    torch.testing.assert_close(frames[0]["msssim"], score.mean())
    torch.testing.assert_close(frames[0]["loss"], (torch.tensor([4.0, 8.0]) * (1 - score) + torch.tensor(
        [10.0, 20.0]) / 1024).mean(), check_dtype=False)
    mean = average_terms(frames)
    torch.testing.assert_close(mean["loss"], (frames[0]["loss"] + frames[1]["loss"]) / 2)
    mean["loss"].backward()
    assert x_hat.grad is not None


# ------------------------------------------------------------------------------------------------ engine
def test_training_run_writes_every_artefact(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path / "run")
    result = train(cfg, command="mvcodec train --config toy.yaml", dump_state=tmp_path / "dump")
    run = tmp_path / "run"
    assert result.completed and result.global_step == 6 and result.images_per_s > 0
    assert load_config(run / "config.yaml") == cfg
    info = json.loads((run / "final.json").read_text())
    assert info["sha256"] == sha256_file(run / "final.safetensors")
    assert info["task"] == TOY and info["config"]["lambdas"] == [20.0, 200.0] and info["total_steps"] == 6
    assert info["command"] == "mvcodec train --config toy.yaml" and info["images"] == 6 * 2
    assert info["images_per_s"] > 0 and info["device"].startswith("cpu")
    final = weights(run / "final.safetensors")
    assert final["entropy_bottleneck.table_counts"].numel() > 0  # task.finalize ran before the export
    ckpt = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert (ckpt["stage"], ckpt["step"], ckpt["global_step"]) == (1, 3, 6)
    assert ckpt["config_sha256"] == config_hash(cfg)
    assert len(list((run / "checkpoints").glob("step-*.safetensors"))) == 1
    assert list((run / "tb").glob("events.out.tfevents.*"))
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6] and all(np.isfinite(r["loss"]) for r in rows)
    assert {"bpp", "psnr", "mse", "images_per_s", "lr", "grad_norm"} <= set(rows[0])


def test_stages_train_only_their_prefixes(tmp_path: Path) -> None:
    train(toy_config(tmp_path / "run"), dump_state=tmp_path / "dump")
    start = weights(tmp_path / "dump" / "rank0-start.safetensors")
    first = weights(tmp_path / "run" / "stages" / "00-transforms.safetensors")
    second = weights(tmp_path / "run" / "stages" / "01-all.safetensors")
    frozen = [k for k, _ in ToyCodec().named_parameters() if k.startswith("entropy_bottleneck.")]
    assert frozen and all(torch.equal(start[k], first[k]) for k in frozen)
    assert not torch.equal(start["g_a.0.weight"], first["g_a.0.weight"])
    assert not torch.equal(start["gain"], first["gain"])
    assert any(not torch.equal(first[k], second[k]) for k in frozen)  # stage "all" trains the prior too


@pytest.mark.parametrize("stop_after", [2, 3, 4])
def test_resumed_run_ends_with_identical_weights(tmp_path: Path, stop_after: int) -> None:
    train(toy_config(tmp_path / "whole"))
    cfg = toy_config(tmp_path / "parts")
    paused = train(cfg, stop_after=stop_after, command="first")
    assert not paused.completed and paused.global_step == stop_after
    assert not (tmp_path / "parts" / "final.safetensors").exists()
    resumed = train(resume_config(tmp_path / "parts"), resume=True, command="second")
    assert resumed.completed and resumed.global_step == 6
    a, b = weights(tmp_path / "whole" / "final.safetensors"), weights(tmp_path / "parts" / "final.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((tmp_path / "parts" / "final.json").read_text())
    assert info["command"] == "first" and info["resumed_with"] == ["second"] and info["images"] == 12
    rows = [json.loads(line) for line in (tmp_path / "parts" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6] and all(r["images_per_s"] > 0 for r in rows)


def test_workers_see_the_same_data_as_the_main_process(tmp_path: Path) -> None:
    stages = [{"name": "s", "steps": 5, "lr": 1e-3}]
    train(toy_config(tmp_path / "w0", stages=stages))
    train(toy_config(tmp_path / "w1", stages=stages, num_workers=1))
    a, b = weights(tmp_path / "w0" / "final.safetensors"), weights(tmp_path / "w1" / "final.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_aux_loss_is_trained(tmp_path: Path) -> None:
    train(toy_config(tmp_path / "run", task=TOY_AUX, stages=[{"name": "s", "steps": 4, "lr": 0.05}]))
    aux = weights(tmp_path / "run" / "final.safetensors")["aux_target"]
    assert (aux > 0.1).all()  # moved from 0 towards the aux loss's optimum 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert rows[-1]["aux_loss"] < rows[0]["aux_loss"]


def test_run_folder_rules(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path / "run", stages=[{"name": "s", "steps": 2}])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not empty"):
        train(cfg)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    cfg = replace(cfg, out=str(tmp_path / "done"))
    train(cfg)
    with pytest.raises(InputError, match="run is complete"):
        train(resume_config(tmp_path / "done"), resume=True)
    with pytest.raises(InputError, match="no config.yaml"):
        resume_config(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no run folder"):
        train(replace(cfg, out=""))


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path / "run")
    train(cfg, stop_after=2)
    save_config(replace(cfg, seed=5), tmp_path / "run" / "config.yaml")
    with pytest.raises(InputError, match="config.yaml changed"):
        train(resume_config(tmp_path / "run"), resume=True)


@pytest.mark.parametrize("overrides, error, fragment", [
    ({"stages": [{"name": "s", "steps": 1, "trainable": ["g_b"]}]}, InputError, "names no parameter"),
    ({"batch_size": 9}, InputError, "fewer than batch_size"),
    ({"stages": [{"name": "s", "steps": 1, "options": {"poisson": True}}]}, InputError,
     "option 'poisson', which this task does not read"),
    ({"stages": [{"name": "s", "steps": 2, "options": {"poison": True}}]}, CodecError, "diverged at step 2"),
])
def test_training_errors(tmp_path: Path, overrides: dict[str, Any], error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        train(toy_config(tmp_path / "run", **overrides))
    if error is InputError:  # refused before anything was written
        assert not (tmp_path / "run").exists()


def test_a_bad_model_config_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model: unknown key 'width'"):
        train(toy_config(tmp_path / "run", model={"width": 3}))
    assert not (tmp_path / "run").exists()


def test_checkpoints_every_n_steps_and_at_stage_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mvcodec.train import engine

    steps: list[int] = []
    real = engine.save_checkpoint
    monkeypatch.setattr(engine, "save_checkpoint", lambda *a: steps.append(a[4].global_step) or real(*a))
    train(toy_config(tmp_path / "run", checkpoint_every=2))
    assert steps == [2, 3, 4, 6]  # every 2 steps, plus the end of stage 1 (step 3); step 6 written once
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["latest.json", "step-00000006.safetensors"]  # older step files are removed


def test_a_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    train(toy_config(tmp_path / "run"), stop_after=2)
    step = tmp_path / "run" / "checkpoints" / "step-00000002.safetensors"
    data = bytearray(step.read_bytes())
    data[-1] ^= 0xFF
    step.write_bytes(bytes(data))
    with pytest.raises(InputError, match="missing or corrupt"):
        train(resume_config(tmp_path / "run"), resume=True)


# ------------------------------------------------------------------------------------------------ precision
def test_bf16_training_runs_with_float32_likelihoods_and_loss(tmp_path: Path) -> None:
    """precision bf16: the convolutions autocast, the entropy model's likelihoods and the loss stay float32,
    the weights stay float32, and the export records the arithmetic."""
    cfg = toy_config(tmp_path / "run", precision="bf16")
    result = train(cfg)
    info = json.loads((tmp_path / "run" / "final.json").read_text())
    assert result.completed and info["arithmetic"] == "bf16 autocast" and info["config"]["precision"] == "bf16"
    assert all(t.dtype != torch.bfloat16 for t in weights(tmp_path / "run" / "final.safetensors").values())
    rows = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in rows)
    model = ToyCodec()
    with torch.autocast("cpu", torch.bfloat16):
        out = model(ToyImages()[0]["image"][None], torch.tensor([0]))
    assert out["x_hat"].dtype == torch.bfloat16 and out["likelihoods"]["y"].dtype == torch.float32
    terms = rd_loss(out["x_hat"], ToyImages()[0]["image"][None], likelihood_bits(out["likelihoods"]),
                    torch.tensor([20.0]))
    assert terms["loss"].dtype == torch.float32


def test_precision_is_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="precision"):
        toy_config(tmp_path / "run", precision="fp16")
    assert toy_config(tmp_path / "run").precision == "fp32"


def test_a_run_can_start_from_another_runs_weights(tmp_path: Path) -> None:
    """``init``: the model starts from a weights file (here the first run's first stage) instead of its random
    initialisation; final.json records the file and its hash; a file that does not fit is a one-line error."""
    train(toy_config(tmp_path / "first"))
    stage_file = tmp_path / "first" / "stages" / "00-transforms.safetensors"
    cfg = toy_config(tmp_path / "second", init=str(stage_file), stages=[{"name": "p", "steps": 1,
                                                                         "trainable": ["entropy_bottleneck."]}])
    train(cfg, dump_state=tmp_path / "dump")
    start, source = weights(tmp_path / "dump" / "rank0-start.safetensors"), weights(stage_file)
    assert all(torch.equal(start[k], v) for k, v in source.items())
    final = weights(tmp_path / "second" / "final.safetensors")
    assert torch.equal(final["g_a.0.weight"], source["g_a.0.weight"])  # frozen in the stage: kept as loaded
    info = json.loads((tmp_path / "second" / "final.json").read_text())
    assert info["init"] == {"weights": str(stage_file), "prefix": "", "exclude": [], "sha256": sha256_file(stage_file)}
    for name, tensors in (("missing.safetensors", None), ("alien.safetensors", {"nope": torch.zeros(1)}),
                          ("shape.safetensors", {"g_a.0.weight": torch.zeros(1)})):
        path = tmp_path / name
        if tensors is not None:
            save_file(tensors, str(path))
        with pytest.raises(InputError, match="init: ") as err:
            train(toy_config(tmp_path / f"run-{name}", init=str(path)))
        assert "\n" not in str(err.value) and not (tmp_path / f"run-{name}").exists()
    save_file({f"toy.{k}": v for k, v in source.items()}, str(tmp_path / "prefixed.safetensors"))
    train(toy_config(tmp_path / "prefixed", init=str(tmp_path / "prefixed.safetensors"), init_prefix="toy.",
                     stages=[{"name": "p", "steps": 1, "trainable": ["entropy_bottleneck."]}]))
    assert torch.equal(weights(tmp_path / "prefixed" / "final.safetensors")["g_a.0.weight"], source["g_a.0.weight"])
    train(toy_config(tmp_path / "excluded", init=str(stage_file), init_exclude=["g_a."], seed=3,
                     stages=[{"name": "p", "steps": 1, "trainable": ["entropy_bottleneck."]}]),
          dump_state=tmp_path / "d2")
    fresh = weights(tmp_path / "d2" / "rank0-start.safetensors")
    assert not torch.equal(fresh["g_a.0.weight"], source["g_a.0.weight"]) and torch.equal(fresh["gain"], source["gain"])
    with pytest.raises(InputError, match="no tensor under the prefix"):
        train(toy_config(tmp_path / "bad-prefix", init=str(stage_file), init_prefix="inter."))
    with pytest.raises(InputError, match="init: no shipped weights"):
        train(toy_config(tmp_path / "bad-zoo", init="zoo:nope-v0"))
