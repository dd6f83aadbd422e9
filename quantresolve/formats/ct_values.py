"""Values compressed-tensors' schema lets through but none of its compressors can store.

The schema (:mod:`.ct_config`, a mirror of the library's) takes any integer ``num_bits`` and any
positive ``group_size``: ``num_bits: 99`` or a ``1e30`` group parse. No compressed-tensors
compressor writes such tensors, so a config that says so is not describing a real checkpoint. Here
every argument set is checked against what the library's compressors accept (their ``can_compress``
in compressed-tensors 0.20, ``compressors/*/base.py``), per the group's storage ``format``, and a
refusal names the file, the field and what would be accepted:

- integer values: 1 to 32 bits — what fits the storage dtype compressed-tensors picks (int8, int16,
  int32; wider values would be clamped into int32); ``pack-quantized`` packs 1 to 8 bits;
- float values: 4, 6 or 8 bits (E2M1, E2M3, E4M3 — the only float codes the library has);
- group sizes: positive and at most :data:`~quantresolve.formats.limits.MAX_GROUP_SIZE` (whether one divides a layer's input
  dimension is for the tensors to tell: the audit checks it where headers are read);
- per format, the weights it can hold (:data:`WEIGHT_FORMATS`), e.g. ``nvfp4-pack-quantized`` is
  4-bit float weights in groups of 16.

The activation-side conditions of ``can_compress`` (``int-quantized`` wants quantized inputs) are not
applied: older compressed-tensors versions wrote weight-only checkpoints in those formats.
``tests/formats/test_ct_conformance.py`` checks that nothing the library's compressors accept is
refused here, but for two things they would accept and mangle: integers of fewer than 1 or more than
32 bits in the naive formats (clamped into int32) and any value at all under ``dense`` (which stores nothing
quantized, so its ``can_compress`` is always true).

    >>> from quantresolve.formats.ct_config import QuantizationArgs
from quantresolve.formats.limits import MAX_GROUP_SIZE
    >>> check_args(QuantizationArgs(num_bits=99), file="config.json", field="g.weights")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: config.json: g.weights.num_bits: 99-bit int values: compressed-tensors stores int values of 1 to 32 bits
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quantresolve.errors import ConfigError
from quantresolve.formats.ct_config import QuantizationArgs
from quantresolve.formats.limits import MAX_GROUP_SIZE

#: Bit widths compressed-tensors can store, per value type.
BITS: dict[str, tuple[int, ...]] = {"int": tuple(range(1, 33)), "float": (4, 6, 8)}


@dataclass(frozen=True)
class WeightFormat:
    """What one storage format holds: ``accepts(weights)`` and the words for an error message."""

    accepts: Callable[[QuantizationArgs], bool]
    wants: str


def _float(bits: int, group: int | None = None, scale: str | None = None) -> WeightFormat:
    def accepts(w: QuantizationArgs) -> bool:
        return (w.type == "float" and w.num_bits == bits and (group is None or w.group_size == group)
                and (scale is None or w.scale_dtype == scale))
    words = f"{bits}-bit float weights" + (f" in groups of {group}" if group else "") + (
        f" with {scale} scales" if scale else "")
    return WeightFormat(accepts, words)


#: Storage format → the weights its compressor accepts (formats not listed hold any weights).
WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "pack-quantized": WeightFormat(lambda w: w.type == "int" and 1 <= w.num_bits <= 8, "1- to 8-bit int weights"),
    "int-quantized": WeightFormat(lambda w: w.type == "int", "int weights"),
    "float-quantized": WeightFormat(lambda w: w.type == "float", "float weights"),
    "nvfp4-pack-quantized": _float(4, 16),
    "mxfp4-pack-quantized": _float(4, 32),
    "mxfp6-pack-quantized": _float(6, 32),
    "mxfp8-quantized": _float(8, 32, "uint8"),
}


def _at(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def check_args(args: QuantizationArgs, *, file: str, field: str) -> None:
    """Refuse bit widths and group / block sizes no compressed-tensors compressor stores."""
    allowed = BITS[args.type]
    if args.num_bits not in allowed:
        raise ConfigError(f"{args.num_bits}-bit {args.type} values: compressed-tensors stores {args.type} values "
                          f"of {_listing(allowed)} bits", file=file, field=_at(field, "num_bits"))
    if args.group_size is not None and args.group_size > MAX_GROUP_SIZE:
        raise ConfigError(f"group_size {args.group_size} is larger than any layer's input dimension "
                          f"(accepted: 1 to {MAX_GROUP_SIZE}, a divisor of the input dimension)",
                          file=file, field=_at(field, "group_size"))
    if args.block_structure is not None and max(args.block_structure) > MAX_GROUP_SIZE:
        raise ConfigError(f"block_structure {args.block_structure} is larger than any layer "
                          f"(accepted: [rows, cols] of 1 to {MAX_GROUP_SIZE})", file=file,
                          field=_at(field, "block_structure"))


def check_weight_format(weights: QuantizationArgs, fmt: str, *, file: str, field: str) -> None:
    """Refuse weights that the group's storage format cannot hold, saying what it holds."""
    rule = WEIGHT_FORMATS.get(fmt)
    if rule is not None and not rule.accepts(weights):
        desc = f"{weights.num_bits}-bit {weights.type}" + (f", group {weights.group_size}" if weights.group_size else "")
        raise ConfigError(f"format {fmt!r} holds {rule.wants}, but the weights are {desc}",
                          file=file, field=field)


def _listing(values: tuple[int, ...]) -> str:
    if values == tuple(range(values[0], values[-1] + 1)) and len(values) > 2:
        return f"{values[0]} to {values[-1]}"
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}"


__all__ = ["BITS", "MAX_GROUP_SIZE", "WEIGHT_FORMATS", "check_args", "check_weight_format"]
