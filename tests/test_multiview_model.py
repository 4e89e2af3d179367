"""The dependent-view model (models/multiview.py): starts as the single-view codec from its weights, uses the
reference views once trained, codes exactly (encoder = decoder) with an inter-view key picture and with temporal
references, refuses a picture without its reference views; ablation configs build."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import in_table_latents
from test_inter_model import TINY, moving_clip

from mvcodec.errors import InputError
from mvcodec.models.dpb import DecodedPicture, DecodedPictureBuffer
from mvcodec.models.inter import InterModel, build_inter
from mvcodec.models.multiview import DependentConfig, InterViewRefs, build_dependent, from_single_view

DEP = DependentConfig(**TINY.to_json(), disparities=2, slices=4)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def base_pictures(clip: torch.Tensor, t: int) -> InterViewRefs:
    """The base view's decoded picture at t, as a P picture with feature, motion and latents (made up)."""
    g = torch.Generator().manual_seed(t)
    picture = DecodedPicture(clip[:, t], torch.randn(1, 8, 64, 64, generator=g), torch.randn(1, 2, 64, 64,
                             generator=g), {"y_mv": torch.randn(1, 8, 4, 4, generator=g).round(),
                                            "y": torch.randn(1, 16, 4, 4, generator=g).round()})
    return InterViewRefs(picture, picture)


