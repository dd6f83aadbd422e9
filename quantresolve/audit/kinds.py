"""Which resolver kind a model-space module is, from its name and its tensors.

Rules run in registry order; the first that answers wins. Modules that are
neither linear-like nor a KV-cache owner (norms, Mamba ``A_log``, convolutions)
are ``"other"``: listed in the report, never resolved::

    >>> from quantresolve.checkpoint import Evidence
    >>> unit_kind("lm_head", [Evidence("dense", weight_shape=(256, 128))])
    'lm_head'
    >>> unit_kind("model.layers.0.input_layernorm", [Evidence("dense", weight_shape=(128,))])
    'other'
    >>> unit_kind("model.layers.0.self_attn", [Evidence("no-weight", has_kv_scales=True)])
    'attention'
    >>> unit_kind("model.embed_tokens", [Evidence("dense", weight_shape=(256, 128))])
    'embedding'
    >>> unit_kind("vit.pre_ln", [Evidence("dense", confidence="names-only")])
    'other'
    >>> unit_kind("visual.patch_embed.proj", [Evidence("dense", confidence="names-only")])
    'other'
    >>> unit_kind("model.layers.0.input_layernorm", [Evidence("unknown", weight_shape=(128,), confidence="config-only")])
    'other'
    >>> unit_kind("model.layers.0.mlp.down_proj", [Evidence("nvfp4", weight_shape=(128, 64))])
    'linear'
    >>> unit_kind("model.layers.0.mlp.experts", [Evidence("mxfp4", fused_experts=True)])
    'moe'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from quantresolve.checkpoint import Evidence

#: Last name components that are token / position embeddings.
EMBEDDING_NAMES = frozenset({"embed_tokens", "wte", "wpe", "word_embeddings", "embed_in",
                             "tok_embeddings", "embedding", "embeddings", "position_embeddings",
                             "position_embedding", "token_embedding", "embed_positions"})

#: Names-only evidence cannot see a weight's rank; these last components are convolutions
#: (vision patch embeddings, audio / Mamba conv layers), never linears.
CONV_NAMES = re.compile(r"conv|^patch_embedding$|^patch_embed$")

#: Last name components that are the LM head when they sit outside the numbered layers
#: (``ff_out``: Molmo's head; ``head``: DeepSeek MTP ``shared_head.head``, DeepSeek-V4).
HEAD_NAMES = frozenset({"lm_head", "head", "ff_out", "embed_out", "output_layer"})

_NUMBERED = re.compile(r"\.\d+(\.|$)")
_NORM = re.compile(r"norm|(^|_)ln(_|\d|$)", re.IGNORECASE)

Rule = Callable[[str, str, Sequence[Evidence]], "str | None"]


def _fused_experts(name: str, last: str, ev: Sequence[Evidence]) -> str | None:
    return "moe" if any(e.fused_experts for e in ev) else None


def _attention(name: str, last: str, ev: Sequence[Evidence]) -> str | None:
    return "attention" if ev and all(e.kind == "no-weight" for e in ev) and any(
        e.has_kv_scales for e in ev) else None


def _lm_head(name: str, last: str, ev: Sequence[Evidence]) -> str | None:
    if last == "lm_head" or (last in HEAD_NAMES and not _NUMBERED.search(name)):
        return "lm_head"
    if last == "head" and name.endswith("shared_head.head"):
        return "lm_head"
    return None


def _embedding(name: str, last: str, ev: Sequence[Evidence]) -> str | None:
    return "embedding" if last in EMBEDDING_NAMES else None


def _other_by_tensors(name: str, last: str, ev: Sequence[Evidence]) -> str | None:
    for e in ev:
        if e.kind == "no-weight":
            return "other"
        if (e.kind == "dense" or e.confidence == "config-only") and e.weight_shape is not None \
                and len(e.weight_shape) != 2:
            return "other"
    if any(e.confidence == "names-only" for e in ev) and (
            _NORM.search(last) or CONV_NAMES.search(last) or name.endswith("patch_embed.proj")):
        return "other"
    return None


#: Ordered rules (first answer wins); anything unanswered is ``"linear"``.
KIND_RULES: tuple[tuple[str, Rule], ...] = (
    ("fused experts tensors", _fused_experts),
    ("kv-cache owner", _attention),
    ("lm head name", _lm_head),
    ("embedding name", _embedding),
    ("tensor rank / no weight", _other_by_tensors),
)


def unit_kind(name: str, evidence: Sequence[Evidence]) -> str:
    """``moe`` (an experts module with fused tensors) | ``linear`` | ``attention`` | ``embedding`` | ``lm_head`` |
    ``other`` for a unit the profile does not group as experts."""
    last = name.rsplit(".", 1)[-1]
    for _label, rule in KIND_RULES:
        answer = rule(name, last, evidence)
        if answer is not None:
            return answer
    return "linear"
