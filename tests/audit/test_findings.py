"""Every audit finding code, each triggered from a real-producer fixture modified in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantresolve.audit import CODES
from quantresolve.errors import ResolutionError

from .conftest import copy_fixture, edit_json, edit_tensors, read_tensors

HF = "hf_quant_config.json"
_NVFP4_16 = {"quant_algo": "NVFP4", "group_size": 16}


def _findings(result, code: str) -> list[dict]:
    return [f for f in result.json()["findings"] if f["code"] == code]


def _module(result, name: str) -> dict:
    return next(m for m in result.json()["modules"] if m["name"] == name)


def _mixed_with_layer(tmp_path: Path, layer: str, entry: dict) -> Path:
    """modelopt-mixed with ``quantized_layers[layer] = entry`` (added or replaced) in both ModelOpt files."""
    ckpt = copy_fixture(tmp_path, "modelopt-mixed")
    edit_json(ckpt / HF, lambda d: d["quantization"]["quantized_layers"].update({layer: entry}))
    edit_json(ckpt / "config.json", lambda d: d["quantization_config"]["quantized_layers"].update({layer: entry}))
    return ckpt


def test_unmodified_fixture_is_clean(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-mixed")
    result = cli("audit", ckpt, "--format", "json")
    assert result.rc == 0 and result.json()["findings"] == []


def test_config_quantized_tensors_dense(tmp_path, cli):
    ckpt = _mixed_with_layer(tmp_path, "model.layers.1.self_attn.o_proj", {"quant_algo": "FP8"})
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "config-quantized-tensors-dense")
    assert hit["severity"] == "error" and hit["members"] == ["model.layers.1.self_attn.o_proj"]
    assert "FP8" in hit["message"] and result.rc == 1


def test_config_quantized_model_unquantized(tmp_path, cli):
    """The same dense o_proj, but the profile says the model builds it unquantized (as vLLM builds
    DeepSeek routers): it loads as is, so info (by design) naming both answers, and exit 0 even strict."""
    ckpt = _mixed_with_layer(tmp_path, "model.layers.1.self_attn.o_proj", {"quant_algo": "FP8"})
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"name": "llama-unquantized-o1", "packed_modules_mapping": {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]},
        "unquantized_modules": [r"model\.layers\.1\.self_attn\.o_proj"]}))
    result = cli("audit", ckpt, "--format", "json", "--profile", profile)
    (hit,) = _findings(result, "config-quantized-model-unquantized")
    assert hit["severity"] == "info" and hit["members"] == ["model.layers.1.self_attn.o_proj"]
    assert "config says FP8" in hit["message"] and "unquantized_modules[0]" in hit["message"]
    assert not _findings(result, "config-quantized-tensors-dense") and result.rc == 0
    assert cli("audit", ckpt, "--format", "json", "--profile", profile, "--strict").rc == 0
    module = _module(result, "model.layers.1.self_attn.o_proj")
    assert (module["algo"], module["rule"]) == (None, "model-unquantized")


def test_config_unquantized_tensors_quantized(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / HF, lambda d: d["quantization"]["exclude_modules"].append("model.layers.0.mlp*"))
    result = cli("audit", ckpt, "--format", "json")
    hits = _findings(result, "config-unquantized-tensors-quantized")
    (hit,) = hits  # one group: both fused layers' shards, one cause
    assert hit["members"] == ["model.layers.0.mlp.down_proj", "model.layers.0.mlp.gate_proj",
                              "model.layers.0.mlp.up_proj"]
    assert hit["units"] == ["model.layers.0.mlp.down_proj", "model.layers.0.mlp.gate_up_proj"]
    assert hit["pattern"] == "model.layers.0.mlp.{down_proj,gate_proj,up_proj}" and hit["count"] == 3
    assert result.rc == 1


def test_config_unquantized_scales_present(tmp_path, cli):
    """lm_head excluded while lm_head.input_scale ships: the dense head has no parameter for it, strict
    loaders refuse it (vLLM 44081), so an error."""
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_tensors(ckpt, lambda t: t.update({"lm_head.input_scale": ["F32", [], b"\x00\x00\x80\x3f"]}))
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "config-unquantized-scales-present")
    assert hit["members"] == ["lm_head"] and "input_scale" in hit["message"] and hit["severity"] == "error"
    assert result.rc == 1


def test_format_mismatch(tmp_path, cli):
    """NVFP4 tensors under an FP8 answer."""
    ckpt = _mixed_with_layer(tmp_path, "model.layers.1.mlp.down_proj", {"quant_algo": "FP8"})
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "format-mismatch")
    assert hit["members"] == ["model.layers.1.mlp.down_proj"]
    assert "FP8" in hit["message"] and "nvfp4" in hit["message"]


def test_group_size_mismatch(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "ct-w4a16")
    edit_json(ckpt / "config.json", lambda d: d["quantization_config"]["config_groups"]["group_0"]["weights"]
              .update({"group_size": 64}))
    result = cli("audit", ckpt, "--format", "json")
    hits = _findings(result, "group-size-mismatch")  # one group per cause: 1 or 2 scale groups along K
    assert len(hits) == 2 and all("group size 64" in h["cause"] and "128" in h["cause"] for h in hits)
    assert [h["count"] for h in hits] == [12, 2] and hits[1]["pattern"] == "model.layers.{0,1}.mlp.down_proj"


def test_unknown_tensor_format(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_tensors(ckpt, lambda t: t["model.layers.0.mlp.down_proj.weight"].__setitem__(0, "BOOL"))
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "unknown-tensor-format")
    assert hit["members"] == ["model.layers.0.mlp.down_proj"] and "BOOL" in hit["message"]


def test_dead_exclude_keeps_original_spelling(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / HF, lambda d: d["quantization"]["exclude_modules"].append("model.vision_tower*"))
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "dead-exclude")
    assert hit["members"] == ["model.vision_tower*"] and hit["file"] == HF
    assert hit["field"].startswith("quantization.exclude_modules[")


def test_dead_excludes_grouped_with_their_list_field(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / HF, lambda d: d["quantization"]["exclude_modules"].extend(
        [f"model.layers.{i}.vision*" for i in (12, 2, 3, 4)]))
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "dead-exclude")
    assert hit["pattern"] == "model.layers.{2..4,12}.vision*" and hit["count"] == 4
    assert hit["field"] == "quantization.exclude_modules" and hit["units"] == []


def test_dead_layer(tmp_path, cli):
    ckpt = _mixed_with_layer(tmp_path, "model.layers.7.mlp.down_proj", _NVFP4_16)
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "dead-layer")
    assert hit["members"] == ["model.layers.7.mlp.down_proj"]


def test_dead_target(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "ct-mixed")

    def add(d: dict) -> None:
        group = next(iter(d["quantization_config"]["config_groups"].values()))
        group["targets"].append("re:.*visual.*")
    edit_json(ckpt / "config.json", add)
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "dead-target")
    assert hit["members"] == ["re:.*visual.*"]


def test_fused_conflict(tmp_path, cli):
    ckpt = _mixed_with_layer(tmp_path, "model.layers.0.self_attn.k_proj", _NVFP4_16)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "fused-conflict")
    assert hit["members"] == ["model.layers.0.self_attn.qkv_proj"] and result.rc == 1
    module = _module(result, "model.layers.0.self_attn.qkv_proj")
    assert module["algo"] is None and module["rule"] == "unresolved"
    assert "unresolved" in result.json()["coverage"]["by_algo"]


def _moe_fixture(tmp_path: Path) -> Path:
    """modelopt-fp8 with each layer's MLP renamed into layer 0's expert container (experts 0 and 1)."""
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")

    def rename(t: dict) -> None:
        for name in list(t):
            for layer in (0, 1):
                prefix = f"model.layers.{layer}.mlp."
                if name.startswith(prefix):
                    t[f"model.layers.0.mlp.experts.{layer}.{name[len(prefix):]}"] = t.pop(name)
    edit_tensors(ckpt, rename)
    return ckpt


def test_expert_conflict(tmp_path, cli):
    ckpt = _moe_fixture(tmp_path)
    assert cli("audit", ckpt, "--profile", "qwen3-moe", "--format", "json").codes() == set()
    edit_json(ckpt / HF, lambda d: d["quantization"]["exclude_modules"].append("model.layers.0.mlp.experts.1*"))
    result = cli("audit", ckpt, "--profile", "qwen3-moe", "--format", "json")
    (hit,) = _findings(result, "expert-conflict")
    assert hit["members"] == ["model.layers.0.mlp.experts"]
    module = _module(result, "model.layers.0.mlp.experts")
    assert module["kind"] == "moe" and module["parts"] == 6


def test_empty_module_name(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_tensors(ckpt, lambda t: t.update({"model..extra.weight": ["BF16", [2, 2], b"\x00" * 8]}))
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "empty-module-name")
    assert hit["members"] == ["model..extra"]


def test_invalid_prefix(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_tensors(ckpt, lambda t: t.update({"model.extra proj.weight": ["BF16", [2, 2], b"\x00" * 8]}))
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "invalid-prefix")
    assert hit["members"] == ["model.extra proj"]


def test_unresolvable(tmp_path, cli, monkeypatch):
    """Any other resolver refusal becomes an error finding for that module, never a crash."""
    from quantresolve.resolve.resolver import Resolver

    original = Resolver.resolve

    def refuse(self, prefix, kind="linear"):
        if prefix == "model.layers.1.mlp.down_proj":
            raise ResolutionError("refused for the test")
        return original(self, prefix, kind)
    monkeypatch.setattr(Resolver, "resolve", refuse)
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    (hit,) = _findings(cli("audit", ckpt, "--format", "json"), "unresolvable")
    assert hit["members"] == ["model.layers.1.mlp.down_proj"] and "refused for the test" in hit["message"]


def test_absent_shard(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")

    def drop(t: dict) -> None:
        for name in [n for n in t if n.startswith("model.layers.1.self_attn.v_proj.")]:
            del t[name]
    edit_tensors(ckpt, drop)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "absent-shard")
    assert hit["members"] == ["model.layers.1.self_attn.qkv_proj"] and "v_proj" in hit["message"]
    module = _module(result, hit["members"][0])
    assert module["missing_shards"] == ["v_proj"] and module["algo"] == "FP8"


def test_kv_scales_without_config(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    scale = ["F32", [], b"\x00\x00\x80\x3f"]
    edit_tensors(ckpt, lambda t: t.update({"model.layers.0.self_attn.k_proj.k_scale": scale,
                                           "model.layers.0.self_attn.v_proj.v_scale": list(scale)}))
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "kv-scales-without-config")
    assert hit["members"] == ["model.layers.0.self_attn"]
    module = _module(result, "model.layers.0.self_attn")
    assert module["kind"] == "attention" and module["evidence"]["kv_scales"] is True


def test_kv_config_without_scales(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / HF, lambda d: d["quantization"].update({"kv_cache_quant_algo": "FP8"}))
    result = cli("audit", ckpt, "--format", "json")
    assert _findings(result, "kv-config-without-scales")


def test_unmapped_modules(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    profile = tmp_path / "drop-norm.json"
    profile.write_text(json.dumps({"name": "drop-norm", "mapper": {"orig_to_new_prefix": {"model.norm": None}}}))
    (hit,) = _findings(cli("audit", ckpt, "--profile", profile, "--format", "json"), "unmapped-modules")
    assert hit["members"] == ["model.norm"] and hit["severity"] == "info"


def test_names_only(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    tensors = read_tensors(ckpt / "model.safetensors")
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {n: "model.safetensors" for n in tensors}}))
    (ckpt / "model.safetensors").unlink()
    result = cli("audit", ckpt, "--format", "json")
    report = result.json()
    assert "names-only" in result.codes() and report["evidence_level"] == "names-only"
    # Shapes from config.json (transformers on the meta device) size every module; bytes are estimates.
    assert report["shapes"]["source"] == "config" and report["coverage"]["quantized_linear_param_fraction"] > 0
    assert all(m["evidence"]["shapes"] == "config" for m in report["modules"] if m["kind"] != "attention")
    assert result.rc == 0


def test_names_only_without_shapes_reports_no_sizes(tmp_path):
    from quantresolve.audit import audit_checkpoint

    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    tensors = read_tensors(ckpt / "model.safetensors")
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {n: "model.safetensors" for n in tensors}}))
    (ckpt / "model.safetensors").unlink()
    report = audit_checkpoint(ckpt).to_json()  # no shape provider given
    assert report["shapes"]["source"] is None and "no shape provider" in report["shapes"]["detail"]
    assert report["coverage"]["quantized_linear_param_fraction"] is None


def test_index_mismatch(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    tensors = read_tensors(ckpt / "model.safetensors")
    names = sorted(tensors)[1:]  # the index forgets one tensor the header has
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {n: "model.safetensors" for n in names}}))
    assert "index-mismatch" in cli("audit", ckpt, "--format", "json").codes()


def test_two_modelopt_files_disagree_passes_through(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / "config.json", lambda d: d["quantization_config"]["ignore"].append("model.layers.1.mlp*"))
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "files-disagree-exclude")
    assert hit["severity"] == "warning" and result.rc == 0


def test_two_modelopt_files_disagree_on_algo_is_an_error(tmp_path, cli):
    """An engine reading config.json (vLLM, transformers) would load every layer with the other algorithm."""
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / "config.json", lambda d: d["quantization_config"].update(quant_algo="NVFP4", group_size=16))
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "files-disagree-algo")
    assert hit["severity"] == "error" and result.rc == 1


def test_stale_sidecar_config(tmp_path, cli):
    """compressed-tensors' own ModelOpt converter leaves hf_quant_config.json behind: a warning, config.json used."""
    ckpt = copy_fixture(tmp_path, "ct-from-modelopt-nvfp4")
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "stale-sidecar-config")
    assert hit["severity"] == "warning" and hit["file"] == HF and "config.json" in hit["message"]
    assert "config-quantized-tensors-dense" not in result.codes() and result.rc == 0
    assert cli("audit", ckpt, "--format", "json", "--strict").rc == 1


