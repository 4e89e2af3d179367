"""A categorical model over a small alphabet ``0 .. n-1`` from integer counts a header can carry.

Typical use: coding quantized network weights or other integer side information::

    encoder: model = CategoricalModel.from_symbols(w, n)   header <- model.to_bytes()   payload <- model.encode(w)
    decoder: model = CategoricalModel.from_bytes(header)                                 w <- model.decode(payload, len)

The histogram is quantized by :func:`~mvcodec.entropy.tables.quantize_pmf` to counts summing to ``2**precision``
(symbols never seen keep count 0 and cannot be coded).  Both sides build the coder's model from those integers
only, so they agree exactly.
"""

from __future__ import annotations

import numpy as np

from mvcodec.entropy.coder import SegmentDecoder, categorical_model, encode_segments
from mvcodec.entropy.tables import PRECISION, quantize_pmf
from mvcodec.errors import BitstreamError

MAX_ALPHABET = 1 << 16


class CategoricalModel:
    """Fixed probabilities ``counts / counts.sum()`` over ``0 .. len(counts) - 1``.

    Args:
        counts: ``(n,)`` non-negative integers, not all zero (any total; :meth:`from_symbols` makes it
            ``2**precision``).
    """

    def __init__(self, counts: np.ndarray | list[int]) -> None:
        c = np.asarray(counts)
        if c.ndim != 1 or not 1 <= c.size <= MAX_ALPHABET or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(f"counts must be a vector of 1..{MAX_ALPHABET} integers")
        if np.any(c < 0) or c.sum() <= 0 or c.sum() >= 1 << 53:
            raise ValueError("counts must be non-negative, not all zero, with a total below 2**53")
        self.counts = c.astype(np.int64)
        self.counts.flags.writeable = False
        # constriction needs two symbols at least: a one-symbol alphabet gets a never-used companion
        self._model = categorical_model(np.append(self.counts, 0) if c.size == 1 else self.counts)

    @classmethod
    def from_histogram(cls, histogram: np.ndarray, precision: int = PRECISION) -> CategoricalModel:
        """The model whose counts are ``histogram`` quantized to a total of ``2**precision`` (zeros kept)."""
        return cls(quantize_pmf(np.asarray(histogram, dtype=np.float64), precision, keep_zeros=True))

    @classmethod
    def from_symbols(cls, symbols: np.ndarray, alphabet_size: int, precision: int = PRECISION) -> CategoricalModel:
        """The model of the empirical distribution of ``symbols`` (ints in ``0 .. alphabet_size - 1``)."""
        s = _check_symbols(symbols, alphabet_size)
        if s.size == 0:
            return cls(np.ones(alphabet_size, dtype=np.int64))
        return cls.from_histogram(np.bincount(s, minlength=alphabet_size), precision)

    @property
    def alphabet_size(self) -> int:
        return int(self.counts.size)

    def encode(self, symbols: np.ndarray) -> bytes:
        """Bytes of ``symbols`` (any shape, flattened; every symbol must have a non-zero count)."""
        s = _check_symbols(symbols, self.alphabet_size)
        if s.size and np.any(self.counts[s] == 0):
            raise ValueError("a symbol with count 0 cannot be coded: build the model from these symbols")
        return encode_segments([(s, self._model)])

    def decode(self, data: bytes, n: int) -> np.ndarray:
        """The ``n`` int64 symbols written by :meth:`encode`."""
        dec = SegmentDecoder(data)
        out = dec.decode(self._model, n)
        dec.finish()
        if out.size and out.max() >= self.alphabet_size:
            raise BitstreamError("decoded a symbol outside the alphabet: corrupt payload")
        return out

    def estimate_bits(self, symbols: np.ndarray) -> float:
        """``sum -log2(counts[s] / total)`` (infinite for a symbol of count 0)."""
        s = _check_symbols(symbols, self.alphabet_size)
        with np.errstate(divide="ignore"):
            return float(-np.log2(self.counts[s] / float(self.counts.sum())).sum())

    def to_bytes(self) -> bytes:
        """Header form: LEB128 varints ``alphabet_size, counts...``."""
        return b"".join(_varint(int(v)) for v in (self.alphabet_size, *self.counts))

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoricalModel:
        """Inverse of :meth:`to_bytes`; raises :class:`BitstreamError` on malformed data."""
        values, pos = [], 0
        while pos < len(data):
            v, pos = _read_varint(data, pos)
            values.append(v)
            if len(values) == 1 and not 1 <= v <= MAX_ALPHABET:
                raise BitstreamError(f"categorical model: alphabet size {v} outside 1..{MAX_ALPHABET}")
        if not values or len(values) != values[0] + 1:
            raise BitstreamError("categorical model: count list does not match its alphabet size")
        try:
            return cls(np.array(values[1:], dtype=np.int64))
        except ValueError as e:
            raise BitstreamError(f"categorical model: {e}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoricalModel) and np.array_equal(self.counts, other.counts)

    def __repr__(self) -> str:
        return f"CategoricalModel(alphabet_size={self.alphabet_size}, total={int(self.counts.sum())})"


def _check_symbols(symbols: np.ndarray, alphabet_size: int) -> np.ndarray:
    s = np.asarray(symbols).reshape(-1)
    if s.size and not np.issubdtype(s.dtype, np.integer):
        raise ValueError("categorical symbols must be integers")
    s = s.astype(np.int64)
    if s.size and (s.min() < 0 or s.max() >= alphabet_size):
        raise ValueError(f"categorical symbols must lie in 0..{alphabet_size - 1}")
    return s


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    v, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 56:
            raise BitstreamError("categorical model: truncated or oversized varint")
        b = data[pos]
        v |= (b & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not b & 0x80:
            return v, pos
