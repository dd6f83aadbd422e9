"""Backend selection: first supporting backend in registry order, with user force / deny.

Force with ``backend=`` or ``QUANTRESOLVE_BACKEND``; deny with ``deny=`` or
``QUANTRESOLVE_DENY_BACKENDS`` (comma-separated). Arguments win over the
environment; deny lists are merged. The order is :data:`~.backends.catalog.PREFERENCE`'s, and each
verdict comes from that backend's ``guards``: "why was int4pack picked" is those two, read in order.

Place in the flow: above :mod:`.backends` (its catalog), below the layers that select at build time.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> select_backend(modelopt_scheme("NVFP4"), Shapes(32, 64, dtype="float16")).name
    'dense_dequant'
    >>> [name for name, v in backend_verdicts(modelopt_scheme("NVFP4"), Shapes(32, 64, dtype="float16")) if v.ok]
    ['dense_dequant', 'per_call_dequant']
    >>> dict(backend_verdicts(modelopt_scheme("NVFP4"), Shapes(32, 64, dtype="float16")))["float_gemv_cpu"].reason
    'E2M1 weights need a bfloat16 compute dtype (the kernel builds bf16 weights), got float16'
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from quantresolve.dispatch.backends.base import Backend
from quantresolve.dispatch.backends.catalog import BACKENDS
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.errors import BackendUnavailableError, DispatchError
from quantresolve.formats.scheme import QuantScheme

ENV_FORCE = "QUANTRESOLVE_BACKEND"
ENV_DENY = "QUANTRESOLVE_DENY_BACKENDS"


def device_info(device: str | torch.device = "cpu", *, training: bool = False) -> DeviceInfo:
    """Describe a torch device (CUDA capability read only when CUDA is present)."""
    dev = torch.device(device)
    capability = None
    if dev.type == "cuda" and torch.cuda.is_available():
        capability = tuple(torch.cuda.get_device_capability(dev))
    return DeviceInfo(type=dev.type, capability=capability, training=training)  # type: ignore[arg-type]


def _deny_set(deny: Iterable[str]) -> set[str]:
    names = {d.strip() for d in deny if d.strip()}
    names |= {d.strip() for d in os.environ.get(ENV_DENY, "").split(",") if d.strip()}
    unknown = names - set(BACKENDS)
    if unknown:
        raise DispatchError(f"unknown backend(s) {sorted(unknown)}; known: {', '.join(BACKENDS)}",
                            field="deny")
    return names


def backend_verdicts(scheme: QuantScheme | None, shapes: Shapes, device: DeviceInfo | None = None,
                     deny: Iterable[str] = ()) -> list[tuple[str, Verdict]]:
    """Every registered backend with its verdict, in preference order."""
    device = device or DeviceInfo()
    denied = _deny_set(deny)
    out = []
    for name, backend in BACKENDS.items():
        verdict = backend.supports(device, device.capability, shapes, scheme)
        if verdict.ok and name in denied:
            verdict = Verdict.no("denied by user")
        out.append((name, verdict))
    return out


def select_backend(scheme: QuantScheme | None, shapes: Shapes, device: DeviceInfo | None = None, *,
                   backend: str | None = None, deny: Iterable[str] = ()) -> Backend:
    """The backend a layer uses: the forced one (error if it cannot) or the first that supports."""
    device = device or DeviceInfo()
    forced = backend or os.environ.get(ENV_FORCE) or None
    label = scheme.summary() if scheme else "dense"
    if forced:
        if forced not in BACKENDS:
            raise DispatchError(f"unknown backend {forced!r}; known: {', '.join(BACKENDS)}", field="backend")
        verdict = BACKENDS[forced].supports(device, device.capability, shapes, scheme)
        if not verdict.ok:
            raise BackendUnavailableError(f"forced backend {forced!r} cannot run {label} at "
                                          f"{shapes.text()}: {verdict.reason}", field="backend")
        return BACKENDS[forced]
    verdicts = backend_verdicts(scheme, shapes, device, deny)
    for name, verdict in verdicts:
        if verdict.ok:
            return BACKENDS[name]
    reasons = "; ".join(f"{n}: {v.reason}" for n, v in verdicts)
    raise DispatchError(f"no backend can run {label} at {shapes.text()} ({reasons})", field="backend")
