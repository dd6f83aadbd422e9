"""``load_config``: find a checkpoint's quantization config, detect its producer, normalize it.

Where configs live:

- ``hf_quant_config.json`` — ModelOpt's legacy file (authoritative over a
  ModelOpt ``config.json`` section, differences become findings);
- ``config.json`` → ``quantization_config``, ``compression_config``, or a
  nested ``*_config.quantization_config`` (``text_config`` of VLMs).

When ``config.json`` carries another producer's config next to a ModelOpt
``hf_quant_config.json`` (what a converter leaves behind), ``config.json`` wins
as it does in the engines, and the sidecar becomes a ``stale-sidecar-*``
finding (:mod:`quantresolve.formats.sidecar`).
:class:`~quantresolve.errors.ProducerConflictError` is kept for a section that
claims two producers at once (``quant_method`` one, ``producer.name`` another):
nothing then tells whose tensors these are.

The producer of a ``quantization_config`` dict is decided by a small ordered
registry of detectors (:data:`DETECTORS`); formats outside scope (HF ``fp8``,
``mxfp4`` of gpt-oss, GPTQ, AWQ, ...) are refused with
:class:`~quantresolve.errors.UnsupportedFormatError`.

    >>> cfg = load_config({"quant_method": "bitsandbytes", "load_in_4bit": True,
    ...                    "bnb_4bit_quant_type": "nf4"})
    >>> cfg.producer, cfg.quant_algo
    ('bitsandbytes', 'BNB_NF4')

Only the two named files inside the directory are read; symlinks that leave the
directory are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantresolve.errors import (
    ConfigError,
    NoQuantizationConfigError,
    ProducerConflictError,
    UnsupportedFormatError,
)
from quantresolve.formats.bitsandbytes import BnbConfig
from quantresolve.formats.modelopt import HfQuantConfigFile, ModelOptFlatConfig
from quantresolve.formats.normalize import (
    HF_QUANT_FILE,
    normalize_bitsandbytes,
    normalize_compressed_tensors,
    normalize_modelopt,
)
from quantresolve.formats.normalized import NormalizedConfig
from quantresolve.formats.sidecar import apply_stale_sidecar
from quantresolve.formats.validation import validate_model
from quantresolve.util.gcpause import gc_paused
from quantresolve.util.jsonfile import read_json

CONFIG_FILE = "config.json"
#: ``quant_method`` values of formats that are recognised but outside quantresolve's scope.
OUT_OF_SCOPE_METHODS = {
    "fp8": "HF fine-grained FP8 (transformers' FineGrainedFP8Config)",
    "mxfp4": "gpt-oss MXFP4 (transformers' Mxfp4Config)",
    "gptq": "GPTQ", "awq": "AutoAWQ", "aqlm": "AQLM", "hqq": "HQQ", "eetq": "EETQ", "quanto": "Quanto",
    "torchao": "torchao", "fbgemm_fp8": "FBGEMM FP8", "bitnet": "BitNet", "higgs": "HIGGS", "vptq": "VPTQ",
    "spqr": "SpQR", "gguf": "GGUF", "auto-round": "AutoRound", "fp_quant": "FP-Quant", "quark": "Quark",
}


# --- producer detection --------------------------------------------------------------------------

def _is_bnb(d: dict[str, Any]) -> bool:
    flags = ("load_in_4bit", "load_in_8bit", "_load_in_4bit", "_load_in_8bit")
    # transformers routes any config with a true load_in_* flag to bitsandbytes.
    return d.get("quant_method") == "bitsandbytes" or any(d.get(f) is True for f in flags)


def _is_ct(d: dict[str, Any]) -> bool:
    qm = d.get("quant_method")
    return qm in ("compressed-tensors", "sparseml") or (qm is None and "config_groups" in d and "quant_algo" not in d)


def _is_modelopt(d: dict[str, Any]) -> bool:
    producer = d.get("producer")
    by_producer = isinstance(producer, dict) and str(producer.get("name", "")).lower() == "modelopt"
    return d.get("quant_method") == "modelopt" or by_producer or (d.get("quant_method") is None and "quant_algo" in d)


#: Ordered: the first detector that matches decides the producer.
DETECTORS: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
    ("bitsandbytes", _is_bnb),
    ("modelopt", _is_modelopt),
    ("compressed-tensors", _is_ct),
)


#: ``quant_method`` values that name a producer outright.
_METHOD_PRODUCERS = {"modelopt": "modelopt", "compressed-tensors": "compressed-tensors",
                     "sparseml": "compressed-tensors", "bitsandbytes": "bitsandbytes"}


def _check_one_claim(data: dict[str, Any], *, file: str, field: str) -> None:
    """A section whose ``quant_method`` and ``producer.name`` name different producers is ambiguous."""
    by_method = _METHOD_PRODUCERS.get(data.get("quant_method"))  # type: ignore[arg-type]
    producer = data.get("producer")
    named = str(producer.get("name", "")).lower() if isinstance(producer, dict) else ""
    if by_method is not None and named == "modelopt" and by_method != "modelopt":
        where = f"{field}.producer.name" if field else "producer.name"
        raise ProducerConflictError(f"quant_method is {data['quant_method']!r} but producer.name is 'modelopt': "
                                    "one section claims two producers", file=file, field=where)


def detect_producer(data: dict[str, Any], *, file: str, field: str) -> str:
    """Which producer wrote this ``quantization_config`` (or a clear refusal)."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected an object, got {type(data).__name__}", file=file, field=field)
    _check_one_claim(data, file=file, field=field)
    for name, matches in DETECTORS:
        if matches(data):
            return name
    qm = data.get("quant_method")
    if isinstance(qm, str) and qm.lower() in OUT_OF_SCOPE_METHODS:
        raise UnsupportedFormatError(
            f"quant_method {qm!r} is {OUT_OF_SCOPE_METHODS[qm.lower()]}, which quantresolve does not handle; "
            "supported: modelopt, compressed-tensors, bitsandbytes", file=file, field=f"{field}.quant_method")
    raise ConfigError(f"cannot tell the producer: quant_method is {qm!r}; supported: modelopt, compressed-tensors, "
                      "bitsandbytes", file=file, field=f"{field}.quant_method" if qm is not None else field)


