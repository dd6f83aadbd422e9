"""Compact name patterns: expanding a pattern gives back exactly the names it was made from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantresolve.audit.pattern import compact, expand, expand_raw, natural_key

# Names with every character the grammar treats specially, digits (canonical or not) and empty parts.
_ALPHABET = st.sampled_from(list("ab_.{},\\0123456789 x"))
ARBITRARY = st.lists(st.text(_ALPHABET, max_size=12), max_size=12)


@st.composite
def layered(draw) -> list[str]:
    """Checkpoint-like names: a stack of layers, some with experts, a few odd ones out."""
    layers = draw(st.sets(st.integers(0, 80), min_size=1, max_size=12))
    experts = draw(st.sets(st.integers(0, 300), max_size=10))
    projs = draw(st.sets(st.sampled_from(["gate_proj", "up_proj", "down_proj", "gate", "07"]), min_size=1))
    names = [f"model.layers.{i}.mlp.experts.{e}.{p}" for i in layers for e in experts for p in projs]
    names += [f"model.layers.{i}.mlp.{p}" for i in layers for p in projs]
    names += draw(st.lists(st.sampled_from(["lm_head", "model.norm", "", "model..x", "3..5", "3\\..5"])))
    return names


def _round_trip(names: list[str]) -> None:
    pattern = compact(names)
    if not names:
        assert pattern is None
        return
    raw = expand_raw(pattern)
    assert len(raw) == len(set(raw)), pattern  # no name twice: the terms partition the set
    assert expand(pattern) == sorted(set(names), key=natural_key)
    assert compact(reversed(names)) == pattern  # order of the input does not matter


@settings(max_examples=400, deadline=None)
@given(ARBITRARY)
def test_round_trip_arbitrary_names(names):
    _round_trip(names)


@settings(max_examples=200, deadline=None)
@given(layered())
def test_round_trip_layered_names(names):
    _round_trip(names)


@pytest.mark.parametrize(("names", "pattern"), [
    ([f"model.layers.{i}.mlp.gate" for i in range(61)], "model.layers.{0..60}.mlp.gate"),
    ([f"model.layers.{i}.mlp.experts.{e}.down_proj" for i in (0, 1, 2, 4) for e in range(256)],
     "model.layers.{0..2,4}.mlp.experts.{0..255}.down_proj"),
    (["model.layers.1.x", "model.layers.2.x"], "model.layers.{1,2}.x"),
    (["lm_head"], "lm_head"),
    (["a.07", "a.7", "a.8", "a.9"], "a.{7..9,07}"),
    ([f"l.{i}.self_attn.{p}" for i in range(3) for p in ("q_a_proj", "kv_b_proj")],
     "l.{0..2}.self_attn.{kv_b_proj,q_a_proj}"),
])
def test_readable_patterns(names, pattern):
    assert compact(names) == pattern
    assert expand(pattern) == sorted(set(names), key=natural_key)


@pytest.mark.parametrize("bad", ["{a", "a}", "a,b", "{3..1}", "a\\"])
def test_malformed_pattern_refused(bad):
    with pytest.raises(ValueError, match="pattern"):
        expand(bad)


def test_natural_order():
    assert sorted(["model.layers.10.x", "model.layers.2.x", "model.layers.2"], key=natural_key) == [
        "model.layers.2", "model.layers.2.x", "model.layers.10.x"]
