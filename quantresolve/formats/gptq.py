"""Pydantic model of a GPTQ ``quantization_config``, exactly as the producers spell it.

Three producers write it: AutoGPTQ (``quantize_config.json``, copied into ``config.json``),
optimum / transformers' ``GPTQConfig`` (``config.json``) and GPTQModel (both files, with its
``dynamic`` per-module rules, ``format`` next to ``checkpoint_format``, ``method`` next to
``quant_method``). Values are checked by :mod:`quantresolve.formats.normalize_gptq`, which knows
the field paths; unknown keys are kept (``extra="allow"``), types are strict (``"4"`` is not a
bit width).

    >>> cfg = GptqConfig.model_validate({"quant_method": "gptq", "bits": 4, "group_size": 128,
    ...     "desc_act": True, "dynamic": {"-:.*\\\\.1\\\\..*": {}}})
    >>> cfg.bits, cfg.group_size, cfg.desc_act, cfg.sym, list(cfg.dynamic)
    (4, 128, True, True, ['-:.*\\\\.1\\\\..*'])
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GptqConfig(BaseModel):
    """A GPTQ ``quantization_config`` (AutoGPTQ, optimum / transformers, GPTQModel).

    Defaults are transformers' ``GPTQConfig`` ones where a field may be absent (``group_size``
    128, ``desc_act`` false, ``sym`` true, ``lm_head`` false); an absent ``checkpoint_format``
    (and ``format``) means ``gptq`` (v1: zero points stored minus one).
    """

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    quant_method: str | None = None
    bits: int
    group_size: int = 128
    desc_act: bool = False
    sym: bool = True
    checkpoint_format: str | None = None
    format: str | None = Field(default=None, description="GPTQModel's spelling of checkpoint_format")
    lm_head: bool = False
    dynamic: dict[str, dict[str, Any]] | None = Field(
        default=None, description="GPTQModel: module-name regex (prefix -: skip, +: or none override) → overrides")
    modules_in_block_to_quantize: list[list[str]] | list[str] | None = None
    block_name_to_quantize: str | None = None
    pack_dtype: str | None = None
    is_marlin_format: bool | None = None
    static_groups: bool | None = None
    true_sequential: bool | None = None
    damp_percent: float | int | None = None
    method: str | None = None
    meta: dict[str, Any] | None = None


__all__ = ["GptqConfig"]
