"""Entropy models and real entropy coding, shared by every learned codec.

Training and coding, side by side (tensors ``(N, C, H, W)``; any shape works where no channel axis is needed)::

    hyper-latents  z:  EntropyBottleneck(C)         forward(z) -> (z_hat, likelihoods)
                                                    update()   (after training: integer tables, saved with weights)
                                                    compress(z) -> bytes ; decompress(bytes, shape) -> z_hat
    latents        y:  GaussianConditional()        forward(y, scales, means) -> (y_hat, likelihoods)
                       LaplaceConditional()         compress(y, scales, means) -> bytes
                                                    decompress(bytes, scales, means) -> y_hat
    small alphabets:   CategoricalModel.from_symbols(s, n) ; .counts / .to_bytes() for the header
                                                    encode(s) -> bytes ; decode(bytes, len) -> s
    every model:       estimate_bits(...) = -log2 p from the very integer tables the coder uses

Determinism: the coder never sees a float from a network.  Scales become indexes of a fixed table through
:meth:`ScaleTable.index` (float32 comparisons), the per-index integer PMFs are built from the index alone, the
factorized prior's tables are integers saved with the weights, and histograms are quantized to integer counts
by :func:`quantize_pmf`; encoder and decoder call these same functions.  See ``tables.py`` and ``coder.py``.
"""

from mvcodec.entropy.categorical import CategoricalModel
from mvcodec.entropy.coder import decode_indexed, encode_indexed, estimate_indexed_bits
from mvcodec.entropy.conditional import GaussianConditional, IndexedConditional, LaplaceConditional
from mvcodec.entropy.distributions import GAUSSIAN, LAPLACE, Distribution
from mvcodec.entropy.factorized import EntropyBottleneck
from mvcodec.entropy.huffman import huffman_bits, huffman_code_lengths
from mvcodec.entropy.quantize import QuantizeMode, dequantize, lower_bound, quantize, to_symbols
from mvcodec.entropy.tables import PRECISION, PmfTables, ScaleTable, conditional_tables, quantize_pmf

__all__ = [
    "CategoricalModel",
    "Distribution",
    "EntropyBottleneck",
    "GAUSSIAN",
    "GaussianConditional",
    "IndexedConditional",
    "LAPLACE",
    "LaplaceConditional",
    "PRECISION",
    "PmfTables",
    "QuantizeMode",
    "ScaleTable",
    "conditional_tables",
    "decode_indexed",
    "dequantize",
    "encode_indexed",
    "estimate_indexed_bits",
    "huffman_bits",
    "huffman_code_lengths",
    "lower_bound",
    "quantize",
    "quantize_pmf",
    "to_symbols",
]
