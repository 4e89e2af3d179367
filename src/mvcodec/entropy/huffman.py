"""Huffman code lengths of a histogram: the size a Huffman coder would reach, to compare with ANS.

MV-MGINR's design codes its quantized weights with Huffman codes; mvcodec codes them with ANS through
:class:`~mvcodec.entropy.CategoricalModel` instead.  This module only measures what Huffman coding would have
cost (the optimal prefix code for the empirical histogram, table excluded), so ``BENCHMARKS.md`` can report
both.  It is a dozen lines on ``heapq`` (no maintained Python package computes code lengths from counts alone).
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np


def huffman_code_lengths(counts: np.ndarray) -> np.ndarray:
    """Code length in bits of every symbol of an optimal prefix code for ``counts`` (K,) -> (K,) int64.

    Symbols with count 0 get length 0; a single used symbol gets length 1 (a prefix code needs one bit)."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.int64)
    used = np.flatnonzero(counts > 0)
    if len(used) == 1:
        lengths[used] = 1
        return lengths
    order = itertools.count()
    heap = [(int(counts[i]), next(order), [int(i)]) for i in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        lengths[s1 + s2] += 1  # every symbol below the merged node gets one bit deeper
        heapq.heappush(heap, (c1 + c2, next(order), s1 + s2))
    return lengths


def huffman_bits(symbols: np.ndarray, alphabet_size: int) -> int:
    """Bits of ``symbols`` (int, in 0..alphabet_size-1) under the Huffman code of their own histogram."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64).ravel(), minlength=alphabet_size)
    return int((counts * huffman_code_lengths(counts)).sum())
