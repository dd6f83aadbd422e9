"""One rank's part of one checkpoint tensor, without building a layer.

For integrations that shard tensors themselves (e.g. to keep only the rank's
part of a tensor read from disk). :meth:`QuantLinear.load` on a layer built
with ``tp=`` does the same thing for every tensor it receives.

    >>> import torch
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> scale = torch.arange(8.0).reshape(4, 2)                 # weight_scale [N=4, K/128=2]
    >>> shard_tensor(modelopt_scheme("W4A16_AWQ"), "weight_scale", scale, n=4, k=256,
    ...              tp=TPSpec("row", 1, 2)).tolist()
    [[1.0], [3.0], [5.0], [7.0]]
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.codecs import DenseCodec, codec_for
from quantresolve.dispatch.slicing.plan import plan_tp
from quantresolve.dispatch.slicing.split import TPSpec
from quantresolve.dispatch.specs import check_tensor
from quantresolve.errors import LoadError
from quantresolve.formats.scheme import QuantScheme


def shard_tensor(scheme: QuantScheme | None, suffix: str, tensor: torch.Tensor, *, n: int, k: int,
                 tp: TPSpec) -> torch.Tensor:
    """Rank ``tp.rank``'s part of the full tensor ``suffix`` of an ``[n, k]`` layer of ``scheme``
    (``None`` = dense). The whole layer's split is checked, as a layer would."""
    codec = codec_for(scheme) if scheme is not None else DenseCodec()
    plan = plan_tp(codec, k, [n], [None], bias=suffix == "bias", spec=tp)
    key = (None, suffix)
    if key not in plan.full_specs:
        known = sorted(s for _, s in plan.full_specs)
        raise LoadError(f"not a tensor of this layer; expected suffixes {known}", field=suffix)
    return plan.slice(key, check_tensor(plan.full_specs[key], tensor, suffix))
