"""Wrapper-prefix candidates: the same module spelled under another wrapper order.

VLM checkpoints and engines disagree on wrapper order (``model.language_model.X``
vs ``language_model.model.X``) and on where the LM head lives (``lm_head`` vs
``language_model.lm_head``). These are structural aliases of **the same
module**, never siblings. Each generator is registered in
:data:`CANDIDATE_RULES` and returns alternatives in a fixed order.

    >>> wrapper_candidates("language_model.model.layers.3.self_attn.qkv_proj")
    ['model.language_model.layers.3.self_attn.qkv_proj']
    >>> wrapper_candidates("language_model.lm_head")
    ['lm_head']
    >>> wrapper_candidates("lm_head")
    ['language_model.lm_head', 'model.language_model.lm_head']
"""

from __future__ import annotations

from collections.abc import Callable

_LM = "language_model.model."
_ML = "model.language_model."


def _swap_language_model(prefix: str) -> list[str]:
    if prefix.startswith(_LM):
        return [_ML + prefix[len(_LM):]]
    if prefix.startswith(_ML):
        return [_LM + prefix[len(_ML):]]
    return []


def _lm_head(prefix: str) -> list[str]:
    if prefix == "lm_head":
        return ["language_model.lm_head", "model.language_model.lm_head"]
    if prefix.endswith(".lm_head"):
        return ["lm_head"]
    return []


#: name → generator; applied in this order.
CANDIDATE_RULES: dict[str, Callable[[str], list[str]]] = {
    "language-model-wrapper-order": _swap_language_model,
    "lm-head-nesting": _lm_head,
}


def wrapper_candidates(prefix: str) -> list[str]:
    """Alternatives of ``prefix`` (excluding itself), deduplicated, in rule order."""
    out: list[str] = []
    for rule in CANDIDATE_RULES.values():
        for cand in rule(prefix):
            if cand != prefix and cand not in out:
                out.append(cand)
    return out
