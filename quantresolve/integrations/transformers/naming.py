"""Checkpoint names → the names a transformers model builds, taken from transformers itself.

transformers 5 renames checkpoint keys while loading: each model class (and
each sub-model it contains) registers *weight renamings* in
``transformers.conversion_mapping`` — Gemma-3 checkpoints stored as
``language_model.model.*`` / ``vision_tower.vision_model.*`` load into
``model.language_model.*`` / ``model.vision_tower.*``. A quantization config
is written in the checkpoint's spelling, so resolving the model's own prefixes
needs exactly these renamings as a :class:`~quantresolve.naming.profiles.Profile`.

:func:`profile_for_model` asks transformers (``get_model_conversion_mapping`` +
``rename_source_key``, the functions ``from_pretrained`` uses) for the model
name of every checkpoint module, then writes the answers as the fewest prefix
rules that reproduce every one of them — prefix rules, because the resolver
can invert them to match ``re:`` / glob entries written in checkpoint space.
A caller's ``key_mapping`` (``from_pretrained(key_mapping=...)``: regex →
replacement) is honoured as transformers honours it.

    >>> from transformers import Gemma3Config, Gemma3ForConditionalGeneration
    >>> from accelerate import init_empty_weights
    >>> cfg = Gemma3Config(text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
    ...     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 64},
    ...     vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
    ...     "num_attention_heads": 2, "image_size": 16, "patch_size": 8})
    >>> with init_empty_weights():
    ...     model = Gemma3ForConditionalGeneration(cfg)
    >>> p = profile_for_model(model, ["language_model.model.layers.0.mlp.up_proj",
    ...                               "vision_tower.vision_model.encoder.layers.0.mlp.fc1"])
    >>> p.mapper.map_name("vision_tower.vision_model.encoder.layers.0.mlp.fc1")
    'model.vision_tower.encoder.layers.0.mlp.fc1'
    >>> p.mapper.orig_to_new_prefix["language_model.model."]
    'model.language_model.'

Weight *converters* (transformers ops that concatenate, split or transpose
tensors, e.g. merging per-expert weights) cannot apply to quantized tensors:
a checkpoint module one of them would act on is refused by name — unless it
lands inside one of quantresolve's per-expert stand-ins (``expert_containers``:
``load_quantized`` replaces a 3-D experts module with one linear per expert
projection, so transformers' *renamings* still apply to an expert's name, its
*merge* does not):

    >>> from transformers import MixtralConfig, MixtralForCausalLM
    >>> from quantresolve.integrations.transformers.expert_containers import unfuse_experts
    >>> with init_empty_weights():
    ...     mixtral = MixtralForCausalLM(MixtralConfig(hidden_size=32, intermediate_size=16, num_hidden_layers=1,
    ...         num_attention_heads=2, num_key_value_heads=1, num_local_experts=2, vocab_size=64))
    >>> containers = list(unfuse_experts(mixtral))
    >>> module_renamer(mixtral, expert_containers=containers)("model.layers.0.block_sparse_moe.experts.1.w3")
    'model.layers.0.mlp.experts.1.w3'
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from torch import nn

from quantresolve.errors import ProfileError
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.naming.profiles import Profile, load_profile

#: Suffix used to probe transformers' renamings with a module name (its rules are written for weight keys).
_PROBE = ".weight"
#: A module name no checkpoint has, used to ask whether a merged rule generalises as transformers does.
_UNSEEN = "quantresolve_unseen_module"

Renamer = Callable[[str], str]


def module_renamer(model: nn.Module, *, key_mapping: Mapping[str, str] | None = None,
                   expert_containers: Collection[str] = ()) -> Renamer:
    """``checkpoint module name → model module name`` exactly as ``from_pretrained`` renames keys.

    Raises :class:`~quantresolve.errors.ProfileError` for a module a weight converter acts on, unless
    its renamed name lies inside one of ``expert_containers`` (model modules whose experts quantresolve
    loads one by one, as stored): such a name keeps transformers' renamings only.
    """
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    transforms = get_model_conversion_mapping(model, key_mapping=dict(key_mapping) if key_mapping else None)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    meta = dict.fromkeys(model.state_dict(keep_vars=True))  # only membership is read
    prefix = getattr(model, "base_model_prefix", "") or None
    containers = tuple(sorted(c + "." for c in expert_containers))

    def rename(module: str) -> str:
        key = module + _PROBE
        renamed, converted_by = rename_source_key(key, renamings, converters, prefix, meta)
        if renamed not in meta and key in meta:  # what from_pretrained does: keep a key the model already has
            renamed, converted_by = rename_source_key(key, [], [], prefix, meta)
        if converted_by is not None and containers:
            plain, _ = rename_source_key(key, renamings, [], prefix, meta)  # the renamings alone
            if plain.startswith(containers):
                renamed, converted_by = plain, None
        if converted_by is not None:
            raise ProfileError(f"{type(model).__name__}: transformers converts the tensors of {module!r} when it "
                               f"loads them (pattern {converted_by!r}), it does not just rename them; "
                               "quantresolve loads every stored tensor as it is", field=module)
        if not renamed.endswith(_PROBE):
            raise ProfileError(f"transformers renames {key!r} to {renamed!r}, which is not a module's weight",
                               field=module)
        return renamed[: -len(_PROBE)]

    return rename


def _split(source: str, target: str) -> tuple[list[str], list[str], list[str]]:
    """(source head, target head, common dotted tail) of one renaming."""
    a, b = source.split("."), target.split(".")
    common = 0
    while common < min(len(a), len(b)) and a[len(a) - 1 - common] == b[len(b) - 1 - common]:
        common += 1
    return a[: len(a) - common], b[: len(b) - common], a[len(a) - common:]


def _prefix_rule(head: list[str], target_head: list[str], first: str | None) -> tuple[str, str]:
    """A prefix rule rewriting ``head`` (+ ``first``) into ``target_head`` (+ ``first``), with trailing dots."""
    tail = [first] if first is not None else []
    key, value = ".".join([*head, *tail]), ".".join([*target_head, *tail])
    return key + ".", (value + "." if value else "")


def _reproduces(rules: Mapping[str, str], pairs: Mapping[str, str]) -> bool:
    mapper = WeightsMapper(orig_to_new_prefix=dict(rules))
    return all(mapper.map_name(src) == dst for src, dst in pairs.items())


def prefix_rules(pairs: Mapping[str, str], oracle: Renamer | None = None) -> dict[str, str]:
    """The fewest prefix rules that map every ``source → target`` of ``pairs`` (identity pairs need none).

    Each renaming first becomes a rule over its changed head plus the first
    unchanged component (``language_model.model.layers.`` →
    ``model.language_model.layers.``). Rules sharing one head change are then
    merged into one (``language_model.model.`` → ``model.language_model.``)
    when every pair still maps exactly as before and the merge is evidenced:
    ``oracle`` (transformers' own renamer) agrees on an unseen name under that
    head, or, without an oracle, at least two renamings share the head.

        >>> prefix_rules({"language_model.model.layers.0.mlp": "model.language_model.layers.0.mlp",
        ...               "language_model.model.norm": "model.language_model.norm",
        ...               "language_model.lm_head": "lm_head", "lm_head": "lm_head"})
        {'language_model.lm_head.': 'lm_head.', 'language_model.model.': 'model.language_model.'}
    """
    moved = {s: t for s, t in pairs.items() if s != t}
    specific: dict[str, str] = {}
    heads: dict[tuple[str, str], list[str]] = {}
    for source, target in sorted(moved.items()):
        head, target_head, common = _split(source, target)
        key, value = _prefix_rule(head, target_head, common[0] if common else None)
        if specific.get(key, value) != value:
            raise ProfileError(f"two renamings disagree on prefix {key!r}: {specific[key]!r} and {value!r}")
        specific[key] = value
        if head:
            heads.setdefault(_prefix_rule(head, target_head, None), []).append(key)
    rules = dict(specific)
    for (key, value), members in sorted(heads.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        trial = {k: v for k, v in rules.items() if k not in members}
        trial[key] = value
        if not _reproduces(trial, pairs):
            continue
        probe = key + _UNSEEN
        if oracle is not None:
            evidenced = WeightsMapper(orig_to_new_prefix=trial).map_name(probe) == oracle(probe)
        else:
            evidenced = len(members) >= 2
        if evidenced:
            rules = trial
    if not _reproduces(rules, pairs):
        wrong = sorted(s for s, t in pairs.items() if WeightsMapper(orig_to_new_prefix=rules).map_name(s) != t)
        raise ProfileError(f"transformers' renamings cannot be written as prefix rules; first misses: {wrong[:3]}")
    ordered = dict(sorted(rules.items()))  # rules chain in order: keep the sorted order only if it is the same map
    return ordered if _reproduces(ordered, pairs) else rules


def profile_for_model(model: nn.Module, checkpoint_modules: Iterable[str], *,
                      key_mapping: Mapping[str, str] | None = None,
                      base: Profile | str | Path | None = None,
                      expert_containers: Collection[str] = ()) -> Profile:
    """A profile mapping ``checkpoint_modules`` to the names ``model`` builds (transformers' own renamings).

    ``base`` (default: the unfused ``transformers`` profile) supplies everything
    but the mapper: packed modules, expert containers. ``expert_containers``: see :func:`module_renamer`.
    """
    rename = module_renamer(model, key_mapping=key_mapping, expert_containers=expert_containers)
    pairs = {name: rename(name) for name in checkpoint_modules}
    rules = prefix_rules(pairs, oracle=rename)
    profile = load_profile(base)
    return replace(profile, name=f"transformers:{type(model).__name__}",
                   mapper=WeightsMapper(orig_to_new_prefix=rules),
                   architectures=(type(model).__name__,),
                   description=f"checkpoint → {type(model).__name__} names from transformers' conversion mapping")


def profile_for_checkpoint(path: str | Path, model: nn.Module, *,
                           key_mapping: Mapping[str, str] | None = None,
                           base: Profile | str | Path | None = None) -> Profile:
    """:func:`profile_for_model` over the module names the checkpoint at ``path`` stores (headers only)."""
    from quantresolve.checkpoint import build_inventory, read_checkpoint

    modules = build_inventory(read_checkpoint(Path(path))).modules
    return profile_for_model(model, sorted(modules), key_mapping=key_mapping, base=base)


__all__ = ["module_renamer", "prefix_rules", "profile_for_checkpoint", "profile_for_model"]
