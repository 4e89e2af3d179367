"""MV-MGINR model compression: adaptive global pruning, 8-bit per-tensor quantization, and the weights packet.

::

    parameters (named, in module order) --prune_masks(sparsity)--> masks (tensors with >= 2 dims only)
    w * mask --quantize_tensor--> q in [-127, 127], scale (float32)   [fake_quantize: the same rounding, STE]
    masks ........................ CategoricalModel(2)   -> mask stream
    q + 127 where mask, by group . CategoricalModel(255) -> one value stream per group ("grids", "net")
    payload = [u32 len | mask model counts] [u32 len | mask stream]
              per group: [u32 len | value model counts] [u32 len | value stream]
              per tensor: scale (float32 little-endian)
    decoder: payload -> masks, q -> dequantize_tensor(q, scale) = q * scale (float32), zeros where pruned

The one function that turns coded integers back into weights, :func:`dequantize_tensor`, is used by the decoder
and by the encoder to compute the reconstruction it reports, so both see bit-identical weights.

Adaptive threshold (the paper does not give its rule): a weight's score is |w| / RMS(its tensor), so tensors of
different scales (grids, convolutions) compete fairly; one global threshold on the scores removes ``sparsity``
of the weights of all tensors with two or more dimensions (biases are never pruned).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch

from mvcodec.entropy import CategoricalModel, huffman_bits
from mvcodec.errors import BitstreamError

BITS = 8
QMAX = 2 ** (BITS - 1) - 1          # symmetric: zero is exact, so pruned weights stay zero
ALPHABET = 2 * QMAX + 1
GROUPS = ("grids", "net")


def group_of(name: str) -> str:
    """Entropy-model group of a parameter: the latent grids (``g_*``) or the synthesis network."""
    return "grids" if name.startswith("g_") else "net"


def prunable(p: torch.Tensor) -> bool:
    return p.dim() >= 2


def tensor_scale(w: torch.Tensor) -> torch.Tensor:
    """Per-tensor step max|w| / QMAX as a float32 scalar (1 for an all-zero tensor)."""
    m = w.detach().abs().max().to(torch.float32)
    return torch.where(m > 0, m / QMAX, torch.ones((), dtype=torch.float32, device=w.device))


def quantize_tensor(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``w`` (any shape) -> (int64 q in [-QMAX, QMAX] of the same shape, float32 scale)."""
    s = tensor_scale(w)
    q = torch.round(w.detach().to(torch.float32) / s).clamp(-QMAX, QMAX).to(torch.int64)
    return q, float(s.item())


def dequantize_tensor(q: torch.Tensor, scale: float) -> torch.Tensor:
    """Coded integers back to weights: ``q * scale`` in float32.  The only dequantizer (encoder and decoder)."""
    return q.to(torch.float32) * torch.tensor(scale, dtype=torch.float32)


def fake_quantize(w: torch.Tensor) -> torch.Tensor:
    """Quantization-aware training: the value of ``dequantize_tensor(*quantize_tensor(w))`` with a
    straight-through gradient (DoReFa-style, per-tensor uniform)."""
    s = tensor_scale(w)
    q = torch.round(w / s).clamp(-QMAX, QMAX) * s
    return w + (q - w).detach()