def perturb(model: torch.nn.Module) -> None:
    """Move every zero-initialised inter-view layer off zero (what training does)."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("iv_", "hdc_")):
                p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_a_model_started_from_single_view_weights_codes_as_the_single_view_model() -> None:
    single = build_inter(TINY).eval()
    dep = from_single_view(DEP, single).eval()
    clip = moving_clip(3)
    refs = [DecodedPicture(clip[:, 0])]
    with torch.no_grad():
        a = single(clip[:, 1], refs, torch.tensor([1]))
        b = dep(clip[:, 1], refs, torch.tensor([1]), side=base_pictures(clip, 1))
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-6)
        assert torch.allclose(a["bits"], b["bits"], rtol=1e-5)
        perturb(dep)
        c = dep(clip[:, 1], refs, torch.tensor([1]), side=base_pictures(clip, 1))
        other = base_pictures(clip, 2)
        d = dep(clip[:, 1], refs, torch.tensor([1]), side=other)
    assert not torch.allclose(a["bits"], c["bits"])              # trained branches change the coding
    assert not torch.allclose(c["bits"], d["bits"])              # and they read the reference views
    with pytest.raises(InputError, match="single-view part"):
        from_single_view(dataclasses.replace(DEP, M=32), single)


def test_coding_is_exact_with_an_inter_view_key_picture_then_temporal_references() -> None:
    torch.manual_seed(1)
    dep = build_dependent(DEP).eval()
    perturb(dep)
    in_table_latents(dep)
    dep.update()
    clip = moving_clip(4, 60, 70)[0]
    enc, dec = DecodedPictureBuffer(4), DecodedPictureBuffer(4)
    recon = []
    for t in range(3):
        base = InterModel.reference((clip[t:t + 1] + 0.02).clamp(0, 1))  # the base view's decoded picture
        if t:
            base.motion = torch.full_like(base.frame[:, :2], 0.5)
            base.latents = {"y": torch.ones(1, 16, 4, 8, dtype=torch.float64)}
        key = [base] if t == 0 else None                                    # inter-view reference at the key
        payload, x_enc = dep.compress(clip[t:t + 1], enc, 1, t, 1, refs=key, side=InterViewRefs(base, base))
        x_dec = dep.decompress(payload, dec, 1, t, 60, 70, 1, refs=key, side=InterViewRefs(base, base))
        assert torch.equal(x_enc, x_dec) and len(payload) > 0
        assert abs(8 * len(payload) - dep.last_estimated_bits) <= 0.02 * dep.last_estimated_bits + 96
        assert any(n for n, _ in dep.last_symbol_counts.values())  # latents coded, not all zero
        recon.append(x_dec)
    assert set(enc.keys()) == {(1, 0), (1, 1), (1, 2)}
    with pytest.raises(InputError, match="reference views"):
        dep.compress(clip[3:4], enc, 1, 3, 1)


@pytest.mark.parametrize("switch", ["iv_motion", "iv_context", "hdc_fer", "hdc_em", "hdc_attention", "hdc_shift"])
def test_each_ablation_builds_and_trains(switch: str) -> None:
    """Each switch off: the model builds, its remaining inter-view branches get gradients, and the multiview task's
    default schedule (whose trainable prefixes name every branch) is not refused for it (lmvc-v7 has two off)."""
    from mvcodec.train.engine import check_trainable
    from mvcodec.train.task import get_task

    cfg = dataclasses.replace(DEP, **{switch: False})
    dep = build_dependent(cfg).train()
    check_trainable(dep, tuple(get_task("multiview").default_stages()))
    clip = moving_clip(2)
    out = dep(clip[:, 1], [DecodedPicture(clip[:, 0])], torch.tensor([0]), side=base_pictures(clip, 1))
    (out["bits"].sum() + 100 * (out["x_hat"] - clip[:, 1]).pow(2).mean()).backward()
    grads = [p.grad for n, p in dep.named_parameters() if n.startswith(("iv_", "hdc_")) and p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert DependentConfig.from_json(cfg.to_json()) == cfg


def test_config_checks() -> None:
    with pytest.raises(InputError):
        DependentConfig(**{**TINY.to_json(), "slices": 5})
    with pytest.raises(InputError):
        DependentConfig.from_json({"nope": 1})


def test_the_multiview_task_trains_from_a_base_and_exports(tmp_path) -> None:
    """configs/multiview.yaml with a tiny base: a few steps of each stage, view 0 by the frozen base, the
    dependent view from its key picture on; final weights hold the dependent model (base not among them)."""
    import json
    from pathlib import Path

    from test_inter_codec import TINY_INTER, TINY_INTRA, write_weights

    from mvcodec.train.config import load_config
    from mvcodec.train.engine import train

    base = tmp_path / "base.safetensors"
    write_weights(base)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "multiview.yaml",
                      [f"out={tmp_path / 'run'}", f"model.base={base}", "batch_size=1", "num_workers=0",
                       "data.crop=[64, 64]", "data.length=2", "device=cpu", "lambdas=[100, 200, 400]",
                       "model.disparities=2", "stages.0.steps=1", "stages.1.steps=1", "stages.2.steps=1",
                       "stages.1.frames=3", "stages.2.frames=3", "data.frames=3", "precision=fp32"])
    assert train(cfg, command="test").completed
    info = json.loads((tmp_path / "run" / "final.json").read_text())
    assert info["task"] == "multiview" and info["config"]["model"]["base"] == str(base)
    from safetensors.torch import load_file
    state = load_file(tmp_path / "run" / "final.safetensors")
    assert any(k.startswith("hdc_em.") for k in state) and not any(k.startswith("intra.") for k in state)
    assert state["gain"].shape[-1] == TINY_INTER.M
    # shipped: the run's model with its full config and the base's hash; lmvc codes with it
    from mvcodec import zoo
    from mvcodec.codecs.learned_multiview import LmvcCodec
    from mvcodec.zoo.ship import main as ship_main

    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zoo, "_folder", lambda: zoo_dir)
        assert ship_main([str(tmp_path / "run"), "tiny-lmvc", "--trained", "3 steps"]) == 0
        entry = json.loads((zoo_dir / "index.json").read_text())["tiny-lmvc"]
        assert entry["task"] == "multiview" and set(entry["config"]) == {"dependent", "base_sha256"}
        codec = LmvcCodec(weights="tiny-lmvc", base_weights_file=str(base))
        assert codec.unavailable_reason() is None and codec.weights().config.disparities == 2
        # rejoined: the shipped dependent-view model over other shipped mlvc weights (--base)
        other_sha = write_weights(zoo_dir / "other-mlvc.safetensors", seed=5)
        index = json.loads((zoo_dir / "index.json").read_text())
        index["other-mlvc"] = {"file": "other-mlvc.safetensors", "sha256": other_sha, "task": "inter",
                               "config": {"intra": TINY_INTRA.to_json(), "inter": TINY_INTER.to_json()},
                               "command": "test", "trained": "untrained"}
        (zoo_dir / "index.json").write_text(json.dumps(index))
        assert ship_main(["zoo:tiny-lmvc", "tiny-lmvc-2", "--trained", "0 steps", "--intra", "other-mlvc"]) == 2
        assert ship_main(["zoo:tiny-lmvc", "tiny-lmvc-2", "--trained", "0 steps", "--base", "nope"]) == 2
        assert ship_main(["zoo:tiny-lmvc", "tiny-lmvc-2", "--trained", "0 steps", "--base", "other-mlvc"]) == 0
        rejoined = LmvcCodec(weights="tiny-lmvc-2")
        assert rejoined.unavailable_reason() is None and rejoined.weights().base_sha256 == other_sha
        assert rejoined.weights().config == codec.weights().config
        assert all(torch.equal(v, codec.weights().state[k]) for k, v in rejoined.weights().state.items())
        assert "tiny-lmvc" in json.loads((zoo_dir / "index.json").read_text())["tiny-lmvc-2"]["command"]


@pytest.mark.parametrize("key, pictures", [("interview", 3), ("intra", 2)])
def test_the_multiview_task_can_start_each_dependent_chain_from_an_intra_picture(tmp_path, key: str,
                                                                                  pictures: int) -> None:
    """Stage option key_picture: "interview" codes the dependent view's first picture from view 0 (a loss term);
    "intra" starts the chain from the view's own I picture, as lmvc's encoder does on real stereo (no term for it,
    the P pictures after it train); another value is refused before the run starts."""
    from test_inter_codec import write_weights

    from mvcodec.train.task import Stage, get_task

    base = tmp_path / "base.safetensors"
    write_weights(base)
    task = get_task("multiview")
    model = task.build_model({"base": str(base), "disparities": 2, "slices": 4})
    stage = Stage(name="s", steps=1, lr=1e-4, frames=3, options={"key_picture": key})
    task.check_stage(stage)
    torch.manual_seed(0)
    batch = {"frames": torch.rand(1, 2, 3, 3, 64, 64), "quality": torch.tensor([1])}
    out = task.loss(model, batch, stage, torch.tensor([200.0]))
    assert int(out["images"]) == pictures and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(InputError, match="key_picture 'both'"):
        task.check_stage(Stage(name="s", steps=1, lr=1e-4, frames=3, options={"key_picture": "both"}))
    with pytest.raises(InputError, match="frames >= 2"):
        task.check_stage(Stage(name="s", steps=1, lr=1e-4, frames=1, options={"key_picture": "intra"}))


@pytest.mark.parametrize("structure", ["ra", "mixed"])
def test_the_multiview_task_trains_on_random_access_gops(tmp_path, monkeypatch, structure: str) -> None:
    """Stage option structure: "ra" codes one hierarchical GOP as lmvc's encoder does (I 0, P 4 from 0, B 2 from 0
    or 4, B 1 and 3 from their neighbours: references 4, 2 and 1 frames apart), a loss term per dependent picture;
    "mixed" draws ld or ra per step; frames that are not a GOP + 1 and unknown structures are refused up front."""
    from test_inter_codec import write_weights

    from mvcodec.train.task import Stage, get_task
    from mvcodec.train.tasks import multiview

    base = tmp_path / "base.safetensors"
    write_weights(base)
    task = get_task("multiview")
    model = task.build_model({"base": str(base), "disparities": 2, "slices": 4})
    stage = Stage(name="s", steps=1, lr=1e-4, frames=5, options={"key_picture": "intra", "structure": structure})
    task.check_stage(stage)
    coded = []
    plan = multiview.training_plan
    monkeypatch.setattr(multiview, "training_plan", lambda *a: coded.append(plan(*a)) or coded[-1])
    torch.manual_seed(0)
    batch = {"frames": torch.rand(1, 2, 5, 3, 64, 64), "quality": torch.tensor([1])}
    out = task.loss(model, batch, stage, torch.tensor([200.0]))
    assert int(out["images"]) == 4 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    if structure == "ra":
        assert [(p.frame, p.type, p.refs) for p in coded[0]] == [
            (0, "I", ()), (4, "P", (0,)), (2, "B", (0, 4)), (1, "B", (0, 2)), (3, "B", (2, 4))]
    with pytest.raises(InputError, match="frames - 1 must be one of"):
        task.check_stage(Stage(name="s", steps=1, lr=1e-4, frames=4, options={"structure": structure}))
    with pytest.raises(InputError, match="structure 'hier'"):
        task.check_stage(Stage(name="s", steps=1, lr=1e-4, frames=5, options={"structure": "hier"}))


def test_configs_multiview_yaml_writes_out_the_tasks_default_schedule() -> None:
    from pathlib import Path

    from mvcodec.train.config import load_config
    from mvcodec.train.task import get_task

    written = load_config(Path(__file__).resolve().parents[1] / "configs" / "multiview.yaml").stages
    default = get_task("multiview").default_stages()
    def described(s):
        return s.name, tuple(s.trainable), s.frames, s.steps, s.lr, dict(s.options)
    assert [described(s) for s in written] == [described(s) for s in default]
    assert [s.options.get("key_picture", "interview") for s in default] == ["interview", "intra", "intra"]
    assert [s.options.get("structure", "ld") for s in default] == ["ld", "mixed", "mixed"]
