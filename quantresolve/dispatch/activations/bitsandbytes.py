"""bitsandbytes' activation rounding — LLM.int8: int8 rows with 16-bit outlier columns, as bitsandbytes runs them.

A bitsandbytes int8 checkpoint (``load_in_8bit``) is not weight-only: at
inference bitsandbytes quantizes every input row to int8 (``127 / absmax`` of
the row), multiplies int8 × int8, and runs the input *columns* that hold any
value with ``|x| ≥ llm_int8_threshold`` in 16 bits against the dequantized
weight columns. The facts, read from bitsandbytes 0.50's inference path:

- the row statistics come from the input cast to float16 with the outlier
  *elements* set to zero; codes are ``round(x · (127 / absmax))``;
- every row's code in an outlier *column* is zero, and that whole column is
  added back unquantized (in the input's dtype);
- a threshold of 0 turns the decomposition off (all columns int8).

:func:`llm_int8_fake` returns the activations the integer GEMM effectively
sees — int8 columns quantize-dequantized, outlier columns exact — so
``llm_int8_fake(x) @ W_dequantᵀ`` equals bitsandbytes' output up to float
rounding.

    >>> import torch
    >>> x = torch.tensor([[0.5, -1.0, 20.0]])
    >>> llm_int8_fake(x, 6.0).tolist()  # column 2 is an outlier: kept; the rest int8 on absmax 1.0
    [[0.5039370059967041, -1.0, 20.0]]
    >>> llm_int8_fake(x, 0.0)[0, 2].item()  # no decomposition: 20 is the row's absmax
    20.0
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations.quant import register_arithmetic
from quantresolve.formats.scheme import BNB_INT8_DEFAULT_THRESHOLD, QuantScheme


def scheme_threshold(scheme: QuantScheme) -> float:
    """The scheme's ``llm_int8_threshold`` (bitsandbytes' default when absent)."""
    return float(scheme.options.get("threshold", BNB_INT8_DEFAULT_THRESHOLD))


def llm_int8_fake(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Quantize-dequantize ``x`` ``[M, K]`` the LLM.int8 way (float32 result)."""
    half = x.to(torch.float16)  # bitsandbytes takes row statistics and outliers in float16
    outliers = half.abs() >= threshold if threshold > 0.0 else None
    if outliers is not None:
        half = half.masked_fill(outliers, 0.0)  # outlier elements do not count towards the absmax
    absmax = half.abs().amax(dim=-1, keepdim=True).float()
    codes = torch.round(half * (127.0 / absmax)).nan_to_num(0.0)  # an all-zero row stays zero
    fake = codes * (absmax / 127.0)
    if outliers is not None:
        fake = torch.where(outliers.any(dim=0), x.float(), fake)
    return fake


#: LLM.int8 as an activation arithmetic (per token: every row has its own absmax).
BITSANDBYTES = register_arithmetic(
    "bitsandbytes", {"llm_int8": lambda act, x: llm_int8_fake(x, act.threshold or 0.0)}, {"llm_int8": ("token",)})
