"""The factorized prior of hyper-latents: a learned, monotone CDF per channel (Balle et al. 2018, appendix 6.1).

Each channel ``c`` has a small density network whose output ``logit F_c(x)`` is non-decreasing in ``x``
(positive matrices via softplus, ``tanh`` gates bounded by 1).  The likelihood of a quantized value is::

    P(z_hat) = F_c(z_hat + 1/2) - F_c(z_hat - 1/2)          (forward, training)

After training, :meth:`EntropyBottleneck.update` tabulates per channel, around its median ``m_c``, the integer
PMF of ``q = round(z - m_c)`` on the range holding all but ``tail_mass`` of the law, plus an escape symbol
(:mod:`mvcodec.entropy.coder`).  Those integer tables and the medians are buffers, saved with the weights: both
sides code with them and never re-evaluate the network, so the network's float arithmetic cannot matter::

    z --round(z - m)--> q --ANS(row c)--> bytes --ANS^-1--> q --+ m--> z_hat
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mvcodec.entropy.coder import decode_indexed, encode_indexed, estimate_indexed_bits
from mvcodec.entropy.quantize import QuantizeMode, at_least_float32, dequantize, lower_bound, quantize, to_symbols
from mvcodec.entropy.tables import PRECISION, PmfTables, pack_rows, quantize_pmf

LIKELIHOOD_BOUND = 1e-9
TAIL_MASS = 2.0**-12
MAX_SYMBOLS = 1 << 12  # widest table row; values beyond go through the escape
_SEARCH_BOUND = float(1 << 20)  # |x| searched for the quantiles of each channel's CDF


class EntropyBottleneck(nn.Module):
    """Factorized prior over ``channels`` channels for tensors ``(N, C, *spatial)``.

    Args:
        channels: ``C``.
        filters: hidden widths of the per-channel density network.
        init_scale: rough initial spread of the density.
        tail_mass: probability left outside each channel's table, coded through the escape.
        precision: bits of the integer tables.
    """

    def __init__(
        self,
        channels: int,
        filters: tuple[int, ...] = (3, 3, 3, 3),
        init_scale: float = 10.0,
        tail_mass: float = TAIL_MASS,
        precision: int = PRECISION,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.tail_mass = tail_mass
        self.precision = precision
        widths = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1.0 / scale / widths[i + 1]))  # softplus(init) * width = 1 / scale
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))
        # Coding state, filled by update() and saved with the weights.
        self.register_buffer("medians", torch.zeros(channels))
        self.register_buffer("table_counts", torch.zeros(0, 0, dtype=torch.int32))
        self.register_buffer("table_offsets", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("table_lengths", torch.zeros(0, dtype=torch.int64))
        self._tables: PmfTables | None = None

    # ----------------------------------------------------------------------------------------- the density
    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """``logit F_c(x)`` for ``x`` of shape ``(C, 1, M)``; computed in ``x``'s dtype, shape ``(C, 1, M)``."""
        h = x
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            h = torch.matmul(F.softplus(matrix.to(x.dtype)), h) + bias.to(x.dtype)
            if i < len(self.factors):
                h = h + torch.tanh(self.factors[i].to(x.dtype)) * torch.tanh(h)
        return h

    def likelihood(self, z_hat: torch.Tensor) -> torch.Tensor:
        """``F_c(z_hat + 1/2) - F_c(z_hat - 1/2)`` for ``z_hat (N, C, *spatial)``, same shape, in (0, 1];
        float32 arithmetic under autocast too."""
        v = at_least_float32(z_hat).transpose(0, 1).reshape(self.channels, 1, -1)
        with torch.autocast(v.device.type, enabled=False):
            lower, upper = self.logits_cdf(v - 0.5), self.logits_cdf(v + 0.5)
            p = _interval_mass(lower, upper)
        p = p.reshape(self.channels, z_hat.shape[0], *z_hat.shape[2:]).transpose(0, 1)
        return lower_bound(p, LIKELIHOOD_BOUND)

    def forward(self, z: torch.Tensor, mode: QuantizeMode | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_hat, likelihoods)`` for ``z (N, C, *spatial)``; ``mode`` defaults to "noise" in training, else
        "round" (around the medians found by :meth:`update`)."""
        self._check(z.shape)
        mode = mode or ("noise" if self.training else "round")
        z_hat = quantize(at_least_float32(z), mode, self._medians(z))
        return z_hat, self.likelihood(z_hat)

    # ----------------------------------------------------------------------------------------- the tables
    @torch.no_grad()
    def update(self) -> None:
        """Tabulate the integer coding tables from the current network (call after training, before coding)."""
        logit_tail = math.log(2.0 / self.tail_mass - 1.0)
        lo, median, hi = (self._solve(t) for t in (-logit_tail, 0.0, logit_tail))
        median = [float(np.float32(m)) for m in median]  # the float32 medians coding will shift by
        first = [max(math.floor(a - m), -MAX_SYMBOLS // 2) for a, m in zip(lo, median)]
        last = [max(min(math.ceil(b - m), MAX_SYMBOLS // 2 - 1), f) for b, m, f in zip(hi, median, first)]
        width = max(b - a + 1 for a, b in zip(first, last))
        # (C, 1, width) grid of values v + m_c, in float64; channel c uses its first last - first + 1 columns
        f64 = {"dtype": torch.float64, "device": self.medians.device}
        grid = torch.arange(width, **f64) + torch.tensor(first, **f64)[:, None]
        grid = (grid + torch.tensor(median, **f64)[:, None]).unsqueeze(1)
        lower, upper = self.logits_cdf(grid - 0.5), self.logits_cdf(grid + 0.5)
        pmfs = _interval_mass(lower, upper)[:, 0].cpu().numpy()
        rows = []
        for c in range(self.channels):
            pmf = pmfs[c, : last[c] - first[c] + 1]
            rows.append(quantize_pmf(np.append(pmf, max(1.0 - float(pmf.sum()), 0.0)), self.precision))
        tables = pack_rows(rows, first, self.precision)
        device = self.medians.device
        self.medians = torch.tensor(median, dtype=torch.float32, device=device)
        self.table_counts = torch.from_numpy(tables.counts.astype(np.int32)).to(device)
        self.table_offsets = torch.from_numpy(tables.offsets).to(device)
        self.table_lengths = torch.from_numpy(tables.lengths).to(device)
        self._tables = tables

    @property
    def tables(self) -> PmfTables:
        """The integer tables written by :meth:`update` (raises if there are none)."""
        if self.table_lengths.numel() != self.channels:
            raise RuntimeError("EntropyBottleneck has no coding tables: call update() after training")
        if self._tables is None:
            self._tables = PmfTables(
                self.table_counts.cpu().numpy().astype(np.int64),
                self.table_offsets.cpu().numpy().astype(np.int64),
                self.table_lengths.cpu().numpy().astype(np.int64),
                self.precision,
            )
        return self._tables

    # ----------------------------------------------------------------------------------------- real coding
    def compress(self, z: torch.Tensor) -> bytes:
        """Bytes of ``round(z - medians)`` for ``z (N, C, *spatial)``."""
        self._check(z.shape)
        return encode_indexed(to_symbols(z, self._medians(z)).cpu().numpy(), self.indexes(z.shape), self.tables)

    def decompress(self, data: bytes, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
        """``z_hat (N, C, *spatial)`` (float32, on the module's device) from :meth:`compress`'s bytes."""
        shape = tuple(shape)
        self._check(shape)
        q = torch.from_numpy(decode_indexed(data, self.indexes(shape), self.tables)).to(self.medians.device)
        return dequantize(q, self.medians.view(1, -1, *([1] * (len(shape) - 2))))

    def estimate_bits(self, z: torch.Tensor) -> float:
        """``-log2 p`` of what :meth:`compress` codes, from the same integer tables."""
        self._check(z.shape)
        return estimate_indexed_bits(
            to_symbols(z, self._medians(z)).cpu().numpy(), self.indexes(z.shape), self.tables
        )

    # ----------------------------------------------------------------------------------------- helpers
    def _check(self, shape: tuple[int, ...] | torch.Size) -> None:
        if len(shape) < 2 or shape[1] != self.channels:
            raise ValueError(f"expected (N, {self.channels}, ...), got {tuple(shape)}")

    def _medians(self, z: torch.Tensor) -> torch.Tensor:
        return self.medians.view(1, -1, *([1] * (z.dim() - 2))).to(z.dtype)

    def indexes(self, shape: tuple[int, ...] | torch.Size) -> np.ndarray:
        """The table row of every element of a ``(N, C, *spatial)`` tensor: its channel (int64, broadcast)."""
        c = np.arange(self.channels, dtype=np.int64).reshape(1, -1, *([1] * (len(shape) - 2)))
        return np.broadcast_to(c, tuple(shape))

    def _solve(self, target: float) -> list[float]:
        """Per channel, the ``x`` with ``logit F_c(x) = target`` (float64 bisection; F_c is monotone)."""
        lo = torch.full((self.channels, 1, 1), -_SEARCH_BOUND, dtype=torch.float64, device=self.medians.device)
        hi = -lo
        for _ in range(80):
            mid = (lo + hi) / 2
            below = self.logits_cdf(mid) < target
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return ((lo + hi) / 2).flatten().tolist()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Accept coding tables of any size (they are resized to what the checkpoint holds)."""
        for name in ("table_counts", "table_offsets", "table_lengths"):
            if prefix + name in state_dict:
                getattr(self, name).resize_(state_dict[prefix + name].shape)
        self._tables = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _interval_mass(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """``sigmoid(upper) - sigmoid(lower)`` computed in whichever tail keeps the sigmoids small (precise)."""
    sign = torch.where(lower + upper > 0, -1.0, 1.0).to(lower.dtype).detach()
    return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
