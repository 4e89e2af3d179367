"""Shipped weights: safetensors files inside the package, listed in ``index.json`` with their hash, model config
and the command that trained them.

``index.json``::

    {"<weights id>": {"file": "intra_v1.safetensors", "sha256": "<hex>", "task": "intra",
                      "config": {...model config...}, "command": "mvcodec train --config ...",
                      "trained": "what it cost: steps, hours, machine"}}

Loading checks the file's SHA-256 against the table before parsing it, and parses it with safetensors only (no
pickle, nothing in the file can run code).  A codec writes the weights id and hash into every file's header, so a
decoder with other weights refuses the file instead of decoding garbage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors

from mvcodec.errors import CodecError

MAX_WEIGHTS_BYTES = 20_000_000


@dataclass(frozen=True)
class ZooEntry:
    id: str
    file: str
    sha256: str
    task: str
    config: dict[str, Any]
    command: str
    trained: str


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def entries() -> dict[str, ZooEntry]:
    """Every shipped weights entry by id (empty when none ship yet)."""
    index = _folder() / "index.json"
    if not index.exists():
        return {}
    data = json.loads(index.read_text())
    return {k: ZooEntry(id=k, **v) for k, v in data.items()}


def load_state(weights_id: str) -> tuple[ZooEntry, dict[str, torch.Tensor]]:
    """The entry and its tensors; a missing id, a missing file or a hash mismatch is a :class:`CodecError`."""
    table = entries()
    if weights_id not in table:
        raise CodecError(f"no shipped weights {weights_id!r}; shipped: {', '.join(sorted(table)) or 'none'}")
    entry = table[weights_id]
    path = _folder() / entry.file
    if not path.is_file():
        raise CodecError(f"weights file {entry.file} of {weights_id!r} is missing from the installation")
    data = path.read_bytes()
    if len(data) > MAX_WEIGHTS_BYTES:
        raise CodecError(f"weights file {entry.file} is larger than {MAX_WEIGHTS_BYTES} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise CodecError(f"weights file {entry.file} is corrupt: sha256 {digest[:12]}, expected {entry.sha256[:12]}")
    return entry, load_safetensors(data)
