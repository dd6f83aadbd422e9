"""compressed-tensors' ``quantization_config`` → :class:`NormalizedConfig`, and its registry entry.

The section is validated as compressed-tensors validates it, by our torch-free mirror of its schema
(:func:`~quantresolve.formats.compressed_tensors.parse_ct_config`, :mod:`.ct_config`), then every
value is checked against what the library's compressors can store (:mod:`.ct_values`); each
config group becomes a :class:`SchemeGroup` carrying its effective ``format``.

    >>> cfg = normalize_compressed_tensors({"quant_method": "compressed-tensors", "format": "pack-quantized",
    ...                                     "config_groups": {"W4A16": ["Linear"]}, "ignore": ["lm_head"]})
    >>> cfg.quant_algo, cfg.groups[0].scheme.format, [e.original for e in cfg.exclude]
    ('W4A16', 'pack-quantized', ['lm_head'])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from quantresolve.errors import ConfigError
from quantresolve.formats.compressed_tensors import (
    KNOWN_FORMATS,
    ct_scheme,
    kv_scheme,
    parse_ct_config,
)
from quantresolve.formats.ct_config import QuantizationConfig, QuantizationScheme
from quantresolve.formats.ct_values import check_args, check_weight_format
from quantresolve.formats.normalized import NormalizedConfig, SchemeGroup, name_entries
from quantresolve.formats.registry import LayoutSchema, ProducerFormat, register_format


def normalize_compressed_tensors(data: dict[str, Any], *, file: str = "config.json",
                                 field: str = "quantization_config") -> NormalizedConfig:
    """Normalize a compressed-tensors ``quantization_config`` (parsed by the library itself)."""
    config = parse_ct_config(data, file=file, prefix=field)
    version = data.get("version") if isinstance(data.get("version"), str) else None
    top = config.format
    groups = []
    schemes = config.schemes()
    for name in sorted(schemes):
        scheme = schemes[name]
        where = f"{field + '.' if field else ''}config_groups[{json.dumps(name)}]"
        fmt = scheme.format or (top if top not in (None, "mixed-precision") else None)
        if fmt is None:
            raise ConfigError("no format: the group has no 'format' and the top-level format is "
                              f"{top!r}", file=file, field=f"{where}.format")
        if fmt not in KNOWN_FORMATS and fmt != "fakequant":
            raise ConfigError(f"unknown compressed-tensors format {fmt!r}; known: {', '.join(sorted(KNOWN_FORMATS))}",
                              file=file, field=f"{where}.format")
        _check_values(scheme, fmt, file=file, where=where)
        targets = name_entries(scheme.targets, file=file, field=f"{where}.targets", class_names=True)
        groups.append(SchemeGroup(name=name, scheme=ct_scheme(scheme, fmt=fmt, version=version),
                                  targets=targets, field=where))
    if not groups:
        raise ConfigError("config_groups is empty: nothing is quantized", file=file, field=f"{field}.config_groups")
    labels = sorted({g.scheme.algo for g in groups})
    if config.kv_cache_scheme is not None:
        check_args(config.kv_cache_scheme, file=file, field=f"{field + '.' if field else ''}kv_cache_scheme")
    kv = kv_scheme(config.kv_cache_scheme, version=version) if config.kv_cache_scheme is not None else None
    return NormalizedConfig(
        producer="compressed-tensors", producer_version=version, format=top,
        quant_algo=labels[0] if len(labels) == 1 else None, groups=tuple(groups),
        exclude=name_entries(config.ignore, file=file, field=f"{field}.ignore", class_names=True),
        kv_cache=kv, sources=(file,),
    )


def _check_values(scheme: QuantizationScheme, fmt: str, *, file: str, where: str) -> None:
    """Every argument set of one group against what compressed-tensors' compressors store."""
    for role in ("weights", "input_activations", "output_activations"):
        args = getattr(scheme, role)
        if args is not None:
            check_args(args, file=file, field=f"{where}.{role}")
    if scheme.weights is not None:
        check_weight_format(scheme.weights, fmt, file=file, field=f"{where}.format")


# --- registration ---------------------------------------------------------------------------------

def detect(section: Mapping[str, Any]) -> bool:
    """``quant_method`` compressed-tensors (or its old name sparseml), or bare ``config_groups`` without ``quant_algo``."""
    qm = section.get("quant_method")
    return qm in ("compressed-tensors", "sparseml") or (
        qm is None and "config_groups" in section and "quant_algo" not in section)




FORMAT = register_format(ProducerFormat(
    name="compressed-tensors", precedence=30, detect=detect, normalize=normalize_compressed_tensors,
    quant_methods=("compressed-tensors", "sparseml"), section_keys=("config_groups",),
    schemas=(LayoutSchema("compressed-tensors-config.schema.json", "compressed-tensors quantization_config",
                          lambda: QuantizationConfig),),
))

__all__ = ["FORMAT", "normalize_compressed_tensors"]
