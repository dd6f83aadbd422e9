"""What a backend's kernel is given as ``x``: transformed as the producer does, in the dtype and
layout the kernel takes.

Place in the flow: helpers of the backends, above :mod:`..shards` (the group's input transform).

    >>> import torch
    >>> x = torch.ones(4, 3)[:, :2]
    >>> bf16_in(x).dtype, bf16_in(x).is_contiguous(), row_major(x.t()).is_contiguous()
    (torch.bfloat16, True, True)
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.shards import ShardGroup


def row_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` with contiguous rows: ``apply`` takes any strided ``[M, K]`` (``x[:, :K]``, a transposed
    view), but the packed-weight kernels index their input as a dense row-major matrix."""
    return x if x.is_contiguous() else x.contiguous()


def bf16_in(x: torch.Tensor) -> torch.Tensor:
    """``x`` as the weight-only CPU kernels take it: bf16 (fp32 is 20–100× slower there) and
    row-major — both kernels refuse a strided input such as ``x[:, :K]`` or a transposed view."""
    x = x if x.dtype == torch.bfloat16 else x.to(torch.bfloat16)
    return x if x.is_contiguous() else x.contiguous()


def weight_only_input(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """``x`` after the group's pre-quant scale and emulated activation quantization, if any."""
    t = group.transform
    return x if t.pre_quant_scale is None and t.act is None else t.apply(x)


def int_kernel_input(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """:func:`weight_only_input`, then the input channels in the order the group's integer codes are
    stored in (GPTQ act-order, ``transform.k_order``): what a kernel on the integer view multiplies.

        >>> from quantresolve.dispatch.activations import InputTransform
        >>> from quantresolve.dispatch.codecs import DenseCodec
        >>> from quantresolve.dispatch.shards import ShardGroup
        >>> g = ShardGroup([], 3, DenseCodec(), InputTransform(k_order=torch.tensor([2, 0, 1])), torch.float32,
        ...                torch.device("cpu"))
        >>> int_kernel_input(torch.tensor([[10.0, 20.0, 30.0]]), g).tolist()
        [[30.0, 10.0, 20.0]]
    """
    xin = weight_only_input(x, group)
    order = group.transform.k_order
    return xin if order is None else xin.index_select(-1, order.to(xin.device))
