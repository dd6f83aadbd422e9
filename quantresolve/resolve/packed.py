"""Declared packed (fused) modules: ``qkv_proj → [q_proj, k_proj, v_proj]``.

Only the profile's declared mapping counts — fused layers are never guessed
from similar-looking names. Keys may span several components
(``linear_proj.merged_proj``); vLLM only checks the last component, so such
keys never resolve there. Identity entries (``qkv_proj: [qkv_proj]``) mean the
checkpoint is already fused: the module is looked up as itself.

    >>> shard_names("model.layers.0.self_attn.qkv_proj", {"qkv_proj": ("q_proj", "k_proj", "v_proj")})
    ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.v_proj']
    >>> shard_names("model.layers.0.mlp.linear_proj.merged_proj",
    ...             {"linear_proj.merged_proj": ("gate_proj", "up_proj")})
    ['model.layers.0.mlp.linear_proj.gate_proj', 'model.layers.0.mlp.linear_proj.up_proj']
    >>> shard_names("model.layers.0.self_attn.qkv_proj", {"qkv_proj": ("qkv_proj",)}) is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def shard_names(prefix: str, packed: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The shard prefixes of a fused module, or ``None`` when ``prefix`` is not a declared fused module.

    The longest matching key wins. A shard name without a dot replaces the
    key's last component; a dotted shard name replaces the whole key.
    """
    best: str | None = None
    for key in packed:
        if (prefix == key or prefix.endswith("." + key)) and (best is None or len(key) > len(best)):
            best = key
    if best is None:
        return None
    shards = list(packed[best])
    if shards == [best] or shards == [best.rsplit(".", 1)[-1]]:
        return None  # identity: already fused in the checkpoint
    base = prefix[: len(prefix) - len(best)]
    key_parent = best.rsplit(".", 1)[0] + "." if "." in best else ""
    return [base + (s if "." in s else key_parent + s) for s in shards]