def _normalize_section(data: dict[str, Any], *, file: str, field: str,
                       hf: HfQuantConfigFile | None = None) -> NormalizedConfig:
    producer = detect_producer(data, file=file, field=field)
    if producer == "bitsandbytes":
        return normalize_bitsandbytes(validate_model(BnbConfig, data, file=file, prefix=field), file=file, field=field)
    if producer == "compressed-tensors":
        return normalize_compressed_tensors(data, file=file, field=field)
    flat = validate_model(ModelOptFlatConfig, data, file=file, prefix=field)
    return normalize_modelopt(hf, flat, flat_file=file, flat_field=field)


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
    """A single JSON document: hf_quant_config, config.json, or a bare quantization_config."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
    if "quantization" in data and ("producer" in data or isinstance(data.get("quantization"), dict)):
        hf = validate_model(HfQuantConfigFile, data, file=file)
        return normalize_modelopt(hf, None, hf_file=file)
    if any(k in data for k in ("quant_method", "quant_algo", "config_groups", "load_in_4bit", "load_in_8bit",
                               "_load_in_4bit", "_load_in_8bit")):
        return _normalize_section(data, file=file, field="")
    if _looks_like_config_json(data):
        found = find_quant_section(data, file=file)
        if found is None:
            raise NoQuantizationConfigError("no quantization_config (or compression_config) in this config",
                                            file=file)
        field, section = found
        return _normalize_section(section, file=file, field=field)
    raise NoQuantizationConfigError("not a quantization config: no quant_method, quant_algo, config_groups, "
                                    "load_in_* or quantization section", file=file)


def _from_directory(root: Path) -> NormalizedConfig:
    hf_path, cfg_path = root / HF_QUANT_FILE, root / CONFIG_FILE
    hf_data = read_json(hf_path, root=root) if hf_path.is_file() else None
    cfg_data = read_json(cfg_path, root=root) if cfg_path.is_file() else None
    section = None
    if cfg_data is not None:
        if not isinstance(cfg_data, dict):
            raise ConfigError(f"expected a JSON object at the top level, got {type(cfg_data).__name__}",
                              file=CONFIG_FILE)
        section = find_quant_section(cfg_data, file=CONFIG_FILE)
    if hf_data is None:
        if section is None:
            raise NoQuantizationConfigError(
                f"no quantization config found: no {HF_QUANT_FILE}, and {CONFIG_FILE} "
                f"{'has no quantization_config' if cfg_data is not None else 'is missing'}", file=str(root))
        return _normalize_section(section[1], file=CONFIG_FILE, field=section[0])
    if not isinstance(hf_data, dict):
        raise ConfigError(f"expected a JSON object at the top level, got {type(hf_data).__name__}", file=HF_QUANT_FILE)
    hf = validate_model(HfQuantConfigFile, hf_data, file=HF_QUANT_FILE)
    if section is None:
        return normalize_modelopt(hf, None)
    field, data = section
    producer = detect_producer(data, file=CONFIG_FILE, field=field)
    if producer != "modelopt":
        # Engines load config.json's quantization_config; the ModelOpt sidecar is a converter's
        # leftover. Still parsed (strictly), so what it claims can be compared and reported.
        used = _normalize_section(data, file=CONFIG_FILE, field=field)
        return apply_stale_sidecar(used, normalize_modelopt(hf, None), field=field)
    flat = validate_model(ModelOptFlatConfig, data, file=CONFIG_FILE, prefix=field)
    return normalize_modelopt(hf, flat, flat_field=field)


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
        if not path.exists():
            raise ConfigError("no such file or directory", file=str(path))
        data = read_json(path, label=str(path))
        return _from_document(data, file=path.name)


__all__ = ["DETECTORS", "detect_producer", "find_quant_section", "load_config"]
