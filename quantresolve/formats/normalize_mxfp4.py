"""gpt-oss MXFP4 (``quant_method: mxfp4``) → :class:`NormalizedConfig`, and its registry entry.

gpt-oss quantizes its MoE experts only: per expert and projection, E2M1 weights in groups of 32 along the
input dimension, each group with one E8M0 scale (``2^(s − 127)``); activations stay in the model's dtype.
That is the scheme compressed-tensors calls ``MXFP4A16``, and the label used here, so the same arithmetic
reads the same whatever its producer (compressed-tensors' ``MXFP4`` and ModelOpt's ``MXFP4`` also quantize
activations). The scheme's ``format`` is ``gpt-oss``: the experts' fused ``*_blocks`` / ``*_scales``
tensors (:mod:`quantresolve.dispatch.codecs.mxfp4`).

``modules_to_not_convert`` entries are globs in checkpoint space (``model.layers.*.self_attn``), kept as
written. transformers compiles them as regular expressions: one it cannot compile (a glob starting with
``*``) makes ``from_pretrained`` raise, which becomes an ``engines-disagree`` finding here, never a crash.

    >>> cfg = normalize_mxfp4_section({"quant_method": "mxfp4", "modules_to_not_convert":
    ...     ["model.layers.*.self_attn", "*.mlp.router", "lm_head"]}, file="config.json", field="quantization_config")
    >>> cfg.quant_algo, [e.kind for e in cfg.exclude], [f.code for f in cfg.findings]
    ('MXFP4A16', ['glob', 'glob', 'exact'], ['engines-disagree'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantresolve.formats.hf_skip_lists import unparsable_entries
from quantresolve.formats.mxfp4 import Mxfp4ConfigFile
from quantresolve.formats.normalized import NormalizedConfig, name_entries
from quantresolve.formats.registry import LayoutSchema, ProducerFormat, register_format
from quantresolve.formats.scheme import QuantArgs, QuantScheme
from quantresolve.formats.validation import validate_model

LABEL = "MXFP4A16"
#: The tensor layout: gpt-oss' fused expert blocks and scales.
GPT_OSS = "gpt-oss"
#: Values per E8M0 scale.
GROUP = 32

MXFP4_SCHEME = QuantScheme(
    algo=LABEL, producer="mxfp4", format=GPT_OSS,
    weights=QuantArgs(num_bits=4, type="float", strategy="group", group_size=GROUP, scale_dtype="uint8"))


def normalize_mxfp4(cfg: Mxfp4ConfigFile, *, file: str = "config.json",
                    field: str = "quantization_config") -> NormalizedConfig:
    """One default scheme (the experts'), the skip globs, and a finding per entry transformers cannot compile."""
    where = f"{field}.modules_to_not_convert" if field else "modules_to_not_convert"
    return NormalizedConfig(
        producer="mxfp4", format=GPT_OSS, quant_algo=LABEL, default_scheme=MXFP4_SCHEME,
        exclude=name_entries(cfg.modules_to_not_convert, file=file, field=where),
        findings=tuple(unparsable_entries(cfg.modules_to_not_convert, file=file, field=where)), sources=(file,))


# --- registration ---------------------------------------------------------------------------------

def detect(section: Mapping[str, Any]) -> bool:
    return section.get("quant_method") == "mxfp4"


def normalize_mxfp4_section(section: dict[str, Any], *, file: str, field: str) -> NormalizedConfig:
    return normalize_mxfp4(validate_model(Mxfp4ConfigFile, section, file=file, prefix=field), file=file, field=field)


FORMAT = register_format(ProducerFormat(
    name="mxfp4", precedence=50, detect=detect, normalize=normalize_mxfp4_section, quant_methods=("mxfp4",),
    schemas=(LayoutSchema("mxfp4-config.schema.json", "gpt-oss MXFP4 quantization_config", lambda: Mxfp4ConfigFile),),
))

__all__ = ["FORMAT", "GPT_OSS", "LABEL", "MXFP4_SCHEME", "normalize_mxfp4"]
