"""Schemes from producer labels, for the ``kernels`` CLI, the benchmark and tests.

compressed-tensors labels are expanded with the library's own presets
(``preset_name_to_scheme``) and its own format inference
(``infer_module_format``) — so ``W8A16`` is the group-128 int8 preset, packed.

Place in the flow: beside the dispatcher's bottom layer — it imports only the formats' scheme
builders (and compressed-tensors, lazily); nothing in the dispatcher imports it.

    >>> scheme_from_label("W4A16", "compressed-tensors").format
    'pack-quantized'
    >>> scheme_from_label("NVFP4", "modelopt").weights.group_size
    16
"""

from __future__ import annotations

from typing import Any

from quantresolve.errors import ConfigError
from quantresolve.formats.algos import canonical_modelopt_algo
from quantresolve.formats.compressed_tensors import ct_scheme
from quantresolve.formats.scheme import QuantScheme, bnb_scheme, modelopt_scheme

PRODUCERS = ("modelopt", "compressed-tensors", "bitsandbytes")


def ct_preset_scheme(label: str, *, version: str | None = None) -> QuantScheme:
    """The :class:`QuantScheme` of a compressed-tensors preset name (``W4A16``, ``FP8_BLOCK``, ...)."""
    import torch
    from compressed_tensors.compressors.format import infer_module_format
    from compressed_tensors.quantization import preset_name_to_scheme

    try:
        ct = preset_name_to_scheme(label.upper(), ["Linear"])
    except (KeyError, ValueError) as err:
        raise ConfigError(f"unknown compressed-tensors preset {label!r}", field="scheme") from err
    fmt = infer_module_format(torch.nn.Linear, ct)
    return ct_scheme(ct, fmt=getattr(fmt, "value", str(fmt)), version=version)


def scheme_from_label(label: str, producer: str | None = None, **options: Any) -> QuantScheme:
    """A scheme from a label; ``producer`` defaults by label (``BNB_*`` → bitsandbytes, ModelOpt
    labels → modelopt, anything else → a compressed-tensors preset)."""
    upper = label.upper()
    if producer is None:
        if upper.startswith("BNB_"):
            producer = "bitsandbytes"
        else:
            try:
                producer = "modelopt" if canonical_modelopt_algo(label) else "compressed-tensors"
            except ConfigError:
                producer = "compressed-tensors"
    if producer == "bitsandbytes":
        return bnb_scheme(upper if upper.startswith("BNB_") else f"BNB_{upper}", **options)
    if producer == "modelopt":
        canonical = canonical_modelopt_algo(label)
        if canonical is None:
            raise ConfigError(f"{label!r} names no ModelOpt algorithm", field="scheme")
        return modelopt_scheme(canonical, **options)
    if producer == "compressed-tensors":
        return ct_preset_scheme(label, version=options.get("version"))
    raise ConfigError(f"unknown producer {producer!r}; known: {', '.join(PRODUCERS)}", field="producer")
