"""Pydantic models of NVIDIA ModelOpt's two config layouts, exactly as files spell them.

These models are the *file layout*: algorithm names stay raw strings here and
are canonicalised by :mod:`quantresolve.formats.normalize_modelopt`, which knows the field
path to put in an error. Unknown extra keys are kept (``extra="allow"``) so that
model → JSON → model is lossless.

Legacy ``hf_quant_config.json``::

    >>> cfg = HfQuantConfigFile.model_validate({
    ...     "producer": {"name": "modelopt", "version": "0.31.0"},
    ...     "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}})
    >>> cfg.quantization.quant_algo, cfg.quantization.exclude_modules
    ('FP8', ['lm_head'])

Flat ``config.json`` → ``quantization_config`` (ModelOpt ≥ 0.31)::

    >>> flat = ModelOptFlatConfig.model_validate({"quant_algo": "NVFP4", "ignore": ["lm_head"],
    ...                                           "kv_cache_scheme": "FP8"})
    >>> flat.quant_method is None, flat.kv_cache_scheme
    (True, 'FP8')
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: ModelOpt's own config file next to ``config.json`` (legacy, authoritative where both exist).
HF_QUANT_FILE = "hf_quant_config.json"


class _FileModel(BaseModel):
    """Strict types (``"16"`` is not a group size), unknown keys kept for lossless round trips."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class ProducerInfo(_FileModel):
    """``producer: {name, version}``."""

    name: str
    version: str | None = None


class LayerQuantSpec(_FileModel):
    """One ``quantized_layers`` entry: ``{quant_algo, group_size?, has_zero_point?, pre_quant_scale?, ...}``."""

    quant_algo: str | None
    group_size: int | None = None
    has_zero_point: bool | None = None
    pre_quant_scale: bool | None = None


class HfQuantization(_FileModel):
    """The ``quantization`` section of ``hf_quant_config.json``."""

    quant_algo: str | None = None
    kv_cache_quant_algo: str | None = None
    group_size: int | None = None
    exclude_modules: list[str] | None = None
    quantized_layers: dict[str, LayerQuantSpec] | None = None
    has_zero_point: bool | None = None
    pre_quant_scale: bool | None = None


class HfQuantConfigFile(_FileModel):
    """ModelOpt's legacy ``hf_quant_config.json``."""

    producer: ProducerInfo | None = None
    quantization: HfQuantization


class ModelOptFlatConfig(_FileModel):
    """ModelOpt's flat ``config.json`` → ``quantization_config``.

    ``quant_method`` is ``"modelopt"`` or absent (real exports omit it);
    ``kv_cache_scheme`` is a compressed-tensors-style dict in FP8 exports and a
    bare string (``"FP8"``, ``"NVFP4"``) in others; ``config_groups`` are kept
    raw (their targets are explicit module names in MIXED_PRECISION exports).
    DeepSeek-V4 exports set ``quant_method: "fp8"`` (the base block-FP8 layout)
    next to ModelOpt's keys; that value is accepted here and reported as a
    finding by the normalizer.
    """

    quant_method: Literal["modelopt", "fp8"] | None = None
    quant_algo: str | None = None
    kv_cache_quant_algo: str | None = None
    group_size: int | None = None
    ignore: list[str] | None = None
    exclude_modules: list[str] | None = None
    producer: ProducerInfo | None = None
    kv_cache_scheme: dict[str, Any] | str | None = None
    config_groups: dict[str, dict[str, Any]] | None = None
    quantized_layers: dict[str, LayerQuantSpec] | None = None
    has_zero_point: bool | None = None
    pre_quant_scale: bool | None = None
    moe_quant_algo: str | None = Field(default=None, description="DeepSeek-V4 exports: the experts' algorithm")
