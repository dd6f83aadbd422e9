"""Load targets: the things a checkpoint tensor can be routed to.

Every target answers the same small protocol — ``load(suffix, tensor)``,
``missing()`` — so the streaming loop never needs to know what it feeds:

- :class:`QuantTarget`: one quantized linear (or one shard of a fused one);
  tensors go to :meth:`QuantLinear.load` by their checkpoint suffix;
- :class:`KVTarget`: the KV-cache scales of one attention module;
- :class:`ParamTarget`: a plain module's own parameters / persistent buffers
  (norms, embeddings, dense linears), which start on the meta device and are
  replaced by the checkpoint's tensor in the dtype the model built them in.

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
