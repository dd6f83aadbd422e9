"""Activations: how a layer's input is quantized before the GEMM, in each producer's own arithmetic.

Place in the flow: below the weight codecs (a codec builds the :class:`ActQuant` its scheme and
scale tensors describe) and everything above them; imports only :mod:`..numerics`, the formats'
schemes and errors. The producers agree on the grids (E4M3, int8, E2M1 with E4M3 or E8M0 block
scales) and disagree on everything around them, so each producer's rounding is its own module —
:mod:`.modelopt`, :mod:`.compressed_tensors`, :mod:`.bitsandbytes` (LLM.int8), :mod:`.fp8` (HF fine-grained
FP8: DeepSeek's ``act_quant``) and :mod:`.float32`
(no producer: tests, tools) — registered in :data:`~.quant.ARITHMETIC`, the registry of
:mod:`.quant`, which imports none of them; this package imports them all.

    >>> sorted(ARITHMETIC)
    ['bitsandbytes', 'compressed-tensors', 'float32', 'fp8', 'modelopt']
"""

from quantresolve.dispatch.activations import (  # noqa: F401
    bitsandbytes,
    compressed_tensors,
    float32,
    fp8,
    modelopt,
)
from quantresolve.dispatch.activations.quant import (
    ARITHMETIC,
    ActQuant,
    Arithmetic,
    InputTransform,
    arithmetic,
    check_granularity,
)

__all__ = ["ARITHMETIC", "ActQuant", "Arithmetic", "InputTransform", "arithmetic", "check_granularity"]
