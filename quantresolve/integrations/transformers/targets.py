"""Load targets: the things a checkpoint tensor can be routed to.

Every target answers the same small protocol — ``load(suffix, tensor)``,
``missing()`` — so the streaming loop never needs to know what it feeds:

- :class:`QuantTarget`: one quantized linear (or one shard of a fused one);
  tensors go to :meth:`QuantLinear.load` by their checkpoint suffix;
- :class:`KVTarget`: the KV-cache scales of one attention module;
- :class:`ParamTarget`: a plain module's own parameters / persistent buffers
  (norms, embeddings, dense linears), which start on the meta device and are
  replaced by the checkpoint's tensor in the dtype the model built them in;
- :class:`StackedExpertsTarget`: an experts module whose checkpoint stores every expert in one tensor
  per projection (gpt-oss); each expert's slice goes to that expert's own target.

    >>> import torch
    >>> lin = torch.nn.Linear(2, 3, bias=False, device="meta")
    >>> lin = lin.to(torch.bfloat16)  # the model's dtype for this parameter
    >>> t = ParamTarget(lin, "cpu")
    >>> t.missing()
    ['weight']
    >>> t.load("weight", torch.ones(3, 2)); t.missing(), lin.weight.dtype
    ([], torch.bfloat16)
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from quantresolve.dispatch import KVCacheScales, QuantLinear
from quantresolve.errors import LoadError


class Target(Protocol):
    """Where tensors of one module go."""

    def accepts(self, suffix: str) -> bool: ...

    def load(self, suffix: str, tensor: torch.Tensor) -> None: ...

    def missing(self) -> list[str]: ...


class QuantTarget:
    """A quantized linear, or the shard ``shard`` of a fused one."""

    def __init__(self, layer: QuantLinear, shard: str | None = None) -> None:
        self.layer, self.shard = layer, shard

    def accepts(self, suffix: str) -> bool:
        return (self.shard, suffix) in self.layer.expected_tensors()

    def load(self, suffix: str, tensor: torch.Tensor) -> None:
        self.layer.load(suffix, tensor, shard=self.shard)

    def missing(self) -> list[str]:
        own = f"{self.shard}." if self.shard is not None else ""
        return [m.removeprefix(own) for m in self.layer.missing_tensors()
                if self.shard is None or m.startswith(own)]


class KVTarget:
    """The ``k_scale`` / ``v_scale`` of one attention module's KV cache.

    Any other suffix goes to ``rest`` (the attention module's own parameters, if it has some).
    """

    def __init__(self, scales: KVCacheScales, rest: Target | None = None) -> None:
        self.scales, self.rest = scales, rest
        self.filled: set[str] = set()

    def accepts(self, suffix: str) -> bool:
        return suffix in self.scales.suffixes or (self.rest is not None and self.rest.accepts(suffix))

    def load(self, suffix: str, tensor: torch.Tensor) -> None:
        if suffix in self.scales.suffixes:
            self.scales.load(suffix, tensor)
            self.filled.add(suffix)
        elif self.rest is not None:
            self.rest.load(suffix, tensor)
        else:
            raise LoadError(f"unexpected tensor for an attention KV cache; expected {list(self.scales.suffixes)}",
                            field=suffix)

    def missing(self) -> list[str]:
        own = [s for s in self.scales.suffixes if s not in self.filled]
        return own + (self.rest.missing() if self.rest is not None else [])


class StackedExpertsTarget:
    """Every expert's projection ``<role>`` in one tensor on the experts module, split along dim 0.

    ``experts[e][role]`` is expert ``e``'s target for projection ``role``. gpt-oss' MXFP4 tensors
    ``<role>_blocks`` / ``<role>_scales`` / ``<role>_bias`` go to that target as ``blocks`` / ``scales`` /
    ``bias``; an unquantized ``<role>`` ``[E, in, out]`` (transformers' transposed layout) as ``weight``,
    transposed back to ``[out, in]``.

        >>> import torch
        >>> lins = {e: {"down_proj": ParamTarget(torch.nn.Linear(3, 2, device="meta"), "cpu")} for e in range(2)}
        >>> t = StackedExpertsTarget(lins)
        >>> t.accepts("down_proj"), t.accepts("down_proj_bias"), t.accepts("down_proj_scales")
        (True, True, False)
        >>> t.load("down_proj", torch.arange(12.0).reshape(2, 3, 2)); lins[1]["down_proj"].module.weight.tolist()
        [[6.0, 8.0, 10.0], [7.0, 9.0, 11.0]]
    """

    #: checkpoint suffix tail → (the expert target's suffix, transposed)
    PARTS = (("_blocks", "blocks", False), ("_scales", "scales", False), ("_bias", "bias", False), ("", "weight", True))

    def __init__(self, experts: dict[int, dict[str, Target]]) -> None:
        self.experts = experts

    def _route(self, suffix: str) -> tuple[str, str, bool] | None:
        roles = next(iter(self.experts.values()), {})
        for tail, inner, transposed in self.PARTS:
            role = suffix[: len(suffix) - len(tail)] if tail else suffix
            if suffix.endswith(tail) and role in roles and roles[role].accepts(inner):
                return role, inner, transposed
        return None

    def accepts(self, suffix: str) -> bool:
        return self._route(suffix) is not None

    def load(self, suffix: str, tensor: torch.Tensor) -> None:
        route = self._route(suffix)
        if route is None:
            raise LoadError("unexpected tensor for a stacked experts module", field=suffix)
        role, inner, transposed = route
        if tensor.dim() == 0 or tensor.shape[0] != len(self.experts):
            raise LoadError(f"shape {list(tensor.shape)}: the first dimension must be the model's "
                            f"{len(self.experts)} experts", field=suffix)
        for e, targets in self.experts.items():
            part = tensor[e]
            try:
                targets[role].load(inner, part.t() if transposed else part)
            except LoadError as err:
                raise LoadError(f"expert {e}: {err.detail}", field=suffix) from None

    def missing(self) -> list[str]:
        return []  # each expert's own target names what it lacks


class ParamTarget:
    """A module's own (non-recursive) parameters and persistent buffers.

    Parameters must be filled (they start on meta); persistent buffers may be.
    """

    def __init__(self, module: nn.Module, device: str | torch.device) -> None:
        self.module, self.device = module, torch.device(device)
        non_persistent = getattr(module, "_non_persistent_buffers_set", set())
        self.buffers = {n for n in module._buffers if n not in non_persistent}
        self.filled: set[str] = set()

    def accepts(self, suffix: str) -> bool:
        return self.module._parameters.get(suffix) is not None or suffix in self.buffers

    def _cast(self, tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        # Float tensors take the dtype the model built this parameter in: the compute dtype, or
        # float32 where the architecture keeps a module in float32 (what from_pretrained does).
        # Integer ones (position ids, masks) keep the model's dtype too.
        return tensor.to(device=self.device, dtype=like.dtype)

    def load(self, suffix: str, tensor: torch.Tensor) -> None:
        param = self.module._parameters.get(suffix)
        current = param if param is not None else self.module._buffers.get(suffix)
        if current is None or (param is None and suffix not in self.buffers):
            known = sorted([*(n for n, p in self.module._parameters.items() if p is not None), *self.buffers])
            raise LoadError(f"{type(self.module).__name__} has no parameter {suffix!r}; it has {known}",
                            field=suffix)
        if suffix in self.filled:
            raise LoadError("tensor loaded twice", field=suffix)
        if tuple(tensor.shape) != tuple(current.shape):
            raise LoadError(f"shape {list(tensor.shape)} does not match the model's {list(current.shape)}",
                            field=suffix)
        value = self._cast(tensor, current)
        if param is not None:
            self.module._parameters[suffix] = nn.Parameter(value, requires_grad=False)
        else:
            self.module._buffers[suffix] = value
        self.filled.add(suffix)

    def missing(self) -> list[str]:
        # Buffers are built real by __init__ (only parameters start on meta), so a persistent
        # buffer the checkpoint lacks keeps its constructed value, as in from_pretrained.
        return [n for n, p in self.module._parameters.items() if p is not None and n not in self.filled]

    def tie(self, suffix: str, source: nn.Parameter) -> None:
        """Share ``source`` as parameter ``suffix`` (tied embeddings); counts as filled."""
        self.module._parameters[suffix] = source
        self.filled.add(suffix)
