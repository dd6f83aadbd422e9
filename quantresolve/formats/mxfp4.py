"""Pydantic model of gpt-oss' MXFP4 ``quantization_config`` (``quant_method: mxfp4``, transformers' ``Mxfp4Config``).

The serialized config has two keys: ``quant_method`` and ``modules_to_not_convert``, a list of globs in
checkpoint space written by OpenAI's conversion script (``model.layers.*.self_attn``,
``model.layers.*.mlp.router``, ``model.embed_tokens``, ``lm_head``). Only the MoE experts are quantized;
the layout of their tensors is in :mod:`quantresolve.dispatch.codecs.mxfp4`. ``dequantize`` is a loading
option transformers does not serialize; like any unknown key it is kept (``extra="allow"``).

    >>> cfg = Mxfp4ConfigFile.model_validate({"quant_method": "mxfp4",
    ...                                       "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]})
    >>> cfg.modules_to_not_convert
    ['model.layers.*.self_attn', 'lm_head']
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Mxfp4ConfigFile(BaseModel):
    """A ``quant_method: mxfp4`` ``quantization_config``."""

    model_config = ConfigDict(extra="allow", strict=True)

    quant_method: Literal["mxfp4"]
    modules_to_not_convert: list[str] | None = None


__all__ = ["Mxfp4ConfigFile"]
