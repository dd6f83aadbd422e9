"""Head-grouped lookups (``MappedNames``, ``WeightsMapper.preimage_parts``) against per-name brute force,
and the ModelOpt layer index's collision and drop handling built on them."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantresolve import load_config
from quantresolve.errors import ConflictingExpertsError, MappingError
from quantresolve.naming.mapped_names import MappedNames
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.naming.profiles import Profile
from quantresolve.resolve.resolver import Resolver

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COMPONENT = st.sampled_from(["model", "language_model", "lm", "layers", "0", "1", "12", "mlp", "experts", "3",
                             "down_proj", "visual", "lm_head", "m", "mo"])
NAME = st.lists(COMPONENT, min_size=1, max_size=6).map(".".join)
# Rule texts with and without the trailing dot, partial components included ("mod", "model.lang").
RULE_TEXT = st.one_of(st.lists(COMPONENT, min_size=1, max_size=3).map(lambda p: ".".join(p) + "."),
                      st.lists(COMPONENT, min_size=1, max_size=3).map(".".join),
                      st.sampled_from(["mod", "model.lang", "language_model.mo", ""]))
PREFIX_RULES = st.dictionaries(RULE_TEXT, st.one_of(st.none(), RULE_TEXT), max_size=3)
REGEX_RULES = st.sampled_from([{}, {"^lm_head$": "language_model.lm_head"}, {r"^visual\.": "model.visual."}])


def _mapper(prefix: dict[str, str | None], regex: dict[str, str]) -> WeightsMapper:
    return WeightsMapper(orig_to_new_prefix=prefix, orig_to_new_regex=regex)


def _generic_preimages(mapper: WeightsMapper, name: str) -> frozenset[str]:
    """preimages() with the head shortcut switched off: the whole name is inverted rule by rule."""
    plain = _mapper(dict(mapper.orig_to_new_prefix), dict(mapper.orig_to_new_regex))
    object.__setattr__(plain, "_plan", False)
    return plain.preimages(name)


@FAST
@given(prefix=PREFIX_RULES, regex=REGEX_RULES, name=NAME)
def test_head_preimages_equal_whole_name_inversion(prefix: dict[str, str | None], regex: dict[str, str],
                                                   name: str) -> None:
    mapper = _mapper(prefix, regex)
    assert mapper.preimages(name) == _generic_preimages(mapper, name), (prefix, regex, name)


@FAST
@given(prefix=PREFIX_RULES, regex=REGEX_RULES, names=st.lists(NAME, min_size=1, max_size=40, unique=True),
       probes=st.lists(NAME, max_size=10))
def test_grouped_lookups_equal_per_name_mapping(prefix: dict[str, str | None], regex: dict[str, str],
                                                names: list[str], probes: list[str]) -> None:
    names.sort()
    mapper = _mapper(prefix, regex)
    mapped = [mapper.map_name(n) for n in names]
    first: dict[str, int] = {}
    for i, m in enumerate(mapped):
        if m is not None:
            first.setdefault(m, i)
    index = MappedNames(names, _mapper(prefix, regex))
    assert index.anomalous == (None in mapped or len(first) != len(mapped))
    for probe in {*probes, *(m for m in mapped if m is not None)}:
        assert index.find(probe) == first.get(probe), (prefix, regex, probe)
        under = sorted(i for r in index.under(probe) for i in r)
        want = sorted(i for m, i in first.items() if m.startswith(probe + "."))
        if not index.anomalous:
            want = sorted(i for i, m in enumerate(mapped) if m is not None and m.startswith(probe + "."))
        assert under == want, (prefix, regex, probe)
    for i, m in enumerate(mapped):
        if m is not None and not index.anomalous:
            assert index.mapped(i) == m


def test_a_head_is_mapped_once_not_per_key() -> None:
    mapper = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
    names = sorted(f"model.language_model.layers.{i}.mlp.experts.{e}.down_proj" for i in range(8) for e in range(512))
    index = MappedNames(names, mapper)
    assert index.find("language_model.model.layers.7.mlp.experts.511.down_proj") == names.index(
        "model.language_model.layers.7.mlp.experts.511.down_proj")
    assert sum(len(r) for r in index.under("language_model.model.layers.3.mlp.experts")) == 512
    assert len(mapper._cache) == 0  # type: ignore[attr-defined]  # no key went through map_name


# --- the ModelOpt layer index: two keys onto one name, dropped keys --------------------------------

PROFILE_SWAP = {"name": "swap", "mapper": {"orig_to_new_prefix": {"model.language_model.": "language_model.model."}}}


def _config(layers: dict[str, dict[str, object]]) -> object:
    return load_config({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "quantized_layers": layers})


def test_two_keys_onto_one_name_with_different_schemes_is_an_error() -> None:
    cfg = _config({"model.language_model.layers.0.mlp.down_proj": {"quant_algo": "FP8"},
                   "language_model.model.layers.0.mlp.down_proj": {"quant_algo": "NVFP4", "group_size": 16}})
    with pytest.raises(MappingError, match=re.escape("both map to 'language_model.model.layers.0.mlp.down_proj'")):
        Resolver(cfg, Profile.from_dict(PROFILE_SWAP))  # type: ignore[arg-type]


def test_two_keys_onto_one_name_with_one_scheme_is_a_finding_and_the_first_key_answers() -> None:
    cfg = _config({"model.language_model.layers.0.mlp.down_proj": {"quant_algo": "FP8"},
                   "language_model.model.layers.0.mlp.down_proj": {"quant_algo": "FP8"}})
    resolver = Resolver(cfg, Profile.from_dict(PROFILE_SWAP))  # type: ignore[arg-type]
    codes = [f.code for f in resolver.findings]
    assert codes == ["duplicate-after-mapping"]
    res = resolver.resolve("language_model.model.layers.0.mlp.down_proj")
    assert res.rule == "direct" and res.source is not None
    assert res.source.original == "language_model.model.layers.0.mlp.down_proj"  # first in sorted order


def test_a_key_the_mapper_drops_is_a_finding() -> None:
    profile = {"name": "drop", "mapper": {"orig_to_new_prefix": {"mtp.": None}}}
    cfg = _config({"mtp.layers.0.mlp.down_proj": {"quant_algo": "FP8"},
                   "model.layers.0.mlp.down_proj": {"quant_algo": "FP8"}})
    resolver = Resolver(cfg, Profile.from_dict(profile))  # type: ignore[arg-type]
    assert [(f.code, f.subject) for f in resolver.findings] == [
        ("entry-dropped-by-mapper", "mtp.layers.0.mlp.down_proj")]
    assert resolver.resolve("model.layers.0.mlp.down_proj").algo == "FP8"


def test_experts_under_a_container_roll_up_across_heads() -> None:
    """Keys of one container spelled under two heads (both mapped there) still count together."""
    layers = {f"model.language_model.layers.1.mlp.experts.{e}.{p}": {"quant_algo": "NVFP4", "group_size": 16}
              for e in range(2) for p in ("gate_proj", "up_proj", "down_proj")}
    layers["language_model.model.layers.1.mlp.experts.2.down_proj"] = {"quant_algo": "FP8"}
    resolver = Resolver(_config(layers), Profile.from_dict(PROFILE_SWAP))  # type: ignore[arg-type]
    with pytest.raises(ConflictingExpertsError, match=r"6 key\(s\) → NVFP4.*1 key\(s\) → FP8"):
        resolver.resolve("language_model.model.layers.1.mlp.experts", "moe")
