"""Real coding of integers with indexed integer tables through constriction's ANS coder.

:func:`encode_indexed` codes ``values[i]`` with row ``indexes[i]`` of a :class:`~mvcodec.entropy.tables.PmfTables`;
the decoder knows ``indexes`` (it computed them with the same shared function) and gets ``values`` back.

Stream layout, in decoding order (the ANS coder is a stack, so the encoder pushes these segments in reverse)::

    main:   for each used row t (ascending): the symbols of all elements with index t, i.i.d. with row t
    heads:  for every escaped element (in main order): 2*k + side, uniform over 64     (k < 32)
    tails:  for each k (ascending) with k > 0: low min(k, 16) bits of g - 2**k, uniform;
            for k > 16 also the high k - 16 bits, uniform

An escaped value ``v`` above the row's range (``side = 0``) or below it (``side = 1``) is sent as its distance
``d >= 0`` past the range's edge, in Exp-Golomb form ``g = d + 1 = 2**k + rest``.  The escape symbol itself has
probability ``escape count / 2**precision`` in its row, so far-out values cost ``-log2 p(escape) + 6 + k`` bits.

Probabilities reach constriction as ``counts`` cast to float64 (exact integers).  constriction's
``Categorical(perfect=False)`` rescales them to its 24-bit fixed point with IEEE-exact float64 arithmetic only
(a cumulative sum of integers and one multiplication by a single quotient, then truncation), so equal integer
counts give the same model on every machine; the tests pin the bytes.  Symbols are coded from numpy alone, so
torch's thread count cannot matter.
"""

from __future__ import annotations

import constriction
import numpy as np

from mvcodec.entropy.tables import PmfTables
from mvcodec.errors import BitstreamError

cmodel = constriction.stream.model  # a Rust extension: its submodules are attributes, not importable modules
stack = constriction.stream.stack

MAX_ABS_VALUE = 1 << 30  # coded integers must satisfy |v| <= MAX_ABS_VALUE
_HEAD = 64  # 2 sides x 32 Exp-Golomb orders
_CHUNK = 16  # bits per uniform tail chunk

Segment = tuple[np.ndarray, object]  # (int32 symbols, concrete constriction model)

_uniform_models: dict[int, object] = {}


def uniform_model(size: int) -> object:
    """A cached ``constriction`` uniform model over ``0 .. size - 1`` (``size >= 2``)."""
    if size not in _uniform_models:
        _uniform_models[size] = cmodel.Uniform(size)
    return _uniform_models[size]


def categorical_model(counts: np.ndarray) -> object:
    """A ``constriction`` categorical model from integer counts (at least 2 entries; see module docstring)."""
    return cmodel.Categorical(np.asarray(counts, dtype=np.float64), perfect=False)


def row_model(tables: PmfTables, t: int) -> object:
    """The (cached) coder model of row ``t``."""
    if t not in tables.cache:
        tables.cache[t] = categorical_model(tables.row(t))
    return tables.cache[t]


def words_to_bytes(words: np.ndarray) -> bytes:
    """constriction's compressed ``uint32`` words as little-endian bytes."""
    return np.asarray(words, dtype=np.uint32).astype("<u4").tobytes()


def bytes_to_words(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise BitstreamError(f"entropy-coded payload of {len(data)} bytes is not a whole number of 32-bit words")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def encode_segments(segments: list[Segment]) -> bytes:
    """Bytes from which :class:`SegmentDecoder` returns ``segments`` in the given order."""
    coder = stack.AnsCoder()
    for symbols, model in reversed(segments):
        if len(symbols):
            coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), model)
    return words_to_bytes(coder.get_compressed())


class SegmentDecoder:
    """Pops segments written by :func:`encode_segments`, in the same order."""

    def __init__(self, data: bytes) -> None:
        try:
            self._coder = stack.AnsCoder(bytes_to_words(data))
        except ValueError as e:
            raise BitstreamError(f"invalid entropy-coded payload: {e}") from None

    def decode(self, model: object, n: int) -> np.ndarray:
        """``(n,)`` int64 symbols."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        try:
            return np.asarray(self._coder.decode(model, n), dtype=np.int64)
        except (ValueError, RuntimeError) as e:
            raise BitstreamError(f"invalid entropy-coded payload: {e}") from None

    def finish(self) -> None:
        """Raise :class:`BitstreamError` unless every word was consumed (a cheap check of model agreement)."""
        if not self._coder.is_empty():
            raise BitstreamError("entropy-coded payload has data left over: corrupt, or decoded with other models")


def _check_indexes(indexes: np.ndarray, tables: PmfTables) -> np.ndarray:
    t = np.asarray(indexes).reshape(-1).astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= len(tables.lengths)):
        raise ValueError(f"table index out of range 0..{len(tables.lengths) - 1}")
    return t


def _group(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stable order that sorts ``t``, and the rows used with their element counts (ascending rows)."""
    small = t.astype(np.int16) if t.size and t.max() < 1 << 15 else t  # int16: numpy's stable sort is a radix sort
    order = np.argsort(small, kind="stable")
    st = t[order]
    starts = np.flatnonzero(np.concatenate([[True], st[1:] != st[:-1]])) if st.size else np.zeros(0, np.int64)
    return order, st[starts], np.diff(np.append(starts, st.size))


