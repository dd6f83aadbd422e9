"""Checkpoint tensors the model class itself declares it does not load (``_keys_to_ignore_on_load_unexpected``).

Some published checkpoints carry tensors of modules transformers never builds,
and say so in the model class: DeepSeek-V3 ships its multi-token-prediction
layer as ``model.layers.61.*`` and GLM-5 as ``model.layers.78.*``; Nemotron-H
ships ``mtp.*``. ``from_pretrained`` skips them without a warning; every other
tensor nothing loads is an error here. Patterns are searched (``re.search``,
as transformers does) in the stored tensor names, which for these layers are
the model's names too.

    >>> from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
    >>> rx = ignored_on_load(DeepseekV3ForCausalLM)
    >>> bool(rx.search("model.layers.61.eh_proj.weight")), bool(rx.search("model.layers.6.mlp.gate.weight"))
    (True, False)
    >>> split_ignored(["model.layers.61.enorm.weight", "lm_head.extra"], rx)
    (['lm_head.extra'], ['model.layers.61.enorm.weight'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def ignored_on_load(model: object) -> re.Pattern[str] | None:
    """One regex of the patterns ``model`` (class or instance) declares unexpected-but-fine, or None."""
    patterns = sorted(getattr(model, "_keys_to_ignore_on_load_unexpected", None) or ())
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def split_ignored(tensors: Iterable[str], rx: re.Pattern[str] | None) -> tuple[list[str], list[str]]:
    """``(still unconsumed, ignored as the model class declares)`` of ``tensors``, in order."""
    kept, ignored = [], []
    for name in tensors:
        (ignored if rx is not None and rx.search(name) else kept).append(name)
    return kept, ignored


__all__ = ["ignored_on_load", "split_ignored"]
