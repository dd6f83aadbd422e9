"""Every model audits (issue 16 part 1): dense models ("nothing quantized"), index-only folders and
config-only folders, with parameters and bytes from the model ``config.json`` describes (transformers
on the meta device, injected by the CLI) wherever transformers builds it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from safetensors.numpy import save_file

from quantresolve.audit import audit_checkpoint
from quantresolve.cli.audit import transformers_shapes

from .conftest import CORPUS, REPO, CorpusAudits, copy_fixture

SCHEMA = json.loads((REPO / "schemas" / "audit-report.schema.json").read_text())
LINEAR_KINDS = ("linear", "moe", "lm_head", "embedding")

#: folder → (exit code, evidence level, shapes source, how many weight-bearing modules are sized).
#: ``exit 2``: a quantization format outside quantresolve's scope (none today). ``shapes None``: transformers has no class for the
#: model type. ``some`` / ``none``: checkpoint names transformers' model does not build (older layouts).
#: Exit codes 0 / 1 depend on finding severities; only "not 2" is asserted for them.
CORPUS_TABLE: dict[str, tuple[int, str | None, str | None, str | None]] = {
    "Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM": (0, "names-only", "config", "all"),
    "Qwen__Qwen3-30B-A3B-FP8": (0, "config-only", "config", "all"),
    "Qwen__Qwen3-32B-FP8-Static-PerTensor": (0, "config-only", "config", "all"),
    "Qwen__Qwen3.5-35B-A3B": (0, "config-only", "config", "all"),
    "RedHatAI__DeepSeek-V4-Flash-NVFP4-FP8": (0, "config-only", "config", "all"),
    "allenai__Molmo-7B-D-0924__NF4-reubzdubz": (0, "names-only", None, "none"),
    "allenai__olmOCR-7B-0225-preview__BrianYAU-NTEC": (0, "names-only", "config", "all"),
    "bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding": (0, "names-only", "config", "some"),
    "deepseek-ai__DeepSeek-OCR-2__sen-ye": (0, "names-only", None, "none"),
    "deepseek-ai__DeepSeek-V3": (0, "config-only", "config", "all"),
    "google__gemma-4__victortorresa94-del": (0, "names-only", "config", "all"),
    "google__medgemma-27b-it": (0, "names-only", "config", "some"),
    "ibm-granite__granite-3.1-1b-a400m-instruct": (0, "names-only", "config", "all"),
    "liuhaotian__llava-v1.5-7b__wyler-max": (0, "names-only", "config", "none"),
    "meta-llama__Llama-3.2-3B-Instruct": (0, "names-only", "config", "all"),
    "microsoft__WizardLM-2-8x22B": (0, "names-only", "config", "all"),
    "nvidia__Cosmos-Reason2__sarcascoder": (0, "names-only", "config", "all"),
    "nvidia__DeepSeek-V3.1-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__DeepSeek-V3.2-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__DeepSeek-V4-Flash-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__DeepSeek-V4-Pro-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__GLM-5-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__GLM-5.1-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__GLM-5.2-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Gemma-4-26B-A4B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Gemma-4-31B-IT-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Kimi-K2.5-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Kimi-K2.6-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Kimi-K2.7-Code-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Llama-3.1-70B-Instruct-FP8": (0, "config-only", "config", "all"),
    "nvidia__MiniMax-M2.5-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__MiniMax-M2.7-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Qwen3-235B-A22B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Qwen3.5-122B-A10B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Qwen3.5-397B-A17B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Qwen3.6-27B-NVFP4": (0, "config-only", "config", "all"),
    "nvidia__Qwen3.6-35B-A3B-NVFP4": (0, "config-only", "config", "all"),
    "openai__gpt-oss-20b__EchoCog": (0, "names-only", "config", "all"),
    "remodlai__qwen-2.5-vl-7b-instruct-lexiq": (0, "names-only", "config", "all"),
}


def _folders() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []


@pytest.mark.corpus
def test_the_table_names_every_corpus_folder() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus not available")
    assert sorted(CORPUS_TABLE) == _folders()


@pytest.mark.corpus
@pytest.mark.parametrize("folder", sorted(CORPUS_TABLE))
def test_corpus_folder_audits(folder: str, corpus_audit: CorpusAudits) -> None:
    exit_code, level, shapes, sized = CORPUS_TABLE[folder]
    result = corpus_audit(folder)
    if exit_code == 2:
        assert result.rc == 2 and result.err.count("\n") == 1 and "does not handle" in result.err
        return
    assert result.rc in (0, 1), result.err
    report = result.json()
    # jsonschema walks ~0.3 ms per module: the DeepSeek-V4 configs have 34k-72k units, all of one shape
    jsonschema.validate({**report, "modules": report["modules"][:500]}, SCHEMA)
    assert (report["evidence_level"], report["shapes"]["source"]) == (level, shapes)
    weighted = [m for m in report["modules"] if m["kind"] in LINEAR_KINDS]
    assert weighted
    unsized = [m["name"] for m in weighted if m["params"] == 0 or m["bytes"] == 0]
    assert {"all": not unsized, "none": len(unsized) == len(weighted),
            "some": 0 < len(unsized) < len(weighted)}[sized], unsized[:5]
    assert all(m["evidence"]["confidence"] == level for m in weighted)
    cov = report["coverage"]
    if sized != "none":
        assert cov["params_known"] and cov["total_params"] > 0 and cov["total_bytes"] > 0
    if shapes is None:
        assert report["shapes"]["detail"] and not cov["params_known"]  # and it says why
    elif sized != "all":
        assert "unsized-modules" in result.codes()
    if report["producer"] is None:
        assert "no-quantization-config" in result.codes() and not any(m["algo"] for m in report["modules"])


# --- a dense checkpoint, and the same model from its config alone -----------------------------------

TINY_LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
              "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
              "head_dim": 8, "vocab_size": 32, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
              "tie_word_embeddings": False, "torch_dtype": "float32"}


def _tiny_dense(root: Path, *, with_tensors: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(TINY_LLAMA))
    if not with_tensors:
        return root
    shapes = {"model.embed_tokens.weight": (32, 16), "model.norm.weight": (16,), "lm_head.weight": (32, 16)}
    for i in range(2):
        p = f"model.layers.{i}"
        shapes |= {f"{p}.input_layernorm.weight": (16,), f"{p}.post_attention_layernorm.weight": (16,),
                   f"{p}.self_attn.q_proj.weight": (16, 16), f"{p}.self_attn.k_proj.weight": (8, 16),
                   f"{p}.self_attn.v_proj.weight": (8, 16), f"{p}.self_attn.o_proj.weight": (16, 16),
                   f"{p}.mlp.gate_proj.weight": (32, 16), f"{p}.mlp.up_proj.weight": (32, 16),
                   f"{p}.mlp.down_proj.weight": (16, 32)}
    save_file({n: np.zeros(s, np.float32) for n, s in shapes.items()}, str(root / "model.safetensors"))
    return root


def _index_only(ckpt: Path) -> Path:
    """``ckpt`` with its ``model.safetensors`` replaced by an index naming its tensors (names, no shards)."""
    raw = (ckpt / "model.safetensors").read_bytes()
    names = [n for n in json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]) if n != "__metadata__"]
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": dict.fromkeys(names, "model.safetensors")}))
    (ckpt / "model.safetensors").unlink()
    return ckpt


def test_dense_checkpoint_is_nothing_quantized(tmp_path: Path, cli) -> None:
    result = cli("audit", _tiny_dense(tmp_path / "dense"), "--format", "json")
    assert result.rc == 0 and result.err == ""
    report = result.json()
    jsonschema.validate(report, SCHEMA)
    assert (report["producer"], report["quant_algo"], report["evidence_level"]) == (None, None, "headers")
    assert result.codes() == {"no-quantization-config"}
    assert set(report["coverage"]["by_algo"]) == {"unquantized"}
    assert {m["rule"] for m in report["modules"] if m["kind"] != "other"} == {"no-config"}
    # embeddings + head, per layer q/o + k/v + gate/up/down + 2 norms, final norm
    assert report["coverage"]["total_params"] == 2 * 512 + 2 * (2 * 256 + 2 * 128 + 3 * 512 + 2 * 16) + 16
    assert "nothing quantized" in cli("audit", tmp_path / "dense").out


def test_config_only_sizes_equal_the_headers(tmp_path: Path, cli) -> None:
    """The same model from config.json alone: the same modules, parameters and (dense) bytes."""
    dense = cli("audit", _tiny_dense(tmp_path / "dense"), "--format", "json").json()
    config_only = cli("audit", _tiny_dense(tmp_path / "config", with_tensors=False), "--format", "json")
    assert config_only.rc == 0
    report = config_only.json()
    assert report["evidence_level"] == "config-only" and "config-only" in config_only.codes()
    assert report["shapes"] == {"source": "config", "detail": report["shapes"]["detail"]}
    assert "LlamaForCausalLM" in report["shapes"]["detail"]
    sizes = {m["name"]: (m["kind"], m["params"], m["bytes"]) for m in report["modules"]}
    assert sizes == {m["name"]: (m["kind"], m["params"], m["bytes"]) for m in dense["modules"]}


@pytest.mark.parametrize("fixture", ["modelopt-nvfp4", "ct-w4a16", "modelopt-fp8", "bnb-nf4", "ct-qwen3-moe-w4a16"])
def test_config_only_estimates_track_the_real_checkpoint(tmp_path: Path, cli, fixture: str) -> None:
    """A quantized fixture's config files alone: every module resolved as with its tensors, the same
    parameters, and bytes estimated within 10 % of the stored ones (bitsandbytes adds ~1.2 KiB of
    fixed quant-state tensors per module, which the estimate leaves out: allowed for on these tiny layers)."""
    full = copy_fixture(tmp_path, fixture)
    headers = cli("audit", full, "--format", "json").json()
    for path in full.glob("*.safetensors"):
        path.unlink()
    result = cli("audit", full, "--format", "json")
    report = result.json()
    assert result.rc in (0, 1) and report["evidence_level"] == "config-only"
    real = {m["name"]: m for m in headers["modules"]}
    for m in report["modules"]:
        if m["kind"] not in LINEAR_KINDS or m["name"] not in real:
            continue
        assert (m["algo"], m["params"]) == (real[m["name"]]["algo"], real[m["name"]]["params"]), m["name"]
        stored = real[m["name"]]["bytes"]
        assert abs(m["bytes"] - stored) <= max(0.1 * stored, 1280 * m["parts"] if fixture.startswith("bnb") else 0), m["name"]
    assert report["coverage"]["by_algo"].keys() == headers["coverage"]["by_algo"].keys()


def test_index_only_sized_from_config(tmp_path: Path, cli) -> None:
    ckpt = copy_fixture(tmp_path, "modelopt-mixed")
    headers = cli("audit", ckpt, "--format", "json").json()
    report = cli("audit", _index_only(ckpt), "--format", "json").json()
    assert (report["evidence_level"], report["shapes"]["source"]) == ("names-only", "config")
    assert {m["name"]: m["params"] for m in report["modules"]} == {m["name"]: m["params"] for m in headers["modules"]}


def test_without_transformers_names_come_from_the_index(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = _index_only(copy_fixture(tmp_path, "modelopt-fp8"))
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    result = cli("audit", ckpt, "--format", "json")
    report = result.json()
    assert result.rc == 0 and report["modules"] and report["shapes"]["source"] is None
    assert report["shapes"]["detail"] == ("shapes needs transformers, which is not installed: install the 'run' "
                                          "extra: pip install 'quantresolve[run]' (from a clone: pip install -c "
                                          "constraints.txt -e '.[run]')")
    assert "install the 'run' extra" in next(f["message"] for f in report["findings"] if f["code"] == "names-only")


def test_unsized_modules_are_said_once(tmp_path: Path) -> None:
    from quantresolve.checkpoint.shapes import ModelShapes

    ckpt = _index_only(_tiny_dense(tmp_path / "dense"))
    partial = ModelShapes({"lm_head.weight": ("F32", (32, 16))}, source="a partial model")
    report = audit_checkpoint(ckpt, shapes=lambda _root: partial).to_json()
    (unsized,) = [f for f in report["findings"] if f["code"] == "unsized-modules"]  # one group, every module
    assert (unsized["severity"], unsized["count"]) == ("info", 20)
    assert unsized["cause"] == ("a checkpoint module with a weight that is not in the model a partial model builds: "
                                "its parameters and bytes are not counted")
    assert "model.layers.1.mlp.down_proj" in unsized["members"]
    assert {m["name"]: m["params"] for m in report["modules"]}["lm_head"] == 512


def test_a_folder_with_nothing_is_still_refused(tmp_path: Path, cli) -> None:
    result = cli("audit", tmp_path)
    assert result.rc == 2 and "no model.safetensors.index.json and no *.safetensors files" in result.err


def test_shape_provider_is_injected_not_imported() -> None:
    """The audit layer names no provider: the CLI passes transformers'."""
    import inspect

    import quantresolve.audit.engine as engine

    assert "integrations" not in inspect.getsource(engine)
    assert transformers_shapes.__module__ == "quantresolve.cli.audit"