def _split(values: np.ndarray, indexes: np.ndarray, tables: PmfTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column of each value in its row (escape column where out of range), escape side and distance."""
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError("only finite integer values can be entropy coded")
    if values.size and np.abs(values).max() > MAX_ABS_VALUE:
        raise ValueError(f"|value| > {MAX_ABS_VALUE} cannot be entropy coded")
    v = values.astype(np.int64)
    col = v - tables.offsets[indexes]
    length = tables.lengths[indexes]
    above, below = col >= length, col < 0
    escaped = above | below
    distance = np.where(above, col - length, -1 - col)[escaped]
    return np.where(escaped, length, col), below[escaped].astype(np.int64), distance


def _order_bits(g: np.ndarray) -> np.ndarray:
    """``floor(log2 g)`` for integers ``1 <= g < 2**32``, exactly (no float log)."""
    k = np.zeros(g.shape, dtype=np.int64)
    for shift in (16, 8, 4, 2, 1):
        big = (g >> (k + shift)) > 0
        k += np.where(big, shift, 0)
    return k


def _tail_plan(orders: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """(positions, bit shift, bit count) of each uniform tail chunk, in decoding order."""
    plan = []
    for k in np.unique(orders):
        if k == 0:
            continue
        where = np.flatnonzero(orders == k)
        plan.append((where, 0, min(int(k), _CHUNK)))
        if k > _CHUNK:
            plan.append((where, _CHUNK, int(k) - _CHUNK))
    return plan


def indexed_segments(values: np.ndarray, indexes: np.ndarray, tables: PmfTables) -> list[Segment]:
    """The segments that code integers ``values`` with rows ``indexes`` of ``tables``: one part of a stream.

    Several parts (e.g. a hyper-latent, then each channel group of a latent) go into one payload by
    concatenating their segments for :func:`encode_segments`; :func:`decode_indexed_part` pops them back in the
    same order from one :class:`SegmentDecoder`."""
    t = _check_indexes(indexes, tables)
    v = np.asarray(values).reshape(-1)
    if v.shape != t.shape:
        raise ValueError(f"{v.size} values but {t.size} table indexes")
    order, rows, counts = _group(t)
    cols, sides, distance = _split(v[order], t[order], tables)
    segments: list[Segment] = [
        (seg, row_model(tables, int(r))) for r, seg in zip(rows, np.split(cols, np.cumsum(counts)[:-1]))
    ]
    g = distance + 1
    orders = _order_bits(g)
    segments.append((2 * orders + sides, uniform_model(_HEAD)))
    rest = g - (np.int64(1) << orders)
    for where, shift, bits in _tail_plan(orders):
        segments.append(((rest[where] >> shift) & ((1 << bits) - 1), uniform_model(1 << bits)))
    return segments


def decode_indexed_part(dec: SegmentDecoder, indexes: np.ndarray, tables: PmfTables) -> np.ndarray:
    """The int64 values (shape of ``indexes``) of one part written by :func:`indexed_segments`, popped from
    ``dec`` (the caller calls ``dec.finish()`` after the last part)."""
    t = _check_indexes(indexes, tables)
    order, rows, counts = _group(t)
    parts = [dec.decode(row_model(tables, int(r)), int(n)) for r, n in zip(rows, counts)]
    col = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    sorted_t = t[order]
    length = tables.lengths[sorted_t]
    escaped = np.flatnonzero(col == length)
    heads = dec.decode(uniform_model(_HEAD), escaped.size)
    orders, sides = heads >> 1, heads & 1
    rest = np.zeros(escaped.size, dtype=np.int64)
    for where, shift, bits in _tail_plan(orders):
        rest[where] |= dec.decode(uniform_model(1 << bits), where.size) << shift
    distance = (np.int64(1) << orders) + rest - 1
    col[escaped] = np.where(sides == 1, -1 - distance, length[escaped] + distance)
    out = np.empty(t.size, dtype=np.int64)
    out[order] = col + tables.offsets[sorted_t]
    return out.reshape(np.shape(indexes))


def encode_indexed(values: np.ndarray, indexes: np.ndarray, tables: PmfTables) -> bytes:
    """Code integers ``values`` (any shape) with rows ``indexes`` (same size) of ``tables``; returns bytes."""
    return encode_segments(indexed_segments(values, indexes, tables))


def decode_indexed(data: bytes, indexes: np.ndarray, tables: PmfTables) -> np.ndarray:
    """The int64 ``values`` (shape of ``indexes``) written by :func:`encode_indexed` with the same tables."""
    dec = SegmentDecoder(data)
    out = decode_indexed_part(dec, indexes, tables)
    dec.finish()
    return out


def estimate_indexed_bits(values: np.ndarray, indexes: np.ndarray, tables: PmfTables) -> float:
    """``sum -log2 p`` of ``values`` under the same integer tables, escapes included (6 + k bypass bits)."""
    t = _check_indexes(indexes, tables)
    v = np.asarray(values).reshape(-1)
    if v.shape != t.shape:
        raise ValueError(f"{v.size} values but {t.size} table indexes")
    cols, _, distance = _split(v, t, tables)
    p = tables.counts[t, cols].astype(np.float64) / float(1 << tables.precision)
    bypass = _HEAD.bit_length() - 1 + _order_bits(distance + 1)
    return float(-np.log2(p).sum() + bypass.sum())
