"""Plain float32 activation rounding: round-to-nearest with ``scale = amax / qmax``, no producer's quirks.

For activation quantizers built directly (tests, tools), never for a checkpoint's: those follow their
producer (the other modules of this package).

    >>> import torch
    >>> FLOAT32.fake(ActQuant(kind="int8", granularity="token"), torch.tensor([[1.0, -127.0]])).tolist()
    [[1.0, -127.0]]
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations.blocks import row_amax
from quantresolve.dispatch.activations.quant import ROW_WIDE, ActQuant, register_arithmetic
from quantresolve.dispatch.numerics import E4M3_MAX

Tensor = torch.Tensor


def _scalar_codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    xf = x.float()
    qmax = E4M3_MAX if act.kind == "fp8" else 127.0
    if act.static_scale is not None:
        scale = torch.tensor(act.static_scale, dtype=torch.float32, device=x.device)
    else:
        scale = (row_amax(act, xf) / qmax).clamp(min=1e-12)
    if act.kind == "int8":
        return torch.round(xf / scale).clamp(-128, 127), scale
    return (xf / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float(), scale


def _scalar(act: ActQuant, x: Tensor) -> Tensor:
    codes, scale = _scalar_codes(act, x)
    return codes * scale


FLOAT32 = register_arithmetic("float32", {"fp8": _scalar, "int8": _scalar}, {"fp8": ROW_WIDE, "int8": ROW_WIDE},
                              _scalar_codes)
