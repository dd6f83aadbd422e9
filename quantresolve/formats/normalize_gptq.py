"""GPTQ's ``quantization_config`` → :class:`NormalizedConfig`, and GPTQ's entry in the producer registry.

What is accepted is what the producers accept, checked here with the field path at hand:

- ``bits`` in {2, 3, 4, 8} (transformers' ``GPTQConfig``, optimum, vLLM; GPTQModel writes 5-7 bits
  only in its planar ``gptq_p`` format, a different layout);
- ``group_size`` −1 (one group over all of K: per-channel scales) or 1..2^20 (0 and < −1 are refused by
  every producer); whether it divides a layer's input dimension is for the tensors to tell (the audit);
- ``checkpoint_format`` / ``format`` ``gptq`` (v1, the default: zero points stored minus one) or
  ``gptq_v2``; ``marlin``, ``bitblas``, ``gptq_p`` and ``is_marlin_format`` are other on-disk layouts and
  are refused naming the value; ``pack_dtype`` other than ``int32`` likewise;
- ``desc_act`` (act-order: a ``g_idx`` permutation of groups) — with ``group_size`` −1 there is one
  group, so it changes nothing and is normalized to false;
- ``lm_head``: false (the default) leaves the output embedding unquantized — kept as an exclude entry
  ``lm_head`` located at the ``lm_head`` field, so reports point at it;
- optimum's ``block_name_to_quantize`` (a module path; only modules under it are quantized) and
  ``modules_in_block_to_quantize`` (block-relative names; a module is quantized only if one of them
  names its trailing components) become :attr:`NormalizedConfig.include` lists;
- GPTQModel's ``dynamic``: each key a regular expression over checkpoint module names, matched from
  the start (``re.match``). ``-:`` skips the module (an exclude entry); ``+:`` or no prefix overrides
  ``bits`` / ``group_size`` / ``desc_act`` / ``sym`` (a :class:`SchemeGroup` whose one target is the
  key). A key that is not a valid regular expression, an empty pattern, or an override of anything
  that changes the layout other than those four is refused naming the key. How the rules combine is
  :mod:`quantresolve.resolve.rules_gptq`'s (order-independent).

    >>> cfg = normalize_section({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False,
    ...     "dynamic": {"-:.*mlp\\\\.down_proj": {}, ".*\\\\.1\\\\..*": {"bits": 8, "group_size": 32}}},
    ...     file="config.json", field="quantization_config")
    >>> cfg.quant_algo, cfg.default_scheme.summary()
    ('W4A16', 'W4A16 (gptq, w4 group/128)')
    >>> [e.original for e in cfg.exclude], [(g.name, g.scheme.summary()) for g in cfg.groups]
    (['-:.*mlp\\\\.down_proj', 'lm_head'], [('.*\\\\.1\\\\..*', 'W8A16 (gptq, w8 group/32)')])
    >>> normalize_section({"quant_method": "gptq", "bits": 5}, file="config.json", field="quantization_config")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: config.json: quantization_config.bits: 5 bits: accepted: 2, 3, 4, 8
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from quantresolve.errors import ConfigError, UnsupportedFormatError
from quantresolve.formats.compressed_tensors import ct_label
from quantresolve.formats.gptq import GptqConfig
from quantresolve.formats.limits import check_group_size
from quantresolve.formats.normalized import NameEntry, NormalizedConfig, SchemeGroup
from quantresolve.formats.registry import register_method_format
from quantresolve.formats.scheme import QuantArgs, QuantScheme
from quantresolve.util.patterns import BoundedRegex

#: Bit widths GPTQ's packed int32 layout holds (transformers, optimum and vLLM accept these only).
BITS = (2, 3, 4, 8)
#: On-disk formats read here → what their zero points store.
CHECKPOINT_FORMATS = {"gptq": "zero points stored minus one (v1)", "gptq_v2": "zero points as they are"}
#: Other GPTQ on-disk layouts, refused by name.
OTHER_LAYOUTS = {
    "marlin": "AutoGPTQ's Marlin-tiled qweight",
    "bitblas": "BitBLAS-repacked weights",
    "gptq_p": "GPTQModel's planar packing (5-7 bits)",
    "qqq": "QQQ (w4a8)",
}
#: ``dynamic`` override keys that change the layout, and are read.
OVERRIDES = ("bits", "group_size", "desc_act", "sym")
#: ``dynamic`` override keys that only steer calibration (accepted, no effect on the tensors).
CALIBRATION_ONLY = frozenset({"damp_percent", "damp_auto_increment", "static_groups", "true_sequential", "mse",
                              "act_group_aware", "v2", "v2_alpha", "hyb_act", "failsafe", "gptaq", "offload_to_disk"})


@lru_cache(maxsize=256)
def gptq_scheme(bits: int, group_size: int, sym: bool, desc_act: bool, checkpoint_format: str = "gptq") -> QuantScheme:
    """The :class:`QuantScheme` of one GPTQ setting (``group_size`` −1: per-channel scales).

    The label shows the bits and, with ``_ASYM``, real zero points (``sym: false``); the group size is
    in ``weights`` (``summary()``: ``w4 group/128``); ``format`` is the on-disk format, which says how
    the zero points are stored; ``options["desc_act"]`` says the input channels carry a ``g_idx``
    permutation.

        >>> gptq_scheme(3, -1, False, False, "gptq_v2").summary()
        'W3A16_ASYM (gptq:gptq_v2, w3 channel)'
    """
    act_order = desc_act and group_size != -1
    weights = QuantArgs(num_bits=bits, type="int", strategy="channel" if group_size == -1 else "group",
                        group_size=None if group_size == -1 else group_size, symmetric=sym,
                        actorder="group" if act_order else None)
    return QuantScheme(algo=ct_label(weights, None), producer="gptq", format=checkpoint_format, weights=weights,
                       options={"desc_act": act_order})


def _at(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def check_bits(value: object, *, file: str, field: str) -> int:
    """``value`` when it is one of :data:`BITS`, else a located :class:`ConfigError`."""
    if type(value) is not int or value not in BITS:
        raise ConfigError(f"{value!r} bits: accepted: {', '.join(map(str, BITS))}", file=file, field=field)
    return value


def check_gptq_group_size(value: object, *, file: str, field: str) -> int:
    """−1 (per channel) or a positive group size (:func:`~quantresolve.formats.limits.check_group_size`)."""
    if type(value) is not int:
        raise ConfigError(f"group size {value!r}: accepted: -1 (one group per row) or a positive integer",
                          file=file, field=field)
    if value == -1:
        return value
    if value < 1:
        raise ConfigError(f"group size {value}: accepted: -1 (one group per row) or a positive divisor of the "
                          "input dimension", file=file, field=field)
    check_group_size(value, file=file, field=field)
    return value


def _checkpoint_format(cfg: GptqConfig, *, file: str, field: str) -> str:
    stated = {key: getattr(cfg, key) for key in ("checkpoint_format", "format") if getattr(cfg, key) is not None}
    if cfg.is_marlin_format:
        raise UnsupportedFormatError("is_marlin_format: the weights are in AutoGPTQ's Marlin-tiled layout, which "
                                     "quantresolve does not read; supported: checkpoint_format gptq, gptq_v2",
                                     file=file, field=_at(field, "is_marlin_format"))
    if len({v.lower() for v in stated.values()}) > 1:
        raise ConfigError(f"checkpoint_format {stated['checkpoint_format']!r} and format {stated['format']!r} "
                          "disagree: one section, two on-disk layouts", file=file, field=_at(field, "format"))
    key, value = next(iter(stated.items()), ("checkpoint_format", "gptq"))
    fmt = value.lower()
    if fmt not in CHECKPOINT_FORMATS:
        what = OTHER_LAYOUTS.get(fmt, "an unknown layout")
        raise UnsupportedFormatError(f"{key} {value!r} ({what}) is not read by quantresolve; supported: "
                                     + ", ".join(f"{k} ({v})" for k, v in CHECKPOINT_FORMATS.items()),
                                     file=file, field=_at(field, key))
    if cfg.pack_dtype is not None and cfg.pack_dtype.lower() != "int32":
        raise UnsupportedFormatError(f"pack_dtype {cfg.pack_dtype!r}: quantresolve reads GPTQ codes packed in "
                                     "int32 words only", file=file, field=_at(field, "pack_dtype"))
    return fmt


def _override_scheme(base: dict[str, Any], override: Mapping[str, Any], fmt: str, *, file: str,
                     where: str) -> QuantScheme:
    """The scheme a positive ``dynamic`` rule gives: the base settings with its overrides."""
    settings = dict(base)
    for key in sorted(override):
        value = override[key]
        at = f"{where}.{key}"
        if key in OVERRIDES:
            if key == "bits":
                check_bits(value, file=file, field=at)
            elif key == "group_size":
                check_gptq_group_size(value, file=file, field=at)
            elif type(value) is not bool:
                raise ConfigError(f"{key} must be true or false, got {value!r}", file=file, field=at)
            settings[key] = value
        elif key == "pack_dtype":
            if str(value).lower() != "int32":
                raise UnsupportedFormatError(f"pack_dtype {value!r}: quantresolve reads GPTQ codes packed in int32 "
                                             "words only", file=file, field=at)
        elif key not in CALIBRATION_ONLY:
            raise ConfigError(f"dynamic override {key!r} is not read by quantresolve (it may change how the "
                              f"module is stored); accepted: {', '.join(OVERRIDES)}, pack_dtype 'int32' and "
                              "calibration-only settings", file=file, field=at)
    return gptq_scheme(settings["bits"], settings["group_size"], settings["sym"], settings["desc_act"], fmt)


def _dynamic(cfg: GptqConfig, fmt: str, *, file: str,
             field: str) -> tuple[tuple[NameEntry, ...], tuple[SchemeGroup, ...]]:
    """GPTQModel's ``dynamic`` map: ``-:`` keys → exclude entries, the others → one group each (by key)."""
    base = {"bits": cfg.bits, "group_size": cfg.group_size, "sym": cfg.sym, "desc_act": cfg.desc_act}
    skips: list[NameEntry] = []
    groups: list[SchemeGroup] = []
    for key in sorted(cfg.dynamic or {}):
        where = f"{_at(field, 'dynamic')}[{json.dumps(key)}]"
        body = key[2:] if key.startswith(("-:", "+:")) else key
        if not body:
            raise ConfigError("empty pattern: it would match every module; a dynamic key is a regular expression "
                              "over module names, e.g. '-:.*\\.mlp\\.gate$'", file=file, field=where)
        BoundedRegex(body, file=file, field=where)  # an invalid pattern is refused here, naming the key
        entry = NameEntry(original=key, kind="regex", file=file, field=where, pattern=body)
        if key.startswith("-:"):
            skips.append(entry)
        else:
            scheme = _override_scheme(base, cfg.dynamic[key], fmt, file=file, where=where)  # type: ignore[index]
            groups.append(SchemeGroup(name=key, scheme=scheme, targets=(entry,), field=where))
    return tuple(skips), tuple(groups)


