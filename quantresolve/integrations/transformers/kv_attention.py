"""FP8 KV cache in transformers attention: keys and values pass through the checkpoint's FP8 scales.

An engine with an FP8 KV cache stores ``fp8(k / k_scale)`` and reads back
``· k_scale`` (same for v), after RoPE. transformers keeps its cache in the
compute dtype, so the same rounding is applied where keys and values reach the
attention kernel: the attention function registered here (one per base
implementation, e.g. ``quantresolve_fp8kv_sdpa``) rounds the key/value states of
every attention module that carries :class:`~quantresolve.dispatch.KVCacheScales`
(:meth:`~quantresolve.dispatch.KVCacheScales.round_trip`: the producer's own FP8
arithmetic, as its quantized attention rounds the post-RoPE keys and the values)
and then calls the base implementation unchanged. Re-quantizing cached values
that are already on the FP8 grid returns them exactly, so applying it to the
whole cache at every step equals quantizing each entry once when stored.

    >>> from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    >>> register("sdpa"), f"{PREFIX}sdpa" in ALL_ATTENTION_FUNCTIONS
    ('quantresolve_fp8kv_sdpa', True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from quantresolve.errors import LoadError
from quantresolve.integrations.transformers.install import KV_ATTR

PREFIX = "quantresolve_fp8kv_"


def _base_function(name: str, module: nn.Module) -> Callable[..., Any]:
    if name == "eager":  # each model file defines its own eager function
        return importlib.import_module(type(module).__module__).eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[name]


def _wrapper(base: str) -> Callable[..., Any]:
    def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None, **kwargs: Any) -> Any:
        scales = module.__dict__.get(KV_ATTR)
        if scales is not None:
            key, value = scales.round_trip(key, value)
        return _base_function(base, module)(module, query, key, value, attention_mask, **kwargs)

    attention.__name__ = f"{PREFIX}{base}"
    return attention


def register(base: str) -> str:
    """Register (once) the FP8-KV wrapper of attention implementation ``base``; return its name."""
    name = f"{PREFIX}{base}"
    if name not in ALL_ATTENTION_FUNCTIONS:
        AttentionInterface.register(name, _wrapper(base))
    if name not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])
    return name


def apply_fp8_kv(model: PreTrainedModel) -> str:
    """Switch ``model`` to the FP8-KV wrapper of its current attention implementation."""
    base = model.config._attn_implementation or "eager"
    if base.startswith(PREFIX):
        return base
    if base != "eager" and (base not in ALL_ATTENTION_FUNCTIONS or base not in ALL_MASK_ATTENTION_FUNCTIONS):
        raise LoadError(f"cannot apply FP8 KV-cache scales under attention implementation {base!r}",
                        field="attn_implementation")
    name = register(base)
    model.config._attn_implementation = name
    return name
