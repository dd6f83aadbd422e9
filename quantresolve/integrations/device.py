"""The torch device a load or a kernel query asks for, checked before anything is built on it.

``torch.device("cuda")`` parses on a machine without CUDA; the first tensor put there then fails
deep inside torch (an ``AssertionError`` from its lazy init). Here the device is checked up front
and refused in one line naming the option and what would be accepted: a CPU, or a CUDA device
this process can see.

    >>> check_device("cpu").type
    'cpu'
    >>> check_device("tpu", field="--device")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: --device: 'tpu' is not a device quantresolve runs on; accepted: cpu, cuda, cuda:N
"""

from __future__ import annotations

import torch

from quantresolve.errors import ConfigError

#: Device types quantresolve's linear methods run on.
DEVICE_TYPES = ("cpu", "cuda")


def check_device(device: str | torch.device, *, field: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device` when it is a CPU or a visible CUDA device, else :class:`ConfigError`."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise ConfigError(f"{str(device)!r} is not a device quantresolve runs on; accepted: cpu, cuda, cuda:N",
                          field=field)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{device!s}: no CUDA device is available here (torch.cuda.is_available() is "
                              "False); accepted: cpu", field=field)
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"{device!s}: this machine has {count} CUDA device(s); accepted: cpu, "
                              + ", ".join(f"cuda:{i}" for i in range(count)), field=field)
    return dev


__all__ = ["DEVICE_TYPES", "check_device"]
