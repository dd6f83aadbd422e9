"""Hugging Face fine-grained FP8 (``quant_method: fp8``) → :class:`NormalizedConfig`, and its registry entry.

One default scheme, labelled as compressed-tensors' presets label the same arguments: ``FP8_BLOCK``
(block-scaled E4M3 weights; activations quantized per token in ``1 × block_k`` groups at run time when
``dynamic``), ``FP8`` (per-tensor weights, static per-tensor activations), ``FP8_DYNAMIC`` (per-tensor
weights, dynamic per-token activations). The scheme's ``format`` names the tensor dialect:

- ``finegrained-fp8`` — transformers' ``FP8Linear`` / DeepSeek: ``weight_scale_inv`` (the multiplier),
  ``activation_scale`` for static activations; whenever the file has a ``weight_block_size`` key;
- ``autofp8`` — AutoFP8 / vLLM per-tensor checkpoints: ``weight_scale`` and ``input_scale``; when the
  file has **no** ``weight_block_size`` key (transformers' own writer always writes one; AutoFP8 never).

Values a producer refuses are refused here, naming the field: ``activation_scheme`` other than
dynamic / static (case-insensitive, as transformers lower-cases it), a ``weight_block_size`` that is not
two positive integers, ``scale_fmt`` other than float / ue8m0, ``expert_dtype`` other than fp8 / fp4.
``fmt`` is ignored by transformers and vLLM alike — both read every weight as ``float8_e4m3fn`` — so a
file claiming another format (``e5m2``) cannot load as it says and is refused. DeepSeek-V4's FP4
experts (``expert_dtype: fp4``) and FP8 embeddings (``modules_to_convert``) are refused as not supported.

The skip list: vLLM reads ``ignored_layers`` first (falling back to ``modules_to_not_convert`` when it is
empty), transformers ``modules_to_not_convert`` (falling back to ``ignored_layers`` when it is ``null``).
quantresolve follows vLLM's order; where both are given and differ, an ``engines-disagree`` finding names
both fields. Other configurations engines read differently get the same finding (see
:func:`_disagreements`).

    >>> cfg = normalize_fp8_section({"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
    ...                              "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"]},
    ...                             file="config.json", field="quantization_config")
    >>> cfg.producer, cfg.quant_algo, cfg.format, cfg.default_scheme.weights.block_structure
    ('fp8', 'FP8_BLOCK', 'finegrained-fp8', (128, 128))
    >>> normalize_fp8_section({"quant_method": "fp8", "weight_block_size": [128]}, file="config.json",
    ...                       field="quantization_config")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: config.json: quantization_config.weight_block_size: [128]: accepted: two positive integers [block_n, block_k] (transformers and vLLM refuse anything else), or null for per-tensor scales
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantresolve.errors import ConfigError, UnsupportedFormatError
from quantresolve.formats.fp8 import Fp8ConfigFile
from quantresolve.formats.hf_skip_lists import engines_disagree, unparsable_entries
from quantresolve.formats.limits import MAX_GROUP_SIZE
from quantresolve.formats.normalized import Finding, NormalizedConfig, name_entries
from quantresolve.formats.registry import LayoutSchema, ProducerFormat, register_format
from quantresolve.formats.scheme import QuantArgs, QuantScheme
from quantresolve.formats.validation import validate_model

#: Tensor dialects (``QuantScheme.format``).
FINEGRAINED = "finegrained-fp8"
AUTOFP8 = "autofp8"

ACTIVATION_SCHEMES = ("dynamic", "static")
#: The one element format every engine reads for ``quant_method: fp8``.
FMTS = ("e4m3",)
SCALE_FMTS = ("float", "ue8m0")
EXPERT_DTYPES = ("fp8", "fp4")

#: (weight scale granularity, activation scheme) → label: the compressed-tensors preset of the same arguments.
LABELS: Mapping[tuple[str, str], str] = {
    ("block", "dynamic"): "FP8_BLOCK", ("block", "static"): "FP8_BLOCK",
    ("tensor", "dynamic"): "FP8_DYNAMIC", ("tensor", "static"): "FP8",
}


def _at(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _one_of(value: str, accepted: tuple[str, ...], *, what: str, file: str, field: str, why: str) -> str:
    low = value.strip().lower()
    if low not in accepted:
        raise ConfigError(f"{what} {value!r}: accepted: {', '.join(repr(a) for a in accepted)} ({why})",
                          file=file, field=field)
    return low


def _block(cfg: Fp8ConfigFile, *, file: str, field: str) -> tuple[int, int] | None:
    size = cfg.weight_block_size
    if size is None:
        return None
    if len(size) != 2 or not all(1 <= v <= MAX_GROUP_SIZE for v in size):
        raise ConfigError(f"{size}: accepted: two positive integers [block_n, block_k] (transformers and vLLM "
                          "refuse anything else), or null for per-tensor scales", file=file, field=field)
    return size[0], size[1]


def fp8_scheme(block: tuple[int, int] | None, activations: str, *, dialect: str, scale_fmt: str = "float"
               ) -> QuantScheme:
    """The scheme of one ``quant_method: fp8`` config.

        >>> fp8_scheme(None, "static", dialect=AUTOFP8).summary()
        'FP8 (fp8:autofp8, w8 tensor, a8 static)'
    """
    strategy = "block" if block is not None else "tensor"
    weights = QuantArgs(num_bits=8, type="float", strategy=strategy, block_structure=block,
                        scale_dtype="float8_e8m0fnu" if scale_fmt == "ue8m0" else None)
    if activations == "static":
        acts = QuantArgs(num_bits=8, type="float", strategy="tensor")
    elif block is not None:  # per token, one scale per block_k-wide group of each row (DeepSeek's act_quant)
        acts = QuantArgs(num_bits=8, type="float", strategy="group", group_size=block[1], dynamic=True)
    else:
        acts = QuantArgs(num_bits=8, type="float", strategy="token", dynamic=True)
    options = {"scale_fmt": scale_fmt} if scale_fmt != "float" else {}
    return QuantScheme(algo=LABELS[(strategy, activations)], producer="fp8", format=dialect, weights=weights,
                       input_activations=acts, options=options)


def _skip_list(cfg: Fp8ConfigFile, field: str) -> tuple[list[str] | None, str]:
    """vLLM's order: a non-empty ``ignored_layers``, else ``modules_to_not_convert``, else an empty
    ``ignored_layers`` (``(None, ...)`` when neither key holds a list)."""
    if cfg.ignored_layers:
        return cfg.ignored_layers, _at(field, "ignored_layers")
    if cfg.modules_to_not_convert is not None:
        return cfg.modules_to_not_convert, _at(field, "modules_to_not_convert")
    return cfg.ignored_layers, _at(field, "ignored_layers")


def _disagreements(cfg: Fp8ConfigFile, block: tuple[int, int] | None, activations: str, *, file: str,
                   field: str) -> list[Finding]:
    """Configurations transformers 5.23 and vLLM read differently (``engines-disagree``)."""
    out: list[Finding] = []
    both = cfg.ignored_layers and cfg.modules_to_not_convert is not None
    if both and sorted(cfg.ignored_layers or ()) != sorted(cfg.modules_to_not_convert or ()):
        out.append(engines_disagree(
            "ignored_layers and modules_to_not_convert differ: vLLM reads ignored_layers (used here), transformers "
            "modules_to_not_convert", file=file, field=_at(field, "ignored_layers"), subject=None))
    if not cfg.block_size_given:
        out.append(engines_disagree(
            "no weight_block_size key: vLLM reads per-tensor scales (weight_scale, input_scale: the AutoFP8 layout, "
            "used here), transformers 5.23 defaults to 128x128 blocks and expects weight_scale_inv, so it loads "
            "the FP8 codes unscaled", file=file, field=_at(field, "weight_block_size"), subject=None))
    elif block is None:
        out.append(engines_disagree(
            "weight_block_size is null: transformers reads a scalar weight_scale_inv (used here), vLLM's per-tensor "
            "path expects weight_scale / input_scale and cannot load these names", file=file,
            field=_at(field, "weight_block_size"), subject=None))
    if block is not None and activations == "static":
        out.append(engines_disagree(
            "activation_scheme 'static' with block-scaled weights: transformers runs it, vLLM refuses it "
            "(block-wise FP8 supports dynamic activations only)", file=file,
            field=_at(field, "activation_scheme"), subject=None))
    return out


def normalize_fp8(cfg: Fp8ConfigFile, *, file: str = "config.json", field: str = "quantization_config",
                  raw: dict[str, Any] | None = None) -> NormalizedConfig:
    """Normalize a parsed ``quant_method: fp8`` config (values checked here, naming the field)."""
    activations = _one_of(cfg.activation_scheme, ACTIVATION_SCHEMES, what="activation scheme", file=file,
                          field=_at(field, "activation_scheme"), why="transformers and vLLM refuse others")
    if cfg.fmt is not None:
        _one_of(cfg.fmt, FMTS, what="fmt", file=file, field=_at(field, "fmt"),
                why="transformers and vLLM ignore fmt and read every weight as float8_e4m3fn, so a checkpoint "
                    "stored in another format cannot load as the config says")
    scale_fmt = _one_of(cfg.scale_fmt, SCALE_FMTS, what="scale_fmt", file=file, field=_at(field, "scale_fmt"),
                        why="transformers refuses others")
    expert_dtype = _one_of(cfg.expert_dtype, EXPERT_DTYPES, what="expert_dtype", file=file,
                           field=_at(field, "expert_dtype"), why="transformers refuses others")
    if expert_dtype == "fp4":
        raise UnsupportedFormatError("expert_dtype 'fp4' (DeepSeek-V4's FP4-packed experts) is not supported; "
                                     "supported: 'fp8'", file=file, field=_at(field, "expert_dtype"))
    if cfg.modules_to_convert:
        raise UnsupportedFormatError("modules_to_convert (FP8 embeddings) is not supported: quantresolve runs "
                                     "FP8 linears only", file=file, field=_at(field, "modules_to_convert"))
    block = _block(cfg, file=file, field=_at(field, "weight_block_size"))
    dialect = FINEGRAINED if cfg.block_size_given else AUTOFP8
    scheme = fp8_scheme(block, activations, dialect=dialect, scale_fmt=scale_fmt)
    names, names_field = _skip_list(cfg, field)
    findings = [*_disagreements(cfg, block, activations, file=file, field=field),
                *unparsable_entries(names, file=file, field=names_field)]
    return NormalizedConfig(producer="fp8", format=dialect, quant_algo=scheme.algo, default_scheme=scheme,
                            exclude=name_entries(names, file=file, field=names_field), findings=tuple(findings),
                            sources=(file,), raw=dict(raw or {}))


def has_skip_list(config: NormalizedConfig) -> bool:
    """Whether the config gave a skip list at all (``null`` / absent: transformers' implicit skips apply).

        >>> has_skip_list(normalize_fp8_section({"quant_method": "fp8"}, file="c.json", field=""))
        False
    """
    return any(isinstance(config.raw.get(key), list) for key in ("modules_to_not_convert", "ignored_layers"))


# --- registration ---------------------------------------------------------------------------------

def detect(section: Mapping[str, Any]) -> bool:
    """``quant_method: fp8`` without ModelOpt's ``quant_algo`` (ModelOpt's DeepSeek-V4 exports carry both and
    are ModelOpt's: its detection runs first)."""
    return section.get("quant_method") == "fp8" and "quant_algo" not in section


def normalize_fp8_section(section: dict[str, Any], *, file: str, field: str) -> NormalizedConfig:
    cfg = validate_model(Fp8ConfigFile, section, file=file, prefix=field)
    return normalize_fp8(cfg, file=file, field=field, raw=section)


FORMAT = register_format(ProducerFormat(
    name="fp8", precedence=40, detect=detect, normalize=normalize_fp8_section, quant_methods=("fp8",),
    schemas=(LayoutSchema("fp8-config.schema.json", "Hugging Face fine-grained FP8 quantization_config",
                          lambda: Fp8ConfigFile),),
))

__all__ = ["AUTOFP8", "FINEGRAINED", "FORMAT", "fp8_scheme", "has_skip_list", "normalize_fp8"]