def test_stale_sidecar_scheme_mismatch(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "ct-from-modelopt-nvfp4")
    edit_json(ckpt / HF, lambda d: d["quantization"].update(quant_algo="FP8", group_size=None))
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "stale-sidecar-scheme-mismatch")
    assert hit["severity"] == "error" and "modelopt FP8" in hit["message"] and result.rc == 1


def test_scale_grid_mismatch(tmp_path, cli):
    """An FP8 block scale whose grid is not ceil(N/128) x ceil(K/128) for its weight."""
    ckpt = copy_fixture(tmp_path, "ct-fp8-block")
    name = "model.layers.0.mlp.down_proj.weight_scale"

    def one_column(tensors: dict) -> None:
        dtype, shape, data = tensors[name]
        tensors[name] = [dtype, [shape[0], 1], data[: len(data) // shape[1]]]

    edit_tensors(ckpt, one_column)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "scale-grid-mismatch")
    assert hit["severity"] == "error" and hit["members"] == ["model.layers.0.mlp.down_proj"]
    assert "a [128, 256] weight needs a 1x2 scale grid, the weight scale is [1, 1]" in hit["message"]
    assert result.rc == 1


TESTED = {
    "config-quantized-tensors-dense", "config-quantized-model-unquantized", "config-unquantized-tensors-quantized", "config-unquantized-scales-present",
    "format-mismatch", "group-size-mismatch", "unknown-tensor-format", "dead-exclude", "dead-layer",
    "dead-target", "fused-conflict", "expert-conflict", "empty-module-name", "invalid-prefix", "unresolvable",
    "absent-shard", "kv-scales-without-config", "kv-config-without-scales", "unmapped-modules", "names-only",
    "index-mismatch", "stale-sidecar-config", "stale-sidecar-scheme-mismatch", "files-disagree-exclude",
    "files-disagree-algo", "scale-grid-mismatch",
    # tested in test_every_model.py
    "config-only", "unsized-modules", "no-quantization-config",
}


def test_every_code_has_a_test():
    """Every code the audit raises itself is triggered above (pass-through codes are tested where raised)."""
    from quantresolve.audit.codes import PASS_THROUGH

    assert set(CODES) - PASS_THROUGH <= TESTED <= set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_codes_are_kebab_case_with_meaning_and_reason(code):
    assert code == code.lower() and " " not in code and CODES[code].meaning and CODES[code].reason


def test_pass_through_severities_match_the_registry():
    """The config loader stamps its own findings; the audit's registry is the one written reason."""
    from quantresolve.audit.codes import PASS_THROUGH
    from quantresolve.formats import hf_skip_lists, normalize_modelopt, sidecar
    from quantresolve.resolve import rules_awq

    stamped = {**normalize_modelopt.SEVERITIES, **sidecar.SEVERITIES, **hf_skip_lists.SEVERITIES,
               "entry-dropped-by-mapper": "warning", "duplicate-after-mapping": "info",
               rules_awq.SUBSTRING_ONLY: rules_awq.SEVERITY}
    assert set(stamped) == PASS_THROUGH <= set(CODES)
    assert {c: CODES[c].severity for c in stamped} == stamped
