"""How much memory a new allocation can get: the one reader of ``MemAvailable``.

Used before anything large is allocated (:func:`check_fits_in_memory`) — the loader's preflight (checkpoint bytes against the machine)
and the dispatcher's packed kernels (a layer's repacked weight) — so that a request that cannot fit fails
with the size it needs instead of swapping or being killed half-way. Torch-free.

    >>> available_memory() is None or available_memory() > 0
    True
    >>> describe_bytes(3 * 2**30 + 2**29)
    '3.5 GiB'
"""

from __future__ import annotations

from quantresolve.errors import LoadError

GIB = 1 << 30


def available_memory() -> int | None:
    """Bytes a new allocation can get without swapping (``MemAvailable`` of ``/proc/meminfo``), if the OS says."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits_in_memory(nbytes: int | None, *, what: str, field: str | None, file: str | None = None) -> None:
    """Refuse to allocate ``nbytes`` when the machine has less available right now (a :class:`LoadError`
    naming both sizes); nothing is checked where the OS does not say.

        >>> check_fits_in_memory(1 << 62, what="a 4 EiB buffer would", field="x")
        Traceback (most recent call last):
        ...
        quantresolve.errors.LoadError: ...a 4 EiB buffer would need 4194304.0 TiB, but ... of memory is available...
    """
    free = available_memory()
    if nbytes is not None and free is not None and nbytes > free:
        raise LoadError(f"{what} need {describe_bytes(nbytes)}, but {describe_bytes(free)} of memory is available",
                        file=file, field=field)


def describe_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it ≥ 1 (one decimal)."""
    size, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
