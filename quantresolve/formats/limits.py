"""Bounds every producer's sizes share: a group (block) size is a positive divisor of an input dimension.

No real linear layer has an input dimension near :data:`MAX_GROUP_SIZE` (the largest in the corpus
are ≈ 10^5), so a larger group size — or zero, or a negative one — describes no checkpoint; the
config is refused where it is read, naming the field. Whether a group size divides a layer's input
dimension is for the tensors to tell (the audit's ``group-size-mismatch``).

    >>> check_group_size(0, file="hf_quant_config.json", field="quantization.group_size")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: hf_quant_config.json: quantization.group_size: group size 0: accepted: a positive divisor of the input dimension, 1 to 1048576
"""

from __future__ import annotations

from quantresolve.errors import ConfigError

#: The largest group (block) size accepted.
MAX_GROUP_SIZE = 1 << 20


def check_group_size(value: int | None, *, file: str, field: str) -> int | None:
    """``value`` when it is ``None`` or 1..:data:`MAX_GROUP_SIZE`, else a :class:`ConfigError` at ``field``."""
    if value is not None and not 1 <= value <= MAX_GROUP_SIZE:
        raise ConfigError(f"group size {value}: accepted: a positive divisor of the input dimension, "
                          f"1 to {MAX_GROUP_SIZE}", file=file, field=field)
    return value


__all__ = ["MAX_GROUP_SIZE", "check_group_size"]
