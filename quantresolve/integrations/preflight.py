"""Sizes from ``config.json`` and the command line, checked against the checkpoint and the machine first.

transformers believes ``config.json``: ``num_hidden_layers: 10000000`` builds ten million layers
(on the meta device that is still minutes of Python objects), and ``--max-new-tokens 1000000000``
grows a KV cache until memory runs out. Both are checked before anything is built or allocated,
torch-free (so ``run`` refuses them before paying for torch's import):

- ``--dtype`` names a floating dtype, the model's sizes (``hidden_size``, ...) are positive integers,
  ``architectures`` is a list of class names, every layer count in ``config.json``
  (``num_hidden_layers`` and its spellings, in sub-configs too) an integer no larger than the
  deepest layer stack the checkpoint's own tensor names show (``model.layers.N``);
- the checkpoint's tensor bytes fit the memory available now (``MemAvailable``);
- prompt plus new tokens fit the model's context (``max_position_embeddings``), and the KV
  cache they need fits the memory available.

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
from pathlib import Path
from typing import Any

from quantresolve.checkpoint import read_checkpoint
from quantresolve.errors import ConfigError, LoadError
from quantresolve.formats.loader import CONFIG_FILE
from quantresolve.util.containment import Confinement
from quantresolve.util.jsonfile import read_json_in
from quantresolve.util.memory import check_fits_in_memory

#: ``config.json`` keys that count a stack's layers.
LAYER_KEYS = frozenset({"num_hidden_layers", "num_layers", "n_layer", "n_layers"})
#: Sub-configs that hold the language model's sizes in multimodal ``config.json`` files.
TEXT_CONFIGS = ("text_config", "llm_config", "language_config")
#: Bytes per element of the compute dtypes ``run`` takes (bfloat16 when nothing says).
DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8, "double": 8}
#: Sizes of the language model that must be positive integers when ``config.json`` gives them.
SIZE_KEYS = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size",
             "head_dim", "max_position_embeddings")
#: A numbered layer in a tensor name: ``...layers.N.`` (also ``h.N``, ``blocks.N``, ``layer.N``).
_NUMBERED = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\.")


def read_config_json(root: Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint directory as a dict (strict reader, inside the checkpoint only)."""
    box = Confinement.of(root, error=ConfigError)
    if not box.present(CONFIG_FILE):
        raise LoadError("no config.json: cannot build the architecture", file=str(root))
    data = read_json_in(box, CONFIG_FILE)
    if not isinstance(data, dict):
        raise LoadError(f"expected a JSON object, got {type(data).__name__}", file=CONFIG_FILE)
    return data


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


def check_architectures(config: Mapping[str, Any]) -> None:
    archs = config.get("architectures")
    if archs is not None and (not isinstance(archs, list) or not all(isinstance(a, str) for a in archs)):
        raise ConfigError(f'expected a list of model class names, e.g. ["LlamaForCausalLM"], got {archs!r:.60}',
                          file=CONFIG_FILE, field="architectures")


def _text(config: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    for key in TEXT_CONFIGS:
        sub = config.get(key)
        if isinstance(sub, Mapping) and "num_hidden_layers" in sub:
            return sub, f"{key}."
    return config, ""


def check_sizes(config: Mapping[str, Any]) -> None:
    """The language model's sizes (:data:`SIZE_KEYS`) are positive integers where given."""
    text, where = _text(config)
    for key in SIZE_KEYS:
        value = text.get(key)
        if value is not None and (type(value) is not int or value < 1):
            raise ConfigError(f"expected a positive integer, got {value!r:.40}", file=CONFIG_FILE, field=where + key)


def check_dtype(dtype: str | None) -> None:
    """``--dtype`` names a floating compute dtype."""
    if dtype is not None and dtype.removeprefix("torch.") not in DTYPE_BYTES:
        raise ConfigError(f"{dtype!r} is not a compute dtype; accepted: bfloat16, float16, float32, float64",
                          field="--dtype")


def _int(value: Any) -> int | None:
    return value if type(value) is int and value > 0 else None


def check_generation(config: Mapping[str, Any], prompt_len: int, new_tokens: int, dtype: str | None) -> None:
    """Prompt + new tokens within the model's context, and their KV cache within available memory."""
    text, where = _text(config)
    total = prompt_len + new_tokens
    context = _int(text.get("max_position_embeddings"))
    if context is not None and total > context:
        raise ConfigError(f"{prompt_len} prompt + {new_tokens} new tokens exceed the model's context of {context} "
                          f"positions ({CONFIG_FILE} {where}max_position_embeddings); accepted: 1 to "
                          f"{max(context - prompt_len, 0)}", field="--max-new-tokens")
    layers, heads = _int(text.get("num_hidden_layers")), _int(text.get("num_attention_heads"))
    kv_heads = _int(text.get("num_key_value_heads")) or heads
    head_dim = _int(text.get("head_dim"))
    hidden = _int(text.get("hidden_size"))
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    name = str(dtype or text.get("dtype") or text.get("torch_dtype") or config.get("dtype") or "bfloat16")
    if layers and kv_heads and head_dim:
        kv = 2 * layers * kv_heads * head_dim * total * DTYPE_BYTES.get(name.removeprefix("torch."), 2)
        check_fits_in_memory(kv, what=f"the KV cache of {total} positions would", field="--max-new-tokens")


def preflight_run(checkpoint: str | Path, prompt_len: int, new_tokens: int, dtype: str | None) -> None:
    """Everything ``run`` can refuse from ``config.json`` and the tensor headers, before torch is imported."""
    root = Path(checkpoint)
    if not root.is_dir():
        raise ConfigError("not a checkpoint directory", file=str(checkpoint))
    config = read_config_json(root)
    check_dtype(dtype)
    check_architectures(config)
    check_sizes(config)
    catalog = read_checkpoint(root)
    check_layer_counts(config, stack_depth(catalog.tensors))
    check_fits_in_memory(catalog.total_bytes, what="the checkpoint's tensors", field=None, file=str(root))
    check_generation(config, prompt_len, new_tokens, dtype)


__all__ = ["LAYER_KEYS", "check_architectures", "check_generation",
           "check_layer_counts", "check_sizes", "preflight_run", "read_config_json", "stack_depth"]
