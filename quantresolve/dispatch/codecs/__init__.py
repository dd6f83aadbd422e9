"""Weight codecs: one per checkpoint tensor format (producer × format/algorithm).

A codec knows the tensors a layer of its format carries (names, shapes,
dtypes), how to dequantize them bit-exactly as the producer does, how to view
them as integer codes for integer kernels, and how the layer's input is
transformed (pre-quant scale, activation quantization).
"""

from quantresolve.dispatch.codecs import bitsandbytes, compressed_tensors, modelopt  # noqa: F401  (registration)
from quantresolve.dispatch.codecs.base import CODECS, IntWeights, WeightCodec, codec_for

__all__ = ["CODECS", "IntWeights", "WeightCodec", "codec_for"]
