"""Pydantic model of an AWQ ``quantization_config`` (AutoAWQ, transformers' ``AwqConfig``, GPTQModel).

AutoAWQ's own ``quant_config.json`` spells the fields ``w_bit`` / ``q_group_size`` and the version in
capitals (``"GEMM"``); transformers writes ``bits`` / ``group_size`` and lower case, plus runtime
options (``do_fuse``, ``fuse_max_seq_len``, ``modules_to_fuse``, ``exllama_config``) that do not change
the tensors. Both spellings are accepted; values are checked by
:mod:`quantresolve.formats.normalize_awq`.

    >>> cfg = AwqConfig.model_validate({"zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM"})
    >>> cfg.bit_width(), cfg.group(), cfg.zero_point, cfg.version
    (4, 128, True, 'GEMM')
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class AwqConfig(BaseModel):
    """An AWQ ``quantization_config``. Defaults are transformers' ``AwqConfig`` ones (4 bits, group 128,
    zero point, ``gemm``)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    quant_method: str | None = None
    bits: int | None = None
    w_bit: int | None = None
    group_size: int | None = None
    q_group_size: int | None = None
    zero_point: bool = True
    version: str = "gemm"
    backend: str | None = None
    modules_to_not_convert: list[str] | None = None
    do_fuse: bool | None = None
    fuse_max_seq_len: int | None = None
    modules_to_fuse: dict[str, Any] | None = None
    exllama_config: dict[str, Any] | None = None

    def bit_width(self) -> int:
        """``bits``, else AutoAWQ's ``w_bit``, else 4."""
        return self.bits if self.bits is not None else self.w_bit if self.w_bit is not None else 4

    def group(self) -> int:
        """``group_size``, else AutoAWQ's ``q_group_size``, else 128."""
        return self.group_size if self.group_size is not None else (
            self.q_group_size if self.q_group_size is not None else 128)


__all__ = ["AwqConfig"]
