"""``load_config``: find a checkpoint's quantization config, detect its producer, normalize it.

Where configs live:

- ``config.json`` → ``quantization_config``, ``compression_config``, or a
  nested ``*_config.quantization_config`` (``text_config`` of VLMs);
- a producer's own file next to it (a :class:`~quantresolve.formats.registry.Sidecar`: ModelOpt's
  legacy ``hf_quant_config.json``, authoritative over a ModelOpt ``config.json`` section,
  differences become findings).

When ``config.json`` carries another producer's config next to a sidecar (what a converter leaves
behind), ``config.json`` wins as it does in the engines, and the sidecar becomes a finding
(ModelOpt's ``stale-sidecar-*``, :mod:`quantresolve.formats.sidecar`).
:class:`~quantresolve.errors.ProducerConflictError` is kept for a section that
claims two producers at once (``quant_method`` one, ``producer.name`` another):
nothing then tells whose tensors these are.

Which producer wrote a ``quantization_config`` dict, and how it is normalized, is the producer
registry's answer (:mod:`quantresolve.formats.registry`); this module names no producer. Formats
outside scope (GPTQ, AWQ, HQQ, ...) are refused with
:class:`~quantresolve.errors.UnsupportedFormatError`.

    >>> cfg = load_config({"quant_method": "bitsandbytes", "load_in_4bit": True,
    ...                    "bnb_4bit_quant_type": "nf4"})
    >>> cfg.producer, cfg.quant_algo
    ('bitsandbytes', 'BNB_NF4')

Only the named files inside the directory are read, through
:class:`~quantresolve.util.containment.Confinement`: symlinks that leave the directory are refused
(a Hugging Face cache snapshot's links into its own repo's ``blobs/`` are followed), and a
``config.json`` that is a directory, a symlink loop or ``null`` is an error, not "absent".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import quantresolve.formats.producers  # noqa: F401  (registers the built-in producers)
from quantresolve.errors import ConfigError, NoQuantizationConfigError
from quantresolve.formats.normalized import NormalizedConfig
from quantresolve.formats.registry import (
    ProducerFormat,
    detect_producer,
    looks_like_section,
    normalize_section,
    registered_formats,
)
from quantresolve.util.containment import Confinement
from quantresolve.util.gcpause import gc_paused
from quantresolve.util.jsonfile import read_json, read_json_in

CONFIG_FILE = "config.json"


# --- locating the section in config.json ---------------------------------------------------------

_TOP_KEYS = ("quantization_config", "compression_config")


def find_quant_section(config: dict[str, Any], *, file: str) -> tuple[str, dict[str, Any]] | None:
    """``(field path, section)`` of the quantization config inside a ``config.json``, if any.

    Top-level keys win; otherwise a nested ``*_config`` (``text_config``,
    ``llm_config``, ...) holding one. Two different nested sections are an error.
    """
    for key in _TOP_KEYS:
        if key in config and config[key] is not None:
            section = config[key]
            if not isinstance(section, dict):
                raise ConfigError(f"expected an object, got {type(section).__name__}", file=file, field=key)
            return key, section
    nested = []
    for outer in sorted(config):
        value = config[outer]
        if outer.endswith("_config") and isinstance(value, dict):
            for key in _TOP_KEYS:
                if isinstance(value.get(key), dict):
                    nested.append((f"{outer}.{key}", value[key]))
    if len({json.dumps(s, sort_keys=True) for _, s in nested}) > 1:
        raise ConfigError("several different nested quantization configs: "
                          + ", ".join(path for path, _ in nested), file=file)
    return nested[0] if nested else None


def _looks_like_config_json(data: dict[str, Any]) -> bool:
    return any(k in data for k in ("architectures", "model_type", *_TOP_KEYS)) or any(
        k.endswith("_config") and isinstance(v, dict) for k, v in data.items())


def _from_document(data: Any, *, file: str) -> NormalizedConfig:
    """A single JSON document: a producer's sidecar file, config.json, or a bare quantization_config."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
    for fmt in registered_formats():
        if fmt.sidecar is not None and fmt.sidecar.recognise(data):
            return fmt.sidecar.alone(fmt.sidecar.parse(data, file), file)
    if looks_like_section(data):
        return normalize_section(data, file=file, field="")
    if _looks_like_config_json(data):
        found = find_quant_section(data, file=file)
        if found is None:
            raise NoQuantizationConfigError("no quantization_config (or compression_config) in this config",
                                            file=file)
        field, section = found
        return normalize_section(section, file=file, field=field)
    raise NoQuantizationConfigError("not a quantization config: no quant_method, quant_algo, config_groups, "
                                    "load_in_* or quantization section", file=file)


