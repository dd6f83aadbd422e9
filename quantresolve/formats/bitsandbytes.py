"""Pydantic model of transformers' serialized ``BitsAndBytesConfig``.

transformers writes both the public flags and their private twins
(``load_in_4bit`` and ``_load_in_4bit``); either may be the only one present.
``llm_int8_skip_modules`` may be ``null``.

    >>> cfg = BnbConfig.model_validate({"quant_method": "bitsandbytes", "_load_in_4bit": True,
    ...                                 "bnb_4bit_quant_type": "nf4", "llm_int8_skip_modules": None})
    >>> cfg.is_4bit, cfg.is_8bit, cfg.algo_label()
    (True, False, 'BNB_NF4')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BnbConfig(BaseModel):
    """A bitsandbytes ``quantization_config``."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    quant_method: Literal["bitsandbytes"] | None = None
    load_in_4bit: bool | None = None
    load_in_8bit: bool | None = None
    serialized_load_in_4bit: bool | None = Field(default=None, alias="_load_in_4bit")
    serialized_load_in_8bit: bool | None = Field(default=None, alias="_load_in_8bit")
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "fp4"
    bnb_4bit_compute_dtype: str | None = None
    bnb_4bit_use_double_quant: bool = False
    bnb_4bit_quant_storage: str | None = None
    llm_int8_threshold: float | int = 6.0
    llm_int8_skip_modules: list[str] | None = None
    llm_int8_has_fp16_weight: bool = False
    llm_int8_enable_fp32_cpu_offload: bool = False

    @property
    def is_4bit(self) -> bool:
        return bool(self.load_in_4bit or self.serialized_load_in_4bit)

    @property
    def is_8bit(self) -> bool:
        return bool(self.load_in_8bit or self.serialized_load_in_8bit)

    def algo_label(self) -> str | None:
        """``BNB_NF4`` / ``BNB_FP4`` / ``BNB_INT8``, or ``None`` when neither mode is on."""
        if self.is_4bit:
            return "BNB_NF4" if self.bnb_4bit_quant_type == "nf4" else "BNB_FP4"
        if self.is_8bit:
            return "BNB_INT8"
        return None