def _include(cfg: GptqConfig, *, file: str, field: str) -> tuple[NameEntry, ...]:
    """optimum's inclusion lists: the block (a module path, covering its subtree) and the block-relative
    module names (matching a module's trailing components: a pattern built from the name, never a
    substring)."""
    out: list[NameEntry] = []
    if cfg.block_name_to_quantize is not None:
        where = _at(field, "block_name_to_quantize")
        if not cfg.block_name_to_quantize.strip():
            raise ConfigError("empty module name", file=file, field=where)
        out.append(NameEntry(original=cfg.block_name_to_quantize, kind="exact", file=file, field=where))
    names = cfg.modules_in_block_to_quantize or []
    for i, item in enumerate(names):
        inner = item if isinstance(item, list) else [item]
        for j, name in enumerate(inner):
            where = f"{_at(field, 'modules_in_block_to_quantize')}[{i}]" + (f"[{j}]" if isinstance(item, list) else "")
            if not name.strip():
                raise ConfigError("empty module name", file=file, field=where)
            out.append(NameEntry(original=name, kind="regex", file=file, field=where,
                                 pattern=rf"(?:.*\.)?{re.escape(name)}$"))
    return tuple(out)


def _producer_version(cfg: GptqConfig) -> str | None:
    quantizer = (cfg.meta or {}).get("quantizer")
    if isinstance(quantizer, list) and all(isinstance(q, str) for q in quantizer):
        return ", ".join(quantizer) or None
    return quantizer if isinstance(quantizer, str) else None


