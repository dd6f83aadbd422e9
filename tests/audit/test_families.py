"""Per-family index-only checkpoints (fixtures/families): the audit runs on each, and the
failure-class scenarios of FAILURE_CLASSES.md show up as the right answers and findings."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
FAMILIES = REPO / "fixtures" / "families"
SCHEMA = json.loads((REPO / "schemas" / "audit-report.schema.json").read_text())


def _families() -> list[str]:
    return sorted(p.parent.name for p in FAMILIES.glob("*/checkpoint") if (p / "config.json").is_file())


def _audit(cli, family: str, profile: str | None = None) -> tuple[dict, dict[str, dict]]:
    path = FAMILIES / family / "checkpoint"
    if not path.is_dir():
        pytest.skip(f"family fixture {family} absent")
    result = cli("audit", path, "--format", "json", *(("--profile", profile) if profile else ()))
    assert result.rc in (0, 1), result.err
    report = result.json()
    return report, {m["name"]: m for m in report["modules"]}


@pytest.mark.parametrize("family", _families())
def test_family_audits_with_reduced_evidence(family, cli):
    report, modules = _audit(cli, family)
    jsonschema.validate(report, SCHEMA)
    assert report["evidence_level"] == "names-only"
    assert any(f["code"] == "names-only" for f in report["findings"])
    fraction = report["coverage"]["quantized_linear_param_fraction"]
    # Sized from config.json shapes when transformers builds the family, else unknown.
    assert (fraction is not None) == (report["shapes"]["source"] == "config")
    assert any(m["algo"] for m in modules.values())


def test_deepseek_router_left_out_of_excludes(cli):
    """Class 8: bf16 routers not excluded; class 6: per-shard excludes cover the fused MLA projection.

    vLLM's DeepSeek builds the router with quant_config=None, so the profile answers ``model-unquantized``
    and the disagreement between config and tensors is by design (info), not a load error."""
    report, modules = _audit(cli, "deepseek-v3")
    codes = {(f["code"], f["severity"], f["pattern"]) for f in report["findings"]
             if "model.layers.1.mlp.gate" in f["members"]}
    assert codes == {("config-quantized-model-unquantized", "info", "model.layers.{1,2}.mlp.gate")}
    router = modules["model.layers.1.mlp.gate"]
    assert (router["algo"], router["rule"]) == (None, "model-unquantized")
    # under plain transformers naming nothing overrides the config: the same tensors are an error
    plain, _ = _audit(cli, "deepseek-v3", profile="transformers")
    dense = {m for f in plain["findings"] if f["code"] == "config-quantized-tensors-dense" for m in f["members"]}
    assert "model.layers.1.mlp.gate" in dense
    fused = modules["model.layers.1.self_attn.fused_qkv_a_proj"]
    assert (fused["algo"], fused["rule"], fused["parts"]) == (None, "excluded", 2)
    assert modules["model.layers.1.mlp.experts"]["kind"] == "moe"


def test_glm_routers_built_unquantized(cli):
    """GLM-5 (vLLM's DeepSeek-V2 path) and GLM-4.5 (a plain float32 Linear) never quantize the router: its
    bf16 tensors under an NVFP4 config are by design, not an error (they were, before the profile said so)."""
    report, modules = _audit(cli, "glm")
    router = modules["model.layers.1.mlp.gate"]
    assert (router["algo"], router["rule"]) == (None, "model-unquantized")
    assert report["summary"]["error"] == 0
    (hit,) = [f for f in report["findings"] if f["code"] == "config-quantized-model-unquantized"]
    assert hit["severity"] == "info" and hit["pattern"] == "model.layers.{1,2}.mlp.gate"


def test_gemma4_absent_v_proj(cli):
    """Class 5: global-attention layers have no v_proj; only present shards vote."""
    report, modules = _audit(cli, "gemma4-mm")
    qkv = modules["language_model.model.layers.1.self_attn.qkv_proj"]
    assert qkv["algo"] == "NVFP4" and qkv["missing_shards"] == ["v_proj"]
    assert any(f["code"] == "absent-shard" and qkv["name"] in f["members"] for f in report["findings"])
    assert not any(f["code"] == "dead-exclude" for f in report["findings"])  # tied head: lm_head stays alive


def test_nemotron_per_expert_entries_make_one_container(cli):
    """Class 7: per-expert quantized_layers entries agree → the container gets their scheme."""
    _report, modules = _audit(cli, "nemotron-h")
    experts = modules["model.layers.1.mixer.experts"]
    assert (experts["kind"], experts["algo"], experts["rule"]) == ("moe", "W4A16_NVFP4", "experts")


def test_qwen35_no_sibling_inference(cli):
    """Class 4: unlisted in_proj_ba stays unquantized in MIXED_PRECISION; its tensors agree (dense)."""
    report, modules = _audit(cli, "qwen3.5")
    ba = modules["language_model.model.layers.0.linear_attn.in_proj_ba"]
    assert (ba["algo"], ba["evidence"]["format"]) == (None, "dense")
    assert not any(ba["name"] in f["members"] for f in report["findings"])
