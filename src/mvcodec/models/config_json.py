"""Model configs (frozen dataclasses) from JSON: the one reader that headers, weights files and YAML runs use."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from mvcodec.errors import InputError

C = TypeVar("C")


def config_from_json(cls: type[C], data: Any, what: str, missing: Mapping[str, Any] | None = None) -> C:
    """``cls(**data)`` for a dict (or a JSON string of one) with only ``cls``'s fields; anything else (unknown
    keys, wrong types, values the dataclass refuses) is an :class:`InputError` naming ``what``.  ``missing``: values
    for fields the data lacks (a config stored before those fields existed), instead of the dataclass defaults."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InputError(f"bad {what} config: {exc}") from None
    known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if not isinstance(data, dict) or set(data) - known:
        raise InputError(f"bad {what} config {data!r} (keys: {', '.join(sorted(known))})")
    data = {**(missing or {}), **data}
    try:
        return cls(**data)
    except TypeError as exc:
        raise InputError(f"bad {what} config {data!r}: {exc}") from None
