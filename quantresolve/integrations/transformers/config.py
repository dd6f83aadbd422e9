"""The model half of ``config.json``: a transformers config without its quantization section.

transformers would route a config carrying ``quantization_config`` to its own
quantizer (and refuse ``quant_method: modelopt`` outright), so the section is
removed before the architecture is built; quantresolve reads it separately
through :func:`quantresolve.load_config`. Nothing here touches the hub: the
config class is chosen from ``model_type`` by ``AutoConfig.for_model``.

    >>> cfg = model_config("fixtures/checkpoints/ct-w4a16")          # doctest: +SKIP
    >>> hasattr(cfg, "quantization_config"), compute_dtype(cfg, None)  # doctest: +SKIP
    (False, torch.bfloat16)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from quantresolve.errors import LoadError
from quantresolve.formats.loader import CONFIG_FILE
from quantresolve.integrations.preflight import check_architectures, read_config_json

#: Keys holding quantization sections transformers would act on (top level or in sub-configs).
QUANT_KEYS = ("quantization_config", "compression_config")
#: Compute dtype when neither the caller nor ``config.json`` names one.
DEFAULT_DTYPE = torch.bfloat16


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` without quantization sections, recursively (VLM ``text_config`` too)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in QUANT_KEYS:
            continue
        out[key] = _strip(value) if isinstance(value, dict) else value
    return out


def model_config(root: str | Path) -> PretrainedConfig:
    """The transformers config of ``root`` with every quantization section removed."""
    data = _strip(read_config_json(Path(root)))
    model_type = data.pop("model_type", None)
    if not isinstance(model_type, str):
        raise LoadError("missing model_type: cannot choose the architecture", file=CONFIG_FILE,
                        field="model_type")
    check_architectures(data)
    if model_type not in CONFIG_MAPPING:  # transformers' own message lists every known type on one line
        raise LoadError(f"transformers {transformers.__version__} knows no model_type {model_type!r}",
                        file=CONFIG_FILE, field="model_type")
    try:
        return AutoConfig.for_model(model_type, **data)
    except ValueError as err:  # transformers: unrecognized model type
        raise LoadError(str(err).splitlines()[0][:300], file=CONFIG_FILE, field="model_type") from None
    except (TypeError, KeyError, AttributeError, RuntimeError, ZeroDivisionError, OverflowError) as err:
        raise LoadError(f"transformers cannot read it as a {model_type!r} config: {type(err).__name__}: {err}"
                        .splitlines()[0], file=CONFIG_FILE) from None


def compute_dtype(config: PretrainedConfig, dtype: torch.dtype | str | None) -> torch.dtype:
    """The caller's dtype, else the config's (``dtype`` / ``torch_dtype``), else bfloat16."""
    chosen: Any = dtype if dtype is not None else getattr(config, "dtype", None)
    if chosen is None:
        chosen = getattr(config, "torch_dtype", None)
    if chosen is None:
        return DEFAULT_DTYPE
    if isinstance(chosen, torch.dtype):
        return chosen
    resolved = getattr(torch, str(chosen).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise LoadError(f"{chosen!r} is not a floating torch dtype", field="dtype")
    return resolved
