"""The backend registry: every backend module registers its classes here, by name.

Imports no backend. The order in which backends are preferred is not the order they register in:
it is stated once, in :mod:`.catalog`, which imports every backend module and lays the registry
out in that order with :func:`in_order`.

    >>> from quantresolve.dispatch.backends import catalog  # registers every backend
    >>> "int4pack_cpu" in REGISTERED, list(in_order(["int4pack_cpu"], complete=False))
    (True, ['int4pack_cpu'])
"""

from __future__ import annotations

from collections.abc import Sequence

from quantresolve.dispatch.backends.base import Backend
from quantresolve.errors import DispatchError

#: name → the registered backend (an instance of its class), in registration order.
REGISTERED: dict[str, Backend] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: instantiate ``cls`` and register it under its ``name`` (once)."""
    inst = cls()
    if inst.name in REGISTERED:
        raise DispatchError(f"backend {inst.name!r} registered twice", field="backend")
    REGISTERED[inst.name] = inst
    return cls


def in_order(names: Sequence[str], *, complete: bool = True) -> dict[str, Backend]:
    """The registered backends named in ``names``, in that order; with ``complete``, every registered
    backend must be named (a backend left out of the preference order is an error, never dropped)."""
    unknown = [n for n in names if n not in REGISTERED]
    missing = [n for n in REGISTERED if n not in names] if complete else []
    if unknown or missing:
        raise DispatchError(f"backend order names unregistered {unknown} and leaves out {missing}",
                            field="backend")
    return {name: REGISTERED[name] for name in names}