def _sidecar_in(box: Confinement) -> ProducerFormat | None:
    """The producer whose own config file is in the directory (several would be ambiguous).

    Anything at a sidecar's name counts as present — a directory or a symlink loop there is read,
    and refused, rather than taken for "no sidecar"."""
    present = [f for f in registered_formats() if f.sidecar is not None and box.present(f.sidecar.file)]
    if len(present) > 1:
        raise ConfigError("several producers' config files: " + ", ".join(f.sidecar.file for f in present  # type: ignore[union-attr]
                                                                         ), file=str(box.root))
    return present[0] if present else None


def _from_directory(root: Path) -> NormalizedConfig:
    box = Confinement.of(root, error=ConfigError)
    owner = _sidecar_in(box)
    sidecar = owner.sidecar if owner is not None else None
    side_data = read_json_in(box, sidecar.file) if sidecar is not None else None
    has_cfg = box.present(CONFIG_FILE)
    cfg_data = read_json_in(box, CONFIG_FILE) if has_cfg else None
    section = None
    if has_cfg:
        if not isinstance(cfg_data, dict):  # `null` is a config.json that says nothing, not a missing one
            raise ConfigError(f"expected a JSON object at the top level, got {type(cfg_data).__name__}",
                              file=CONFIG_FILE)
        section = find_quant_section(cfg_data, file=CONFIG_FILE)
    if owner is None or sidecar is None:
        if section is None:
            sidecars = " or ".join(f.sidecar.file for f in registered_formats() if f.sidecar is not None)
            raise NoQuantizationConfigError(
                f"no quantization config found: no {sidecars}, and {CONFIG_FILE} "
                f"{'has no quantization_config' if has_cfg else 'is missing'}", file=str(root))
        return normalize_section(section[1], file=CONFIG_FILE, field=section[0])
    if not isinstance(side_data, dict):
        raise ConfigError(f"expected a JSON object at the top level, got {type(side_data).__name__}",
                          file=sidecar.file)
    parsed = sidecar.parse(side_data, sidecar.file)
    if section is None:
        return sidecar.alone(parsed, sidecar.file)
    field, data = section
    if detect_producer(data, file=CONFIG_FILE, field=field) != owner.name:
        # Engines load config.json's quantization_config; the sidecar is a converter's leftover.
        # Still parsed (strictly), so what it claims can be compared and reported.
        used = normalize_section(data, file=CONFIG_FILE, field=field)
        return sidecar.stale(used, sidecar.alone(parsed, sidecar.file), field)
    return sidecar.with_section(parsed, data, CONFIG_FILE, field)


def metadata_files() -> tuple[str, ...]:
    """The files that describe a checkpoint's quantization: ``config.json`` and every registered
    producer's own file (what a remote reader fetches besides the index).

        >>> metadata_files()
        ('config.json', 'hf_quant_config.json')
    """
    sidecars = sorted({f.sidecar.file for f in registered_formats() if f.sidecar is not None})
    return (CONFIG_FILE, *sidecars)


def load_config(source: str | Path | dict[str, Any]) -> NormalizedConfig:
    """Load and normalize the quantization config of a checkpoint directory, a JSON file, or a dict.

        >>> load_config({"quant_method": "modelopt", "quant_algo": "NVFP4", "ignore": ["lm_head"]}).quant_algo
        'NVFP4'
    """
    # A 10^5-entry quantized_layers table allocates ~10^6 acyclic objects; cyclic collections walking
    # that growing heap cost more than the validation itself (measured 6x on the resolve_scale config).
    with gc_paused():
        if isinstance(source, dict):
            return _from_document(source, file="<dict>")
        path = Path(source)
        if path.is_dir():
            return _from_directory(path)
        if not os.path.lexists(path):
            raise ConfigError("no such file or directory", file=str(path))
        if path.is_symlink() and not path.exists():
            raise ConfigError("symlink loop or dangling symlink", file=str(path))
        data = read_json(path, label=str(path))
        return _from_document(data, file=path.name)


__all__ = ["CONFIG_FILE", "find_quant_section", "load_config", "metadata_files"]
