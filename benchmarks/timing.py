"""The timing loop the benchmark scripts share: medians of wall-clock repeats (the machine is shared and noisy)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], repeats: int, warmup: bool = False) -> tuple[Any, float]:
    """``(the last call's result, median seconds of fn())`` over ``repeats`` calls; ``warmup``: one untimed call
    first (caches, lazy initialisation)."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)
