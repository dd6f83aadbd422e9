"""Property tests: mapper idempotence, order independence, glob exclusion under renaming mappers."""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantresolve import QuantResolveError, load_config
from quantresolve.checkpoint import split_parameter
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.naming.profiles import builtin_profiles, load_profile
from quantresolve.resolve.resolver import Resolver

FAMILIES = Path(__file__).resolve().parents[2] / "fixtures" / "families"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def family_names() -> tuple[str, ...]:
    """Checkpoint-space module names (index) and model-space names (modules.json) of every family fixture."""
    names: set[str] = set()
    for folder in sorted(p for p in FAMILIES.iterdir() if p.is_dir() and not p.name.startswith("_")):
        index = folder / "checkpoint" / "model.safetensors.index.json"
        if index.is_file():
            names.update(split_parameter(t)[0] for t in json.loads(index.read_text())["weight_map"])
        modules = folder / "modules.json"
        if modules.is_file():
            names.update(m["name"] for m in json.loads(modules.read_text()))
    return tuple(sorted(names))


COMPONENT = st.sampled_from(["model", "language_model", "visual", "vision_tower", "backbone", "layers", "0", "1",
                             "12", "self_attn", "mlp", "experts", "q_proj", "qkv_proj", "lm_head", "embeddings",
                             "encoder", "vision_model", "mm_projector", "proj", "linear", "mixer", "model.visual"])
RANDOM_NAME = st.lists(COMPONENT, min_size=1, max_size=7).map(".".join)
NAME = st.one_of(st.sampled_from(family_names()), RANDOM_NAME) if family_names() else RANDOM_NAME


@FAST
@given(profile=st.sampled_from(builtin_profiles()), name=NAME)
def test_mapper_is_idempotent(profile: str, name: str) -> None:
    mapper = load_profile(profile).mapper
    once = mapper.map_name(name)
    if once is not None:
        assert mapper.map_name(once) == once, (profile, name, once)


def test_mapper_idempotent_on_every_family_name() -> None:
    """Exhaustive companion of the property: every fixture name through every built-in profile."""
    names = family_names()
    assert names
    for profile in builtin_profiles():
        mapper = load_profile(profile).mapper
        for name in names:
            once = mapper.map_name(name)
            assert once is None or mapper.map_name(once) == once, (profile, name, once)


# --- order independence ----------------------------------------------------------------------------

MODELOPT_LAYERS = {
    **{f"model.language_model.layers.{i}.self_attn.{p}": {"quant_algo": "FP8"}
       for i in (0, 3) for p in ("q_proj", "k_proj", "v_proj", "o_proj")},
    **{f"model.language_model.layers.{i}.mlp.{p}": {"quant_algo": "W4A16_NVFP4", "group_size": 16}
       for i in (0, 1) for p in ("gate_proj", "up_proj", "down_proj")},
    "model.language_model.layers.2.mlp.experts": {"quant_algo": "NVFP4", "group_size": 16},
    "lm_head": {"quant_algo": "W4A16_NVFP4", "group_size": 16},
}
MODELOPT_EXCLUDE = ["model.language_model.layers.1*", "model.visual*", "model.language_model.layers.0.mlp.gate",
                    "mtp*", "model.language_model.layers.3.self_attn.o_proj", "model.language_model.layers.1.mlp"]
CT_GROUPS: dict[str, dict[str, Any]] = {
    "group_0": {"targets": ["Linear"], "format": "pack-quantized",
                "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}},
    "group_1": {"targets": ["re:.*down_proj$"], "format": "float-quantized",
                "weights": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel"},
                "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token",
                                      "dynamic": True}},
    "group_2": {"targets": ["model.language_model.layers.0.self_attn.o_proj", "re:.*layers\\.2\\..*q_proj$"],
                "format": "int-quantized",
                "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"},
                "input_activations": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token",
                                      "dynamic": True}},
}
CT_IGNORE = ["lm_head", "re:.*visual.*", "re:model\\.language_model\\.layers\\.1\\..*", "Embedding"]
PREFIXES = [f"language_model.model.layers.{i}.{m}" for i in range(4)
            for m in ("self_attn.qkv_proj", "self_attn.o_proj", "self_attn.q_proj", "mlp.gate_up_proj",
                      "mlp.down_proj", "mlp.gate")] + ["language_model.lm_head", "visual.blocks.0.attn.qkv"]


