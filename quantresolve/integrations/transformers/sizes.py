"""Sizes from ``config.json`` and the command line, checked against the checkpoint and the machine first.

transformers believes ``config.json``: ``num_hidden_layers: 10000000`` builds ten million layers
(on the meta device that is still minutes of Python objects), and ``--max-new-tokens 1000000000``
grows a KV cache until memory runs out. Both are checked before anything is allocated:

- every layer count in ``config.json`` (``num_hidden_layers`` and its spellings, in sub-configs
  too) against the layer stacks the checkpoint's own tensor names show (``model.layers.N``);
- the checkpoint's tensor bytes against the memory available now (``MemAvailable``);
- prompt plus new tokens against the model's context (``max_position_embeddings``), and the KV
  cache they need against the memory available.

Each refusal names the file or option, the field and what would be accepted.

    >>> stack_depth(["model.layers.0.mlp.up_proj.weight", "model.layers.11.mlp.up_proj.weight", "lm_head.weight"])
    12
    >>> check_layer_counts({"num_hidden_layers": 10000000}, 12)
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: config.json: num_hidden_layers: 10000000 layers, but the checkpoint's tensors hold at most 12; accepted: 1 to 12
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from quantresolve.errors import ConfigError, LoadError
from quantresolve.formats.loader import CONFIG_FILE
from quantresolve.integrations.transformers.memory import available_memory

#: ``config.json`` keys that count a stack's layers.
LAYER_KEYS = frozenset({"num_hidden_layers", "num_layers", "n_layer", "n_layers"})
#: A numbered layer in a tensor name: ``...layers.N.`` (also ``h.N``, ``blocks.N``, ``layer.N``).
_NUMBERED = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\.")
GIB = 1 << 30


def stack_depth(names: Iterable[str]) -> int | None:
    """The most layers any numbered stack of the checkpoint holds (largest index + 1), ``None`` without stacks."""
    deepest = -1
    for name in names:
        for m in _NUMBERED.finditer(name):
            deepest = max(deepest, int(m.group(1)))
    return deepest + 1 if deepest >= 0 else None


def _layer_counts(data: Mapping[str, Any], path: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key in LAYER_KEYS:
            yield where, value
        elif isinstance(value, Mapping):
            yield from _layer_counts(value, where)


def check_layer_counts(config: Mapping[str, Any], depth: int | None) -> None:
    """Every layer count of ``config.json`` is an integer no larger than the checkpoint's deepest stack."""
    for where, value in _layer_counts(config):
        if type(value) is not int or value < 0:
            raise ConfigError(f"expected a layer count (a non-negative integer), got {value!r:.40}",
                              file=CONFIG_FILE, field=where)
        if depth is not None and value > depth:
            raise ConfigError(f"{value} layers, but the checkpoint's tensors hold at most {depth}; "
                              f"accepted: 1 to {depth}", file=CONFIG_FILE, field=where)


def check_fits_in_memory(nbytes: int | None, *, what: str, field: str | None, file: str | None = None) -> None:
    """Refuse to allocate ``nbytes`` when the machine has less available right now."""
    free = available_memory()
    if nbytes is not None and free is not None and nbytes > free:
        raise LoadError(f"{what} need {nbytes / GIB:.1f} GiB, but {free / GIB:.1f} GiB of memory is available",
                        file=file, field=field)


def check_generation(config: Any, prompt_len: int, new_tokens: int, dtype: torch.dtype) -> None:
    """Prompt + new tokens within the model's context, and their KV cache within available memory."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    total = prompt_len + new_tokens
    context = getattr(text, "max_position_embeddings", None)
    if type(context) is int and context > 0 and total > context:
        raise ConfigError(f"{prompt_len} prompt + {new_tokens} new tokens exceed the model's context of {context} "
                          f"positions ({CONFIG_FILE} max_position_embeddings); accepted: 1 to "
                          f"{max(context - prompt_len, 0)}", field="--max-new-tokens")
    layers = getattr(text, "num_hidden_layers", None)
    heads = getattr(text, "num_key_value_heads", None) or getattr(text, "num_attention_heads", None)
    head_dim = getattr(text, "head_dim", None)
    hidden = getattr(text, "hidden_size", None)
    if head_dim is None and isinstance(hidden, int) and isinstance(heads, int) and heads:
        head_dim = hidden // (getattr(text, "num_attention_heads", None) or heads)
    if all(type(v) is int for v in (layers, heads, head_dim)):
        kv = 2 * layers * heads * head_dim * total * torch.empty((), dtype=dtype).element_size()  # type: ignore[operator]
        check_fits_in_memory(kv, what=f"the KV cache of {total} positions would", field="--max-new-tokens")


__all__ = ["LAYER_KEYS", "check_fits_in_memory", "check_generation", "check_layer_counts", "stack_depth"]