def normalize_gptq(cfg: GptqConfig, *, file: str = "config.json", field: str = "quantization_config") -> NormalizedConfig:
    """Normalize a validated GPTQ config (see the module docstring for what is refused)."""
    check_bits(cfg.bits, file=file, field=_at(field, "bits"))
    check_gptq_group_size(cfg.group_size, file=file, field=_at(field, "group_size"))
    fmt = _checkpoint_format(cfg, file=file, field=field)
    default = gptq_scheme(cfg.bits, cfg.group_size, cfg.sym, cfg.desc_act, fmt)
    skips, groups = _dynamic(cfg, fmt, file=file, field=field)
    head = () if cfg.lm_head else (NameEntry(original="lm_head", kind="exact", file=file, field=_at(field, "lm_head")),)
    return NormalizedConfig(producer="gptq", producer_version=_producer_version(cfg), format=fmt,
                            quant_algo=default.algo, default_scheme=default, groups=groups, exclude=skips + head,
                            include=_include(cfg, file=file, field=field), sources=(file,))


# --- registration ---------------------------------------------------------------------------------

FORMAT = register_method_format("gptq", precedence=40, model=lambda: GptqConfig, normalize=normalize_gptq,
                                schema=("gptq-config.schema.json", "GPTQ quantization_config"))
normalize_section = FORMAT.normalize

__all__ = ["BITS", "FORMAT", "check_bits", "check_gptq_group_size", "gptq_scheme", "normalize_gptq"]
