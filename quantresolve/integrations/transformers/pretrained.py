"""Any quantized checkpoint through transformers' ``from_pretrained``: its config's quantization section replaced by quantresolve's.

A checkpoint whose ``quant_method`` transformers knows (compressed-tensors, bitsandbytes, fp8, gptq,
awq, mxfp4) goes to transformers' own quantizer, and a ``QuantresolveConfig`` passed beside it is
refused by transformers' config merge (two config classes). The way in is the config itself: the
checkpoint's ``config.json`` read as transformers reads it, with ``quantization_config`` set to
quantresolve's options (:func:`pretrained_config`), passed as ``from_pretrained(path, config=...)``.
quantresolve's quantizer then reads the quantization from the checkpoint's own files as always, so
nothing of the checkpoint's section is lost. :func:`from_pretrained` does the three steps.

    >>> from quantresolve.integrations.transformers import QuantresolveConfig, from_pretrained
    >>> model = from_pretrained("fixtures/checkpoints/ct-w4a16")                                   # doctest: +SKIP
    >>> model = from_pretrained("fixtures/checkpoints/ct-w4a16", QuantresolveConfig(backend="dense_dequant"),
    ...                         auto_class=AutoModelForCausalLM, dtype=torch.float32)               # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from quantresolve.errors import ConfigError
from quantresolve.integrations.transformers.hf_config import METHOD, QuantresolveConfig
from quantresolve.integrations.transformers.registration import register


def pretrained_config(path: str | Path, options: QuantresolveConfig | None = None,
                      **config_kwargs: Any) -> PretrainedConfig:
    """transformers' config of the checkpoint at ``path`` with ``quantization_config`` = ``options`` (default options).

    ``config_kwargs`` go to ``AutoConfig.from_pretrained`` (``revision=``, ``cache_dir=``, ...).
    """
    config = AutoConfig.from_pretrained(str(path), **config_kwargs)
    config.quantization_config = (options if options is not None else QuantresolveConfig()).to_dict()
    return config


def from_pretrained(path: str | Path, options: QuantresolveConfig | None = None, *,
                    auto_class: Any = AutoModelForCausalLM, config_kwargs: dict[str, Any] | None = None,
                    **kwargs: Any) -> PreTrainedModel:
    """``auto_class.from_pretrained(path, config=pretrained_config(path, options), **kwargs)`` after :func:`register`.

    Any producer quantresolve reads, whatever transformers would do with the checkpoint's own
    ``quant_method``. ``kwargs`` go to ``from_pretrained`` (``dtype=``, ``device_map="cpu"``, ...);
    options go in ``options``, not ``quantization_config=``.
    """
    if "quantization_config" in kwargs or "config" in kwargs:
        raise ConfigError("pass quantresolve's options as QuantresolveConfig(...) (the second argument); "
                          "this helper writes the config itself", field="quantization_config")
    if METHOD not in register().routed:
        raise ConfigError(f"transformers' quant_method {METHOD!r} belongs to another quantizer: cannot route "
                          "from_pretrained to quantresolve", field="quantization_config.quant_method")
    config = pretrained_config(path, options, **(config_kwargs or {}))
    return auto_class.from_pretrained(str(path), config=config, **kwargs)  # type: ignore[no-any-return]


__all__ = ["from_pretrained", "pretrained_config"]