def prune_masks(params: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Boolean keep-masks for the prunable tensors of ``params``: the global ``sparsity`` fraction of
    lowest-scoring weights (score |w| / RMS of its tensor) is removed."""
    scores = {n: p.detach().abs() / p.detach().pow(2).mean().sqrt().clamp_min(1e-12)
              for n, p in params.items() if prunable(p)}
    if not scores or sparsity <= 0:
        return {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = int(round(sparsity * flat.numel()))
    if k <= 0:
        return {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    threshold = torch.kthvalue(flat.cpu(), k).values.item()
    return {n: s > threshold for n, s in scores.items()}


@dataclass
class CodedWeights:
    """The quantized model: per tensor the integers ``q`` and the scale; masks for the prunable tensors."""

    q: dict[str, torch.Tensor]
    scales: dict[str, float]
    masks: dict[str, torch.Tensor]

    @classmethod
    def from_params(cls, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> CodedWeights:
        q, scales = {}, {}
        for n, p in params.items():
            w = p.detach().cpu()
            if n in masks:
                w = w * masks[n].cpu()
            q[n], scales[n] = quantize_tensor(w)
        return cls(q, scales, {n: m.cpu() for n, m in masks.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The dequantized weights the decoder loads."""
        return {n: dequantize_tensor(q, self.scales[n]) for n, q in self.q.items()}

    def symbols(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(mask bits, value symbols per group) in the order they are coded."""
        mask = np.concatenate([m.reshape(-1).numpy().astype(np.int64) for m in self.masks.values()] or
                              [np.zeros(0, np.int64)])
        values: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
        for n, q in self.q.items():
            kept = q[self.masks[n]] if n in self.masks else q.reshape(-1)
            values[group_of(n)].append(kept.numpy() + QMAX)
        return mask, {g: np.concatenate(v) if v else np.zeros(0, np.int64) for g, v in values.items()}


def _model(symbols: np.ndarray, alphabet: int) -> CategoricalModel:
    return CategoricalModel.from_symbols(symbols, alphabet)


def estimate_bits(coded: CodedWeights) -> dict[str, float]:
    """Estimated bits: ``-log2 p`` of every coded symbol under the models built from their histograms, plus the
    exact bits of the side information (model counts, scales, length fields)."""
    mask, values = coded.symbols()
    models = [(_model(mask, 2), mask)] + [(_model(v, ALPHABET), v) for v in values.values()]
    symbol_bits = sum(m.estimate_bits(s) for m, s in models)
    side_bits = 8 * (sum(len(m.to_bytes()) + 8 for m, _ in models) + 4 * len(coded.scales))
    huffman = sum(huffman_bits(s, m.alphabet_size) for m, s in models)  # the design's coder, for comparison
    return {"symbol_bits": symbol_bits, "side_bits": float(side_bits), "total_bits": symbol_bits + side_bits,
            "huffman_symbol_bits": float(huffman)}


def _put(out: bytearray, data: bytes) -> None:
    out += struct.pack("<I", len(data)) + data


def pack_weights(coded: CodedWeights) -> bytes:
    """The weights packet's payload (layout in the module docstring)."""
    out = bytearray()
    mask, values = coded.symbols()
    for symbols, alphabet in [(mask, 2)] + [(values[g], ALPHABET) for g in GROUPS]:
        model = _model(symbols, alphabet)
        _put(out, model.to_bytes())
        _put(out, model.encode(symbols))
    out += struct.pack(f"<{len(coded.scales)}f", *coded.scales.values())
    return bytes(out)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BitstreamError(f"mv-mginr weights packet is cut short in {what}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def chunk(self, what: str) -> bytes:
        (n,) = struct.unpack("<I", self.take(4, what))
        return self.take(n, what)


def unpack_weights(payload: bytes, shapes: dict[str, tuple[int, ...]]) -> CodedWeights:
    """Inverse of :func:`pack_weights` for a network whose parameters have ``shapes`` (in module order)."""
    cur = _Cursor(payload)
    mask_model = CategoricalModel.from_bytes(cur.chunk("mask model"))
    n_mask = sum(int(np.prod(s)) for n, s in shapes.items() if len(s) >= 2)
    try:
        mask_bits = mask_model.decode(cur.chunk("mask stream"), n_mask)
        masks, pos = {}, 0
        for n, s in shapes.items():
            if len(s) >= 2:
                size = int(np.prod(s))
                masks[n] = torch.from_numpy(mask_bits[pos:pos + size].reshape(s) == 1)
                pos += size
        kept = {g: 0 for g in GROUPS}
        for n, s in shapes.items():
            kept[group_of(n)] += int(masks[n].sum()) if n in masks else int(np.prod(s))
        values = {}
        for g in GROUPS:
            model = CategoricalModel.from_bytes(cur.chunk(f"{g} model"))
            if model.alphabet_size != ALPHABET:
                raise BitstreamError(f"mv-mginr weights packet: {g} model has {model.alphabet_size} symbols")
            values[g] = model.decode(cur.chunk(f"{g} stream"), kept[g]) - QMAX
    except (ValueError, RuntimeError) as exc:
        raise BitstreamError(f"mv-mginr weights packet is corrupt: {exc}") from None
    scale_bytes = cur.take(4 * len(shapes), "scales")
    if cur.pos != len(payload):
        raise BitstreamError(f"mv-mginr weights packet has {len(payload) - cur.pos} unexpected trailing bytes")
    scales = dict(zip(shapes, struct.unpack(f"<{len(shapes)}f", scale_bytes)))
    q, offset = {}, {g: 0 for g in GROUPS}
    for n, s in shapes.items():
        g = group_of(n)
        count = int(masks[n].sum()) if n in masks else int(np.prod(s))
        vals = torch.from_numpy(values[g][offset[g]:offset[g] + count].astype(np.int64))
        offset[g] += count
        if n in masks:
            t = torch.zeros(s, dtype=torch.int64)
            t[masks[n]] = vals
        else:
            t = vals.reshape(s)
        q[n] = t
    if any(not np.isfinite(v) for v in scales.values()):
        raise BitstreamError("mv-mginr weights packet has a non-finite scale")
    return CodedWeights(q, scales, masks)
