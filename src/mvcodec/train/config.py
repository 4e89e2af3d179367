"""The configuration of a training run: frozen dataclasses, filled from YAML and ``--set`` overrides.

::

    configs/X.yaml --yaml.safe_load--> raw dict --(stages absent: task.default_stages())--> raw dict
        --apply_overrides(["stages.0.steps=10", "batch_size=4"])--> raw dict --parse--> RunConfig (frozen, typed)
    RunConfig --save_config--> RUN/config.yaml  (the resolved config; ``--resume RUN`` reads it back)

Every field is checked against its type hint (``Literal`` choices, ints, floats, tuples, nested ``Stage``); an
unknown key, a missing required key or a wrong type is an :class:`~mvcodec.errors.InputError` of one line that
names the key.  ``model`` and ``data`` stay free-form dicts: the task that receives them checks them.
Override values are parsed as YAML (``10`` is an int, ``[a, b]`` a list, ``1e-4`` a float where a float is due).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from mvcodec.atomic import atomic_write_text
from mvcodec.errors import InputError
from mvcodec.train.precision import PRECISIONS, Precision
from mvcodec.train.task import Stage, get_task

Device = Literal["auto", "cpu", "cuda"]
OPERATIONAL = ("out", "device", "num_workers", "log_every", "checkpoint_every")
"""Fields that change how a run executes, not what it trains: a resumed run may change them."""


@dataclass(frozen=True)
class RunConfig:
    """One training run (see ``configs/toy.yaml`` for every field, commented).

    ``batch_size`` is per process: a run on N processes steps on N x batch_size items.  ``grad_clip`` 0 turns
    clipping off.  ``checkpoint_every`` counts optimizer steps over the whole run (all stages).  ``precision``
    fp32|bf16|auto: the arithmetic of the training steps (:mod:`mvcodec.train.precision`).  ``init``: weights
    the model starts from instead of its random initialisation (a run's ``final.safetensors`` or
    ``stages/NN-name.safetensors``, or ``zoo:ID``), the tensors under ``init_prefix`` when it is set (``inter.``
    of an mlvc file), except those under an ``init_exclude`` prefix, which keep their random initialisation;
    :func:`mvcodec.train.checkpoint.initial_weights`.
    """

    task: str
    lambdas: tuple[float, ...]
    out: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    batch_size: int = 8
    num_workers: int = 2
    seed: int = 0
    device: Device = "auto"
    grad_clip: float = 1.0
    precision: Precision = "fp32"
    log_every: int = 10
    checkpoint_every: int = 1000
    init: str = ""
    init_prefix: str = ""
    init_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checks = [
            (len(self.lambdas) > 0 and all(v > 0 for v in self.lambdas), "lambdas: at least one, all > 0"),
            (len(self.stages) > 0, "stages: at least one stage"),
            (self.batch_size >= 1, "batch_size: must be >= 1"),
            (self.num_workers >= 0, "num_workers: must be >= 0"),
            (self.grad_clip >= 0, "grad_clip: must be >= 0 (0 turns clipping off)"),
            (self.precision in PRECISIONS, f"precision: one of {', '.join(PRECISIONS)}, not {self.precision!r}"),
            (self.log_every >= 1, "log_every: must be >= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every: must be >= 1"),
            (self.seed >= 0, "seed: must be >= 0"),
            (len({s.name for s in self.stages}) == len(self.stages), "stages: names must be unique"),
        ]
        for i, s in enumerate(self.stages):
            checks += [(s.steps >= 1, f"stages.{i}.steps: must be >= 1"), (s.lr > 0, f"stages.{i}.lr: must be > 0"),
                       (s.frames >= 1, f"stages.{i}.frames: must be >= 1"),
                       (re.fullmatch(r"[A-Za-z0-9_.-]+", s.name) is not None and s.name not in (".", ".."),
                        f"stages.{i}.name: letters, digits, '_', '-', '.' only (it names files)")]
        for ok, message in checks:
            if not ok:
                raise InputError(f"config: {message}")

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)


# ------------------------------------------------------------------------------------------------ public API
def load_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                base: dict[str, Any] | None = None) -> RunConfig:
    """The run config of YAML file ``path`` (or the dict ``base``) with ``overrides`` ("dotted.key=value")
    applied; absent ``stages`` become the task's ``default_stages()`` before the overrides apply."""
    raw = read_yaml(path) if path is not None else copy.deepcopy(base or {})
    parsed = [_split_override(o) for o in overrides]
    for keys, value in parsed:  # the task first: it decides the default stages
        if keys == ["task"]:
            raw["task"] = value
    if raw.get("stages") is None:
        raw["stages"] = [config_to_dict(s) for s in _task(raw).default_stages()]
    for keys, value in parsed:
        _set_path(raw, keys, value)
    cfg = _build(RunConfig, raw, "")
    _task(config_to_dict(cfg))  # the task name must be registered
    return cfg


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping read with ``yaml.safe_load`` (nothing in the file can run code)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such config file")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid YAML ({' '.join(str(exc).split())})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"{p}: the config must be a YAML mapping, got {type(raw).__name__}")
    return raw


def config_to_dict(obj: Any) -> Any:
    """Plain YAML/JSON data of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: config_to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [config_to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): config_to_dict(v) for k, v in obj.items()}
    return obj


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the config's canonical JSON without the :data:`OPERATIONAL` fields: what decides the training
    (a run folder may move, a resumed run may use another device or log more often; its training may not)."""
    data = config_to_dict(cfg)
    for key in OPERATIONAL:
        data.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ overrides
def _split_override(text: str) -> tuple[list[str], Any]:
    key, sep, value = text.partition("=")
    if not sep or not key or any(not k for k in key.split(".")):
        raise InputError(f"--set {text!r}: expected dotted.key=value")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def _set_path(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    node: Any = raw
    for depth, key in enumerate(keys):
        where = ".".join(keys[: depth + 1])
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise InputError(f"--set {'.'.join(keys)}: {where} is not an index of a list of {len(node)}")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise InputError(f"--set {'.'.join(keys)}: {'.'.join(keys[:depth])} is not a mapping or a list")


def _task(raw: dict[str, Any]) -> Any:
    name = raw.get("task")
    if not isinstance(name, str):
        raise InputError("config: task: a registered training task name is required")
    try:
        return get_task(name)
    except KeyError as exc:
        raise InputError(f"config: task: {exc.args[0]}") from None


# ------------------------------------------------------------------------------------------------ typed parsing
def _build(cls: type, raw: Any, path: str) -> Any:
    """``cls(**raw)`` with every field checked; ``path`` is the dotted key of ``raw`` ("" at the top)."""
    here = f"config: {path}" if path else "config"
    if not isinstance(raw, dict):
        raise InputError(f"{here}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, raw)) - set(fields))
    if unknown:
        raise InputError(f"{here}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _coerce(raw[name], hints[name], f"{path}.{name}" if path else name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InputError(f"{here}: missing required key {name!r}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return copy.deepcopy(value)
    if origin is Literal:
        if value not in args:
            raise InputError(f"config: {where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"config: {where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}.{i}") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise InputError(f"config: {where}: expected a mapping, got {value!r}")
        return {str(k): copy.deepcopy(v) for k, v in value.items()}
    if hint is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint in (int, str, bool) and isinstance(value, hint) and (hint is bool or not isinstance(value, bool)):
        return value
    raise InputError(f"config: {where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
