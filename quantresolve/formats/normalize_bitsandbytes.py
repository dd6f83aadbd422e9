"""bitsandbytes' ``quantization_config`` (transformers' ``BitsAndBytesConfig``) → :class:`NormalizedConfig`.

One default scheme plus the ``llm_int8_skip_modules`` entries; and bitsandbytes' registry entry.

    >>> cfg = normalize_section({"quant_method": "bitsandbytes", "load_in_4bit": True,
    ...                          "bnb_4bit_quant_type": "nf4"}, file="config.json", field="quantization_config")
    >>> cfg.producer, cfg.quant_algo, cfg.default_scheme.weights.type
    ('bitsandbytes', 'BNB_NF4', 'nf4')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantresolve.errors import ConfigError
from quantresolve.formats.bitsandbytes import BnbConfig
from quantresolve.formats.normalized import NormalizedConfig, name_entries
from quantresolve.formats.registry import LayoutSchema, ProducerFormat, register_format
from quantresolve.formats.scheme import bnb_scheme
from quantresolve.formats.validation import validate_model

#: The flags transformers writes (public and private twins); a true one routes a config to bitsandbytes.
FLAGS = ("load_in_4bit", "load_in_8bit", "_load_in_4bit", "_load_in_8bit")


def normalize_bitsandbytes(cfg: BnbConfig, *, file: str = "config.json",
                           field: str = "quantization_config") -> NormalizedConfig:
    """Normalize a bitsandbytes config: one default scheme plus skip entries."""
    label = cfg.algo_label()
    if label is None:
        raise ConfigError("neither load_in_4bit nor load_in_8bit is true", file=file, field=field)
    if cfg.is_4bit and cfg.is_8bit:
        raise ConfigError("both load_in_4bit and load_in_8bit are true", file=file, field=field)
    if label == "BNB_INT8":
        options: dict[str, Any] = {"threshold": float(cfg.llm_int8_threshold),
                                   "has_fp16_weight": cfg.llm_int8_has_fp16_weight}
    else:
        options = {"quant_type": cfg.bnb_4bit_quant_type, "double_quant": cfg.bnb_4bit_use_double_quant,
                   "compute_dtype": cfg.bnb_4bit_compute_dtype, "quant_storage": cfg.bnb_4bit_quant_storage,
                   "blocksize": 64}
    skip = name_entries(cfg.llm_int8_skip_modules, file=file, field=f"{field}.llm_int8_skip_modules")
    return NormalizedConfig(producer="bitsandbytes", format="bitsandbytes", quant_algo=label,
                            default_scheme=bnb_scheme(label, **options), exclude=skip, sources=(file,))


# --- registration ---------------------------------------------------------------------------------

def detect(section: Mapping[str, Any]) -> bool:
    """``quant_method: bitsandbytes``, or any true ``load_in_*`` flag (transformers routes those here)."""
    return section.get("quant_method") == "bitsandbytes" or any(section.get(f) is True for f in FLAGS)


def normalize_section(section: dict[str, Any], *, file: str, field: str) -> NormalizedConfig:
    return normalize_bitsandbytes(validate_model(BnbConfig, section, file=file, prefix=field), file=file, field=field)


FORMAT = register_format(ProducerFormat(
    name="bitsandbytes", precedence=10, detect=detect, normalize=normalize_section,
    quant_methods=("bitsandbytes",), section_keys=FLAGS,
    schemas=(LayoutSchema("bitsandbytes-config.schema.json", "bitsandbytes quantization_config", lambda: BnbConfig),),
))

__all__ = ["FORMAT", "normalize_bitsandbytes"]