def _answers(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    resolver = Resolver(load_config(cfg), "qwen3.5")
    out: list[tuple[str, Any]] = []
    for prefix in [*PREFIXES, "language_model.model.layers.2.mlp.experts"]:
        kind = "lm_head" if prefix.endswith("lm_head") else "moe" if prefix.endswith("experts") else "linear"
        try:
            r = resolver.resolve(prefix, kind)
            # the entry's field path is its position in the file, so it moves with a permutation; the
            # deciding entry itself (original spelling, mapped name) must not
            src = None if r.source is None else (r.source.original, r.source.mapped)
            out.append((prefix, (r.algo, r.rule, src, r.shards)))
        except QuantResolveError as err:  # the error itself is part of the answer
            out.append((prefix, (type(err).__name__, str(err))))
    return out


def _modelopt(layers: list[str], exclude: list[str]) -> dict[str, Any]:
    return {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION",
            "quantized_layers": {k: MODELOPT_LAYERS[k] for k in layers}, "exclude_modules": exclude}


def _ct(groups: list[str], targets_rev: bool, ignore: list[str]) -> dict[str, Any]:
    built = {}
    for g in groups:
        spec = dict(CT_GROUPS[g])
        spec["targets"] = list(reversed(spec["targets"])) if targets_rev else spec["targets"]
        built[g] = spec
    return {"quant_method": "compressed-tensors", "format": "mixed-precision", "config_groups": built, "ignore": ignore}


MO_BASE = _answers(_modelopt(list(MODELOPT_LAYERS), MODELOPT_EXCLUDE))
CT_BASE = _answers(_ct(list(CT_GROUPS), False, CT_IGNORE))


@FAST
@given(layers=st.permutations(list(MODELOPT_LAYERS)), exclude=st.permutations(MODELOPT_EXCLUDE))
def test_modelopt_answers_do_not_depend_on_entry_order(layers: list[str], exclude: list[str]) -> None:
    assert _answers(_modelopt(layers, exclude)) == MO_BASE


@FAST
@given(groups=st.permutations(list(CT_GROUPS)), rev=st.booleans(), ignore=st.permutations(CT_IGNORE))
def test_ct_answers_do_not_depend_on_entry_order(groups: list[str], rev: bool, ignore: list[str]) -> None:
    assert _answers(_ct(groups, rev, ignore)) == CT_BASE


def test_order_baselines_are_not_trivial() -> None:
    """The permutation properties compare real, varied answers (not all-equal or all-error)."""
    assert len({a for _, a in MO_BASE if isinstance(a, tuple)}) > 5
    assert {a[0] for _, a in CT_BASE if isinstance(a, tuple)} >= {"W4A16", "FP8_DYNAMIC", "W8A8", None}


# --- glob exclusion survives a bijective prefix-renaming mapper --------------------------------------

CKPT = [f"{root}.layers.{i}.{m}" for root in ("model", "backbone") for i in (0, 1, 2, 10, 12)
        for m in ("self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj", "mlp.gate", "mixer.in_proj")]
GLOBS = st.sampled_from(["model.layers.1*", "model.layers.1.*", "backbone.layers.*.mlp*", "*.self_attn*",
                         "model.layers.?.mlp.gate", "backbone.layers.1[02]*", "*o_proj", "model.*"])
FRESH = st.from_regex(re.compile(r"[a-z]{2,6}"), fullmatch=True)


@FAST
@given(glob=GLOBS, new_model=FRESH, new_backbone=FRESH, knows=st.booleans())
def test_glob_exclusion_survives_bijective_prefix_renaming(glob: str, new_model: str, new_backbone: str,
                                                           knows: bool) -> None:
    if new_model == new_backbone or {new_model, new_backbone} & {"model", "backbone", "layers"}:
        return  # not a bijection onto fresh names
    mapper = WeightsMapper(orig_to_new_prefix={"model.": f"{new_model}.", "backbone.": f"{new_backbone}."})
    cfg = load_config({"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
                       "exclude_modules": [glob]})
    resolver = Resolver(cfg, "transformers", mapper=mapper, checkpoint_modules=CKPT if knows else None)
    for name in CKPT:
        parts = name.split(".")
        matched = any(fnmatch.fnmatchcase(".".join(parts[:i]), glob) for i in range(1, len(parts) + 1))
        res = resolver.resolve(mapper.map_name(name))  # type: ignore[arg-type]
        assert (res.rule == "excluded") is matched, (glob, name, res.explain())
        if matched:
            assert res.source is not None and res.source.original == glob


PREFIX_KEY = st.lists(COMPONENT, min_size=1, max_size=3).map(lambda parts: ".".join(parts) + ".")
PREFIX_TABLE = st.dictionaries(PREFIX_KEY, st.one_of(st.none(), PREFIX_KEY, st.just("")), max_size=3)
REGEX_RULES = {r"^lm_head$": "head.", r"^model\.visual\.": "visual.", r"^back?bone": "", r"^(?:x|y)": "visual.",
               r"^layers\.(\d+)\.": "blocks.\\1.", r"^.*experts": "moe", r"^mixer|^mlp": "ffn"}
ANCHORED_REGEX = st.lists(st.sampled_from(sorted(REGEX_RULES)), max_size=2, unique=True).map(
    lambda keys: {k: REGEX_RULES[k] for k in keys})


@FAST
@given(prefix=PREFIX_TABLE, regex=ANCHORED_REGEX,
       names=st.lists(st.one_of(RANDOM_NAME, st.sampled_from(family_names() or ("model",))), min_size=64, max_size=200))
def test_bulk_mapping_equals_per_name_mapping(prefix: dict[str, str | None], regex: dict[str, str],
                                              names: list[str]) -> None:
    """``map_many`` (rules run once per shared head) gives exactly ``map_name`` for every name, sorted or not."""
    bulk = WeightsMapper(orig_to_new_prefix=prefix, orig_to_new_regex=regex)
    single = WeightsMapper(orig_to_new_prefix=prefix, orig_to_new_regex=regex)
    for batch in (sorted(names), names):
        assert bulk.map_many(batch) == [single.map_name(n) for n in batch]


def test_bulk_mapping_shares_work_across_a_head() -> None:
    """The fast path really runs: one head, thousands of names, the per-name cache stays empty."""
    mapper = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."},
                           orig_to_new_regex={"^lm_head$": "language_model.lm_head"})
    names = sorted(f"model.language_model.layers.{i}.mlp.experts.{e}.down_proj" for i in range(4) for e in range(64))
    assert mapper.map_many(names) == [n.replace("model.language_model.", "language_model.model.") for n in names]
    assert len(mapper._cache) == 0  # type: ignore[attr-defined]
