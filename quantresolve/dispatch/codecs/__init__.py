"""Weight codecs: one per checkpoint tensor format (producer × format/algorithm).

Place in the flow: above :mod:`..activations` (a codec builds its layer's input transform) and
:mod:`..specs` / :mod:`..numerics`; below everything that cuts, groups or runs weights. A codec
knows the tensors a layer of its format carries (names, shapes, dtypes), how to dequantize them
bit-exactly as the producer does, how to view them as integer codes for integer kernels, and how
the layer's input is transformed (pre-quant scale, activation quantization). One module per
producer — :mod:`.modelopt`, :mod:`.compressed_tensors`, :mod:`.bitsandbytes`, :mod:`.gptq`, :mod:`.awq`,
:mod:`.fp8` (HF fine-grained FP8), :mod:`.mxfp4` (gpt-oss) — registers its codecs with :mod:`.registry`,
which imports none of them; this package imports them all.
"""

from quantresolve.dispatch.codecs import (  # noqa: F401  (registration)
    awq,
    bitsandbytes,
    compressed_tensors,
    fp8,
    gptq,
    modelopt,
    mxfp4,
)
from quantresolve.dispatch.codecs.base import FP4Weights, FP8Weights, IntWeights, WeightCodec
from quantresolve.dispatch.codecs.dense import DenseCodec
from quantresolve.dispatch.codecs.registry import CODECS, codec_for

__all__ = ["CODECS", "DenseCodec", "FP4Weights", "FP8Weights", "IntWeights", "WeightCodec", "codec_for"]
