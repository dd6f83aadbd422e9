"""Where transformers' loader puts the tensors of quantized layers: an inbox that hands each to the load session.

transformers' ``from_pretrained`` reads a checkpoint key by key: every renaming it was given names
the key's model-space parameter, and the tensor is set there if the model's state dict has that
name. A quantized layer (:class:`~quantresolve.dispatch.QuantLinear`) has no parameters — it takes
the checkpoint's own tensors through ``load(suffix, tensor)`` and repacks them — and KV-cache scales
live beside the attention module, not in it. So, for a load the session has already routed
(:func:`~.session.prepare`):

- a tensor routed to a parameter the model declares (embeddings, norms, unquantized linears,
  experts that stay dense) is loaded by transformers itself under that name, cast to the
  parameter's dtype as ``load_quantized`` casts it;
- every other routed tensor gets a slot in :class:`Inbox`, a module with one meta placeholder
  buffer per tensor (``quantresolve_inbox.t<N>``, the tensor's stored shape and dtype): when the loader
  sets a slot, the tensor goes to :meth:`~.session.LoadSession.receive` and the placeholder is gone;
- names come from :class:`RouteRenaming`, which replaces the model's own weight conversions: the
  session's naming profile was derived from them (:mod:`.profile_choice`), but their per-expert
  merges do not apply to quantresolve's experts, which load one projection at a time.

Before the loader reads anything, :func:`open_inbox` checks that the checkpoint fills every
parameter the model declares (directly or through a tied partner) with a tensor of the right
shape; transformers would initialize a missing one at random.

    >>> import torch
    >>> got = []
    >>> class Session:
    ...     def receive(self, route, tensor): got.append((route, tensor.tolist()))
    >>> box = Inbox(Session(), {"t0": ("q.weight_scale", (2,), torch.float32)})
    >>> box.t0.device.type
    'meta'
    >>> t = torch.ones(2); t._is_hf_initialized = True  # what transformers' loader sets
    >>> box.t0 = t
    >>> got, box.pending()
    ([('q.weight_scale', [1.0, 1.0])], [])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.core_model_loading import WeightRenaming

from quantresolve.errors import LoadError
from quantresolve.integrations.transformers.session import LoadSession, names_line
from quantresolve.integrations.transformers.shard_reader import TORCH_DTYPES

#: The inbox's module name in the model (removed once the load is finished).
INBOX = "quantresolve_inbox"

Slot = tuple[Any, tuple[int, ...], torch.dtype]


class Inbox(nn.Module):
    """Meta placeholder buffers whose setting hands the tensor to the session (module docstring).

    ``slots`` maps a buffer name to ``(route, shape, dtype)``. A value that transformers' loader did
    not read from the checkpoint (it marks those it did with ``_is_hf_initialized``) is refused: the
    loader fills never-loaded entries with uninitialized memory, which must not reach a layer.
    """

    def __init__(self, session: Any, slots: Mapping[str, Slot]) -> None:
        super().__init__()
        for name, (_, shape, dtype) in slots.items():
            self.register_buffer(name, torch.empty(shape, dtype=dtype, device="meta"))
        self.__dict__["_session"] = session
        self.__dict__["_routes"] = {name: route for name, (route, _, _) in slots.items()}

    def __setattr__(self, name: str, value: Any) -> None:
        routes = self.__dict__.get("_routes")
        if routes is None or name not in routes:
            super().__setattr__(name, value)
        elif getattr(value, "_is_hf_initialized", False):
            del self._buffers[name]
            self.__dict__["_session"].receive(routes.pop(name), value)

    def pending(self) -> list[Any]:
        """The routes whose tensors have not arrived."""
        return list(self.__dict__["_routes"].values())


class RouteRenaming(WeightRenaming):
    """The model-space name of every checkpoint key, from a table (the session's routes) instead of patterns.

    transformers asks each renaming for each key; a table lookup keeps that linear in the number of
    keys where one pattern per tensor would be quadratic. Keys not in the table keep their name.
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        super().__init__(INBOX, INBOX)  # the patterns are not used: rename_source_key answers from the table
        self._names = dict(names)

    def rename_source_key(self, source_key: str) -> tuple[str, str | None]:
        return self._names.get(source_key, source_key), None


def _unfilled(model: PreTrainedModel, loaded: set[str], tied: Mapping[str, str]) -> list[str]:
    fillable = set(loaded)
    for target, source in tied.items():
        if target in loaded or source in loaded:
            fillable |= {target, source}
    return sorted(n for n, _ in model.named_parameters(remove_duplicate=False) if n not in fillable)


def open_inbox(model: PreTrainedModel, session: LoadSession) -> dict[str, str]:
    """Add the :class:`Inbox` to ``model``; ``{checkpoint key: the name transformers loads it under}``.

    Raises :class:`~quantresolve.errors.LoadError` for a declared parameter nothing fills and for a
    stored shape the model's parameter does not have, before any tensor is read.
    """
    state = model.state_dict()
    infos = {info.name: info for module in session.inventory.modules.values() for info in module.params.values()}
    names: dict[str, str] = {}
    slots: dict[str, Slot] = {}
    for route in session.routes.routes:
        info = infos[route.tensor]
        own = f"{route.module}.{route.suffix}"
        if own in state:
            if tuple(state[own].shape) != tuple(info.shape):
                raise LoadError(f"shape {list(info.shape)} does not match the model's {list(state[own].shape)} "
                                f"({own})", file=route.file, field=route.tensor)
            names[route.tensor] = own
            continue
        slot = f"t{len(slots)}"
        slots[slot] = (route, tuple(info.shape), TORCH_DTYPES.get(str(info.dtype), torch.uint8))
        names[route.tensor] = f"{INBOX}.{slot}"
    missing = _unfilled(model, set(names.values()), session.tied)
    if missing:
        raise LoadError(f"{len(missing)} model tensor(s) that the checkpoint does not provide: "
                        f"{names_line(missing)}", field="checkpoint")
    model.add_module(INBOX, Inbox(session, slots))
    return names


def close_inbox(model: PreTrainedModel) -> None:
    """Remove the inbox; a tensor that never arrived is left to the session's missing-tensor check."""
    if INBOX in model._modules:
        del model._modules[INBOX]


__all__ = ["INBOX", "Inbox", "RouteRenaming", "close_inbox", "open_inbox"]
