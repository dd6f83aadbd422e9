"""Every model family re-resolves to its committed snapshot (fixtures/families/<family>/expected.json).

After an intended change: `.venv/bin/python fixtures/families/snapshots.py --write`, then review the diff.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from quantresolve.naming.profiles import builtin_profiles
from tests.conftest import FIXTURES

_spec = importlib.util.spec_from_file_location("family_snapshots", FIXTURES / "families" / "snapshots.py")
snapshots = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(snapshots)  # type: ignore[union-attr]

FAMILIES = snapshots.family_dirs()


def test_every_builtin_profile_has_a_family() -> None:
    assert sorted(f.name for f in FAMILIES) == builtin_profiles()


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_family_matches_snapshot(family) -> None:
    expected = json.loads((family / "expected.json").read_text())
    problems = snapshots.diff(expected, snapshots.resolve_family(family))
    assert not problems, "\n".join(problems)


def test_seed_gemma3_siglip_tower_stays_unquantized() -> None:
    rows = {r["name"]: r for r in snapshots.resolve_family(FIXTURES / "families" / "gemma3-mm")}
    row = rows["vision_model.encoder.layers.0.self_attn.qkv_proj"]
    assert (row["algo"], row["rule"]) == (None, "excluded")
    assert row["source"].startswith("vision_tower.vision_model.encoder.layers.0.self_attn.")
    assert rows["language_model.model.layers.0.self_attn.qkv_proj"]["algo"] == "W4A16"


def test_seed_gemma4_towers_are_quantized() -> None:
    rows = snapshots.resolve_family(FIXTURES / "families" / "gemma4-mm")
    towers = [r for r in rows if r["name"].startswith(("vision_tower.", "audio_tower.")) and r.get("algo")]
    assert len(towers) >= 10 and {r["algo"] for r in towers} == {"NVFP4"}


def test_seed_qwen35_mixed_precision_under_language_model_model() -> None:
    rows = {r["name"]: r for r in snapshots.resolve_family(FIXTURES / "families" / "qwen3.5")}
    assert rows["language_model.model.layers.0.linear_attn.in_proj_qkvz"]["algo"] == "FP8"
    assert (rows["language_model.model.layers.0.linear_attn.in_proj_ba"]["algo"],
            rows["language_model.model.layers.0.linear_attn.in_proj_ba"]["rule"]) == (None, "default")
    assert rows["language_model.lm_head"]["algo"] == "W4A16_NVFP4"
