"""The parameter-suffix registry: which trailing name parts are parameters, not modules.

Each producer stores a linear layer as several tensors sharing a module prefix
(field-notes §5). Stripping the longest registered suffix leaves the module
name. A rule's ``owner`` says whose tensor it is: ``"module"`` for the layer's
own parameters, ``"attention"`` for ModelOpt KV-cache scales, which are written
*under* a projection (``<attn>.k_proj.k_scale``) but belong to the attention's
KV cache, so the module is the attention itself::

    >>> split_parameter("model.layers.0.self_attn.q_proj.weight_scale_2")
    ('model.layers.0.self_attn.q_proj', 'weight_scale_2', True)
    >>> split_parameter("model.layers.0.self_attn.k_proj.k_scale")
    ('model.layers.0.self_attn', 'k_scale', True)
    >>> split_parameter("m.ff_out.weight.quant_state.bitsandbytes__nf4")
    ('m.ff_out', 'weight.quant_state.bitsandbytes__nf4', True)
    >>> split_parameter("model.layers.0.mlp.down_proj.qzeros")
    ('model.layers.0.mlp.down_proj', 'qzeros', True)
    >>> split_parameter("model.layers.0.mixer.A_log")
    ('model.layers.0.mixer', 'A_log', False)
    >>> split_parameter("model.layers.0.mlp.experts.gate_up_proj_blocks")
    ('model.layers.0.mlp.experts', 'gate_up_proj_blocks', True)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The projections a fused experts module stores as ``<proj>`` / ``<proj>_blocks`` / ``_scales`` / ``_bias``.
FUSED_EXPERT_PROJECTIONS = ("gate_up_proj", "down_proj", "gate_proj", "up_proj")


@dataclass(frozen=True, slots=True)
class SuffixRule:
    """A registered parameter suffix.

    A ``suffix`` ending in ``*`` matches any last component starting with the text before
    the ``*`` (``weight.quant_state.bitsandbytes__*`` matches ``...quant_state.bitsandbytes__nf4``).
    """

    suffix: str
    role: str
    producers: tuple[str, ...]
    owner: str = "module"
    #: The parameter name to record, when it differs from the matched suffix (KV scales).
    param: str | None = None


_ALL = ("modelopt", "compressed-tensors", "bitsandbytes", "gptq", "awq", "fp8", "mxfp4", "dense")
_MO = ("modelopt",)
_CT = ("compressed-tensors",)
_BNB = ("bitsandbytes",)
_INT_PACKED = ("gptq", "awq")
_FP8 = ("fp8",)
_MX = ("mxfp4",)

#: Every parameter suffix field-notes §5 lists (and §7's GPTQ / AWQ ones), plus bias and plain weights.
SUFFIX_RULES: tuple[SuffixRule, ...] = (
    SuffixRule("weight", "weight", _ALL),
    SuffixRule("bias", "bias", _ALL),
    SuffixRule("weight_packed", "weight", _CT),
    SuffixRule("weight_scale", "weight_scale", ("modelopt", "compressed-tensors", "fp8")),
    # HF fine-grained FP8: the block (or 0-d) weight scale — a multiplier despite its name — and the
    # static activation scale of transformers' FP8Linear (AutoFP8 writes weight_scale / input_scale).
    SuffixRule("weight_scale_inv", "weight_scale", _FP8),
    SuffixRule("activation_scale", "input_scale", _FP8),
    SuffixRule("weight_scale_2", "weight_scale", _MO),
    SuffixRule("weight_global_scale", "weight_scale", _CT),
    SuffixRule("weight_zero_point", "zero_point", _CT),
    SuffixRule("weight_shape", "shape", _CT),
    SuffixRule("weight_g_idx", "g_idx", _CT),
    SuffixRule("input_scale", "input_scale", ("modelopt", "compressed-tensors", "fp8")),
    SuffixRule("input_global_scale", "input_scale", _CT),
    SuffixRule("input_zero_point", "input_scale", _CT),
    SuffixRule("output_scale", "output_scale", ("modelopt", "compressed-tensors")),
    SuffixRule("pre_quant_scale", "pre_quant_scale", _MO),
    SuffixRule("k_scale", "kv_scale", ("modelopt", "compressed-tensors"), owner="attention"),
    SuffixRule("v_scale", "kv_scale", ("modelopt", "compressed-tensors"), owner="attention"),
    SuffixRule("k_proj.k_scale", "kv_scale", _MO, owner="attention", param="k_scale"),
    SuffixRule("v_proj.v_scale", "kv_scale", _MO, owner="attention", param="v_scale"),
    SuffixRule("SCB", "weight_scale", _BNB),
    SuffixRule("weight_format", "bnb_state", _BNB),
    SuffixRule("weight.absmax", "bnb_state", _BNB),
    SuffixRule("weight.quant_map", "bnb_state", _BNB),
    SuffixRule("weight.nested_absmax", "bnb_state", _BNB),
    SuffixRule("weight.nested_quant_map", "bnb_state", _BNB),
    SuffixRule("weight.quant_state.bitsandbytes__*", "bnb_state", _BNB),
    SuffixRule("qweight", "weight", _INT_PACKED),
    SuffixRule("qzeros", "zero_point", _INT_PACKED),
    SuffixRule("scales", "weight_scale", _INT_PACKED),
    SuffixRule("g_idx", "g_idx", ("gptq",)),
    # gpt-oss: every expert of a layer in fused tensors on the experts module itself
    # (``mlp.experts.gate_up_proj_blocks``); the unquantized twins ``gate_up_proj`` / ``down_proj`` are
    # claimed by the inventory's fused-experts layout, since those names are module names elsewhere.
    *(SuffixRule(f"{proj}_{part}", role, _MX) for proj in FUSED_EXPERT_PROJECTIONS
      for part, role in (("blocks", "weight"), ("scales", "weight_scale"), ("bias", "bias"))),
)

#: Parameter name → role (wildcard rules contribute their prefix).
ROLE_OF: dict[str, str] = {(r.param or r.suffix).rstrip("*"): r.role for r in SUFFIX_RULES}


def _build_lookup() -> tuple[dict[str, tuple[SuffixRule, ...]], tuple[SuffixRule, ...]]:
    by_last: dict[str, list[SuffixRule]] = {}
    wildcards: list[SuffixRule] = []
    for rule in SUFFIX_RULES:
        if rule.suffix.endswith("*"):
            wildcards.append(rule)
        else:
            by_last.setdefault(rule.suffix.rpartition(".")[2], []).append(rule)
    # Longest match first: more components before fewer.
    ordered = {k: tuple(sorted(v, key=lambda r: -r.suffix.count("."))) for k, v in by_last.items()}
    return ordered, tuple(sorted(wildcards, key=lambda r: -r.suffix.count(".")))


_BY_LAST, _WILDCARDS = _build_lookup()

#: One-component suffixes that no longer rule ends with: a name ending in one splits at its last dot.
SIMPLE_SUFFIXES: frozenset[str] = frozenset(
    last for last, rules in _BY_LAST.items() if len(rules) == 1 and rules[0].suffix == last
)


def split_parameter(name: str) -> tuple[str, str, bool]:
    """Split a tensor name into ``(module, parameter, known)``.

    ``known`` is False when no rule matched; then the last component is taken
    as the parameter (norm/Mamba/router extras such as ``A_log``,
    ``e_score_correction_bias``). A bare name without dots is its own module
    with an empty parameter.
    """
    head, _, last = name.rpartition(".")
    if not head:
        return name, "", False  # never an empty module name (field-notes §4 class 9)
    rules = _BY_LAST.get(last)
    if rules is not None:
        for rule in rules:
            if rule.suffix == last:
                return head, rule.param or last, True
            tail = "." + rule.suffix
            if name.endswith(tail) and len(name) > len(tail):
                return name[: -len(tail)], rule.param or rule.suffix, True
    for rule in _WILDCARDS:
        stem, _, start = rule.suffix[:-1].rpartition(".")
        if last.startswith(start) and head.endswith("." + stem):
            return head[: -len(stem)].rstrip("."), f"{stem}.{last}", True
    return head, last, False
