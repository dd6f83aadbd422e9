"""Integer weights for integer kernels: which schemes have them, and the group's view of them.

A codec that overrides :meth:`WeightCodec.int_weights` gives ``W = (q − zero) ·
repeat(scale, group)`` with signed int8 codes; the CPU integer kernels (and
gemlite) repack that view. Fused shards are concatenated along N.

    >>> from quantresolve.formats.scheme import bnb_scheme, modelopt_scheme
    >>> int_scheme_guard(modelopt_scheme("W4A16_AWQ")) is None
    True
    >>> int_scheme_guard(bnb_scheme("BNB_NF4")).reason
    'handles integer weights only (BNB_NF4 is nf4)'
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.backends.base import ShardGroup
from quantresolve.dispatch.codecs.base import IntWeights, codec_overrides
from quantresolve.dispatch.specs import Verdict
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme


def has_int_view(scheme: QuantScheme) -> bool:
    """True when the scheme's codec can give integer codes (it overrides ``int_weights``)."""
    return codec_overrides(scheme, "int_weights")


def int_scheme_guard(scheme: QuantScheme | None) -> Verdict | None:
    """``None`` for integer weights with group or channel scales, else the reason."""
    if scheme is None or scheme.weights is None:
        return Verdict.no("handles integer-quantized weights only (layer is dense)")
    if scheme.weights.type != "int" or not has_int_view(scheme):
        return Verdict.no(f"handles integer weights only ({scheme.algo} is {scheme.weights.type})")
    if scheme.weights.strategy not in ("group", "channel"):
        return Verdict.no(f"needs group or channel weight scales, got {scheme.weights.strategy}")
    return None


def group_int_view(group: ShardGroup) -> IntWeights:
    """The integer view of all shards of a group, concatenated along N (missing zero points = 0)."""
    views = [group.codec.int_weights(s.tensors, s.n, group.k) for s in group.shards]
    if any(v is None for v in views):
        raise DispatchError(f"{group.codec.scheme.algo}: no integer view of the weight", field="backend")
    present = [v for v in views if v is not None]
    zero = None
    if any(v.zero is not None for v in present):
        zero = torch.cat([v.zero if v.zero is not None else torch.zeros_like(v.scale) for v in present])
    first = present[0]
    return IntWeights(q=torch.cat([v.q for v in present]), scale=torch.cat([v.scale for v in present]),
                      zero=zero, group=first.group, bits=first.bits)


def bf16_in(x: torch.Tensor) -> torch.Tensor:
    """``x`` as the weight-only CPU kernels take it: bf16 (fp32 is 20–100× slower there) and
    row-major — both kernels refuse a strided input such as ``x[:, :K]`` or a transposed view."""
    x = x if x.dtype == torch.bfloat16 else x.to(torch.bfloat16)
    return x if x.is_contiguous() else x.contiguous()


def weight_only_input(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """``x`` after the group's pre-quant scale and emulated activation quantization, if any."""
    t = group.transform
    return x if t.pre_quant_scale is None and t.act is None else t.apply(x)
