"""Checkpoints of a training run: safetensors (weights, optimizer moments) + JSON (where the run stands).

::

    RUN/checkpoints/step-00001200.safetensors   "model.<name>" every parameter and buffer of the model
                                                "optim.<name>.<key>" the stage's Adam state (step, exp_avg, ...)
    RUN/checkpoints/latest.json                 {"file": "step-00001200.safetensors", "sha256": ..., "stage": 1,
                                                 "step": 200 (optimizer steps done in that stage),
                                                 "global_step": 1200, "config_sha256": ..., "rng": ..., ...}
    RUN/stages/01-<name>.safetensors            the model's weights at the end of each stage

Writing order makes a crash harmless: the tensors go to a new file (atomically), then ``latest.json`` is
replaced (atomically) to point at it, then older step files are removed; ``latest.json`` therefore always
names a complete file, whose hash it also holds.  Reading uses safetensors and ``json`` only (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from mvcodec.atomic import atomic_write_text, write_atomic
from mvcodec.errors import CodecError, InputError

FORMAT = 1
LATEST = "latest.json"


@dataclass
class TrainState:
    """Where a run stands after ``global_step`` optimizer steps: ``step`` steps done in stage ``stage``."""

    stage: int = 0
    step: int = 0
    global_step: int = 0
    images: int = 0
    train_time_s: float = 0.0
    wall_time_s: float = 0.0
    commands: list[str] = field(default_factory=list)
    init_sha256: str = ""  # of the config's ``init`` weights file, when the run started from one


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_tensors(model: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``model`` as standalone CPU tensors (safetensors refuses shared storage)."""
    return {prefix + k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def weights_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """``tensors`` and ``metadata`` as the bytes of a safetensors file, the same bytes for the same content.

    The safetensors writer orders the keys of its JSON header as a hash map does (differently from call to
    call), and the header is part of the file a weights hash names: the header is rewritten here with sorted
    keys (padded with spaces to 8 bytes, as the format allows); the tensor data is untouched."""
    data = save(tensors, metadata=metadata)
    n = struct.unpack("<Q", data[:8])[0]
    text = json.dumps(json.loads(data[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def save_weights(path: str | Path, model: nn.Module, metadata: dict[str, str] | None = None) -> str:
    """Write ``model``'s state dict as safetensors (:func:`weights_bytes`), atomically; returns the SHA-256."""
    data = weights_bytes(model_tensors(model), metadata)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(run_dir: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    names: list[str], state: TrainState, config_sha256: str, rng: dict[str, Any]) -> Path:
    """Write a checkpoint of ``model`` and ``optimizer`` (whose parameters are named ``names``, in order);
    ``rng`` describes the random state (JSON data)."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    tensors = model_tensors(model, "model.")
    for index, st in optimizer.state_dict()["state"].items():
        for key, value in st.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"optim.{names[index]}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    name = f"step-{state.global_step:08d}.safetensors"
    data = save(tensors)
    write_atomic(folder / name, data)
    meta = {"format": FORMAT, "file": name, "sha256": hashlib.sha256(data).hexdigest(), "config_sha256": config_sha256,
            "rng": rng,
            **asdict(state)}
    atomic_write_text(folder / LATEST, json.dumps(meta, indent=2))
    for old in folder.glob("step-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return folder / name


def load_checkpoint(run_dir: str | Path, config_sha256: str) -> tuple[TrainState, dict[str, torch.Tensor]] | None:
    """The state and tensors of the run's latest checkpoint, or None when it has none yet."""
    folder = Path(run_dir) / "checkpoints"
    latest = folder / LATEST
    if not latest.is_file():
        return None
    try:
        meta = json.loads(latest.read_text())
        fields = {k: meta[k] for k in TrainState.__dataclass_fields__ if k != "init_sha256"}
        fields["init_sha256"] = str(meta.get("init_sha256", ""))  # absent from checkpoints older than ``init``
        file, digest, config = meta["file"], meta["sha256"], meta["config_sha256"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{latest}: not a checkpoint description of this version") from None
    if config != config_sha256:
        raise InputError(f"{run_dir}: config.yaml changed since the checkpoint was written; restore it to resume")
    path = folder / Path(str(file)).name
    if not path.is_file() or sha256_file(path) != digest:
        raise InputError(f"{path}: checkpoint file missing or corrupt (sha256 mismatch)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: unreadable checkpoint ({exc})") from None
    return TrainState(**fields), tensors


def restore_model(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load the ``model.*`` tensors of a checkpoint into ``model`` (every key must match)."""
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"checkpoint does not fit the model: {' '.join(str(exc).split())[:300]}") from None


def under(name: str, prefix: str) -> bool:
    """Whether tensor ``name`` lies under the dotted ``prefix`` ("g_a" holds "g_a.0.weight", not "g_a2.w")."""
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


def initial_weights(model: nn.Module, spec: str, prefix: str = "", exclude: tuple[str, ...] = ()) -> tuple[str, int]:
    """Start ``model`` from the weights ``spec``: a file (a run's ``final.safetensors`` or stage file) or
    ``zoo:ID`` (shipped weights, hash-checked by :func:`mvcodec.zoo.load_state`).  With ``prefix`` only the
    file's tensors under it count, the prefix removed (``inter.`` takes the P model out of an mlvc weights file);
    tensors under an ``exclude`` prefix (model names, dotted) are not taken: those modules start afresh.

    Every tensor taken must name a parameter or buffer of the model with the same shape; the model's tensors that
    the file lacks keep their initial values (a module added since).  Returns ``(sha256 of the file, how many
    tensors it set)``; anything else is a one-line :class:`InputError`."""
    if spec.startswith("zoo:"):
        from mvcodec.zoo import load_state
        try:
            entry, tensors = load_state(spec[4:])
        except CodecError as exc:
            raise InputError(f"init: {exc}") from None
        digest = entry.sha256
    else:
        p = Path(spec)
        if not p.is_file():
            raise InputError(f"init: {p}: no such weights file")
        try:
            tensors = load_file(str(p))
        except (SafetensorError, OSError) as exc:
            raise InputError(f"init: {p}: not a safetensors weights file ({' '.join(str(exc).split())[:200]})") \
                from None
        digest = sha256_file(p)
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not tensors:
            raise InputError(f"init: {spec}: no tensor under the prefix {prefix!r}")
    tensors = {k: v for k, v in tensors.items() if not any(under(k, e) for e in exclude)}
    own = model.state_dict()
    alien = sorted(set(tensors) - set(own))
    if alien:
        raise InputError(f"init: {spec}: tensor {prefix}{alien[0]} names nothing in the model (another model's "
                         f"weights?)")
    try:  # the modules' own loading (coding tables resize themselves), so only true shape mismatches fail
        model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:
        raise InputError(f"init: {spec} does not fit the model: {' '.join(str(exc).split())[:300]}") from None
    return digest, len(tensors)


def restore_optimizer(optimizer: torch.optim.Optimizer, names: list[str], tensors: dict[str, torch.Tensor]) -> None:
    """Load the ``optim.<name>.*`` tensors of a checkpoint into ``optimizer`` (parameters named ``names``)."""
    sd = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for index, name in enumerate(names):
        prefix = f"optim.{name}."
        entry = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if entry:
            state[index] = entry
    optimizer.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
