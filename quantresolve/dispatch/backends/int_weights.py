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

from collections.abc import Callable
from dataclasses import replace

import torch

from quantresolve.dispatch.backends.base import ShardGroup
from quantresolve.dispatch.chunked import row_parts
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.codecs.registry import codec_overrides
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


def bits_guard(scheme: QuantScheme | None, most: int, least: int = 1) -> Verdict | None:
    """``None`` when the weights have ``least..most`` bits (after :func:`int_scheme_guard`), else the reason.

        >>> from quantresolve.formats.scheme import modelopt_scheme
        >>> bits_guard(modelopt_scheme("W4A16_AWQ"), 8, least=5).reason
        'needs 5..8-bit weights, got 4'
    """
    bits = scheme.weights.num_bits  # type: ignore[union-attr]
    if least <= bits <= most:
        return None
    need = f"≤ {most}" if least <= 1 else f"{least}..{most}"
    return Verdict.no(f"needs {need}-bit weights, got {bits}")


def group_int_view(group: ShardGroup) -> IntWeights:
    """The integer view of all shards of a group, concatenated along N (missing zero points = 0).

    Built in row chunks (:func:`~quantresolve.dispatch.chunked.row_parts`) into one preallocated
    int8 matrix, so unpacking a large weight never holds more than one chunk's intermediates. The
    matrix is always a fresh buffer: a checkpoint tensor may sit at any offset of a memory-mapped
    file, and ``torch._weight_int8pack_mm`` crashes on such an unaligned matrix.
    """
    q = torch.empty(group.n, group.k, dtype=torch.int8, device=group.device)
    scales: list[torch.Tensor] = []
    zeros: list[torch.Tensor | None] = []
    first: IntWeights | None = None
    uniform, row = True, 0
    for shard in group.shards:
        for rows, part in row_parts(group.codec, shard.tensors, shard.n, group.k):
            view = group.codec.int_weights(part, rows, group.k)
            if view is None:
                raise DispatchError(f"{group.codec.scheme.algo}: no integer view of the weight", field="backend")
            first = first or view
            uniform = uniform and view.dtype == first.dtype
            q[row:row + rows].copy_(view.q)
            scales.append(view.scale)
            zeros.append(view.zero)
            row += rows
    assert first is not None
    # A rebuild from the codes needs one arithmetic dtype for the whole group (see rebuild_from_codes).
    group.extra["int_dtype_uniform"] = uniform
    zero = None
    if any(z is not None for z in zeros):
        zero = torch.cat([z if z is not None else torch.zeros_like(s) for z, s in zip(zeros, scales, strict=True)])
    return IntWeights(q=q, scale=torch.cat(scales), zero=zero, group=first.group, bits=first.bits, dtype=first.dtype)


def scales_only(view: IntWeights) -> IntWeights:
    """``view`` without its codes — what a backend whose kernel holds the codes keeps for a rebuild."""
    return replace(view, q=torch.empty(0, dtype=torch.int8))


def rebuild_from_codes(group: ShardGroup, view: IntWeights,
                       codes: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor] | None:
    """``group.dense()`` from the kernel's codes (``codes()`` gives the signed int8 ``[N, K]``) and the
    view's float32 scales and zero points — bit for bit when the codec's own dequantization *is* its
    integer view (``dense_is_int_view``); ``None`` otherwise (the checkpoint tensors are kept)."""
    if not group.codec.dense_is_int_view() or not group.extra.get("int_dtype_uniform", False):
        return None
    frame = scales_only(view)  # the codes live in the backend's state
    return lambda: replace(frame, q=codes()).dense(group.k)


def share_rows(group: ShardGroup, stacked: torch.Tensor, suffix: str = "weight") -> None:
    """Point each shard's ``suffix`` tensor at its rows of ``stacked`` when they hold the same values
    (a backend that keeps the checkpoint's int8 / FP8 matrix as it is, concatenated along N): the
    layer then holds the matrix once, and ``dequantize()`` reads the same numbers."""
    row = 0
    for shard in group.shards:
        rows = stacked[row:row + shard.n]
        row += shard.n
        raw = shard.tensors.get(suffix)
        if raw is not None and raw.dtype == rows.dtype and raw.shape == rows.shape and torch.equal(raw, rows):
            shard.tensors[suffix] = rows


def bf16_in(x: torch.Tensor) -> torch.Tensor:
    """``x`` as the weight-only CPU kernels take it: bf16 (fp32 is 20–100× slower there) and
    row-major — both kernels refuse a strided input such as ``x[:, :K]`` or a transposed view."""
    x = x if x.dtype == torch.bfloat16 else x.to(torch.bfloat16)
    return x if x.is_contiguous() else x.contiguous()


def weight_only_input(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """``x`` after the group's pre-quant scale and emulated activation quantization, if any."""
    t = group.transform
    return x if t.pre_quant_scale is None and t.act is None else t.apply(x)
