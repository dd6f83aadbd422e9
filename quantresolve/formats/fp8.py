"""Pydantic model of the Hugging Face fine-grained FP8 ``quantization_config`` (``quant_method: fp8``).

One ``quant_method`` holds two tensor dialects (research notes ``formats17.md`` §1):

- **transformers / DeepSeek** (``FineGrainedFP8Config``, DeepSeek-V3, Qwen3-*-FP8): E4M3 ``weight`` with a
  float32 ``weight_scale_inv`` — per 128×128 block when ``weight_block_size`` is set, a 0-d scalar when it
  is ``null`` — and, for ``activation_scheme: static``, an ``activation_scale``. Despite its name
  ``weight_scale_inv`` is the multiplier (``W = fp8 · weight_scale_inv``);
- **AutoFP8 / vLLM** per-tensor checkpoints: ``weight_scale`` and ``input_scale``, the skip list under
  ``ignored_layers``, and **no** ``weight_block_size`` key (transformers' own writer always writes one).

This model is the file layout, exactly as files spell it; values are checked, and the dialect chosen, by
:mod:`quantresolve.formats.normalize_fp8`, which knows the field path to put in an error. Unknown keys are
kept (``extra="allow"``), as for the other producers.

    >>> cfg = Fp8ConfigFile.model_validate({"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
    ...                                     "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"]})
    >>> cfg.weight_block_size, cfg.block_size_given, cfg.modules_to_not_convert
    ([128, 128], True, ['lm_head'])
    >>> Fp8ConfigFile.model_validate({"quant_method": "fp8", "ignored_layers": ["lm_head"]}).block_size_given
    False
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Fp8ConfigFile(BaseModel):
    """A ``quant_method: fp8`` ``quantization_config``.

    ``activation_scheme``, ``fmt``, ``scale_fmt`` and ``expert_dtype`` stay strings here (transformers
    lower-cases ``activation_scheme``); ``weight_block_size`` is ``[block_n, block_k]`` or ``null``.
    ``dequantize`` is a loading option transformers does not serialize; it is kept like any unknown key.
    """

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    quant_method: Literal["fp8"]
    activation_scheme: str = "dynamic"
    fmt: str | None = None
    weight_block_size: list[int] | None = Field(default=None, description="[block_n, block_k]; null or absent: "
                                                "per-tensor (see block_size_given)")
    modules_to_not_convert: list[str] | None = None
    ignored_layers: list[str] | None = Field(default=None, description="the AutoFP8 / vLLM spelling of the skip list")
    modules_to_convert: list[str] | None = None
    scale_fmt: str = "float"
    expert_dtype: str = "fp8"

    @property
    def block_size_given(self) -> bool:
        """Whether the file has a ``weight_block_size`` key at all (``null`` counts as given)."""
        return "weight_block_size" in self.model_fields_set


__all__ = ["Fp8ConfigFile"]
