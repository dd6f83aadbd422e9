"""Every model family in the layout its checkpoints are published in, through ``quantresolve run`` with no profile.

Issue 14 part 3: a checkpoint stored the way the hub has it (Mixtral's ``block_sparse_moe.experts.E.w1``,
Qwen2.5-VL's ``model.layers.*`` + ``visual.*``, Gemma-3 as ``language_model.model.*`` or as
``model.language_model.*`` / ``model.vision_tower.vision_model.*``) must load without naming a profile:
``load_quantized`` derives one from transformers' renamings of the class it builds. Each built-in family
profile has a tiny real-producer fixture in its published layout (``fixtures/family_models.py``; earlier
fixtures where one already is), or — where transformers 5.23 or quantresolve cannot run the family — a
test that ``run`` refuses it in one line naming the class.

The new fixtures' references come from the 2-core AVX2 box (no AVX-512), like every other fixture's; the
strict bounds are measured there (``# measured`` below; 0.0 where the load is bit for bit the producer's).
No second machine was available to measure the cross-machine bounds: each is taken from the Llama / seed
fixture with the same producer arithmetic (named in the comment), as measured there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import quantresolve.integrations.transformers as integration
from quantresolve.checkpoint import build_inventory, read_checkpoint
from quantresolve.cli.main import main
from quantresolve.errors import LoadError, QuantResolveError
from quantresolve.integrations.transformers.build import build_empty_model
from quantresolve.integrations.transformers.config import model_config
from quantresolve.integrations.transformers.expert_containers import unfuse_experts
from quantresolve.integrations.transformers.profile_choice import choose_profile
from quantresolve.naming.profiles import builtin_profiles

from ..conftest import FIXTURES, checkpoint_dir, corpus_dir, fixtures_module
from ..references import Tolerance, check_greedy, check_logits, reference_mode
from . import test_fixture_logits, test_moe, test_seed_scenarios
from .loaded import loaded, reference
from .tampered import tampered

pytestmark = pytest.mark.filterwarnings("ignore")

FAMILY_MODELS = fixtures_module("family_models")
#: family profile → its fixtures in the published layout(s)
FAMILY_FIXTURES: dict[str, tuple[str, ...]] = FAMILY_MODELS.family_fixtures()
CASES = [(family, name) for family, names in FAMILY_FIXTURES.items() for name in names]
NEW = {f.fixture: f for f in FAMILY_MODELS.FAMILIES}
BF16_STEP = test_fixture_logits.BF16_STEP

#: New fixtures: max |Δlogit| against reference.safetensors, per mode.
ATOL: dict[str, Tolerance] = {
    "ct-mistral-w4a16": Tolerance(0.009, 0.009),       # 0.0059 (int4pack; 0.0 dense_dequant) | as ct-w4a16
    "ct-qwen2-w8a8": Tolerance(0.012, 0.018),          # 0.0074 (int8pack; 0.0 dense_dequant) | as ct-w8a8
    "modelopt-qwen3-fp8": Tolerance(BF16_STEP, 0.024),     # 0.0 | as modelopt-fp8
    "ct-qwen2.5-vl-nvfp4a16": Tolerance(BF16_STEP, 0.006),  # 0.0 | as ct-nvfp4a16
    # float_gemv_cpu sums in float32 in another order than the reference's bf16 GEMM (one bf16 step on a few
    # outputs), and NVFP4 activation quantization turns such a step into a whole FP4 step of the next layer
    "modelopt-qwen3-vl-nvfp4": Tolerance(0.066, 0.066),  # 0.0435 (float_gemv_cpu; 0.0 dense_dequant) | as strict
    "ct-gemma3-mm-newer": test_seed_scenarios.ATOL["ct-gemma3-mm"],  # 0.0088 (int4pack) | the same model
    "ct-mixtral-fp8-dynamic": Tolerance(BF16_STEP, 0.035),  # 0.0 | as ct-fp8-dynamic
    "ct-minimax-m2-nvfp4a16": Tolerance(BF16_STEP, 0.006),  # 0.0 | as ct-nvfp4a16
    "ct-deepseek-v3-mxfp4a16": Tolerance(BF16_STEP, 0.006),  # 0.0 | as ct-mxfp4a16
    "ct-glm-moe-dsa-nvfp4": Tolerance(BF16_STEP, 0.006),   # 0.0 | as ct-nvfp4 (0.0), with ct-nvfp4a16's margin
}
#: Relative L2 distance of the unquantized model's logits from each new reference (measured here): ours must
#: be clearly closer, so a load that skipped quantization fails on every machine.
DENSE_REL = {
    "ct-mistral-w4a16": 0.2223, "ct-qwen2-w8a8": 0.0151, "modelopt-qwen3-fp8": 0.0464,
    "ct-qwen2.5-vl-nvfp4a16": 0.1382, "modelopt-qwen3-vl-nvfp4": 0.1643, "ct-gemma3-mm-newer": 0.2643,
    "ct-mixtral-fp8-dynamic": 0.0530, "ct-minimax-m2-nvfp4a16": 0.1316, "ct-deepseek-v3-mxfp4a16": 0.1363,
    "ct-glm-moe-dsa-nvfp4": 0.2789,
}
#: Existing fixtures standing for a family: their bounds, from the modules that test them.
EXISTING_ATOL = {**test_fixture_logits.ATOL, **test_moe.ATOL, **test_seed_scenarios.ATOL}

#: How many prefix rules transformers' renamings give each fixture's layout (0: already the model's names).
PREFIX_RULES = {
    "ct-gemma3-mm": 3,        # language_model.model. / vision_tower.vision_model. / multi_modal_projector.
    "ct-gemma3-mm-newer": 1,  # model.vision_tower.vision_model. → model.vision_tower.
    "ct-qwen2.5-vl-nvfp4a16": 4,  # visual. → model.visual.; model.{embed_tokens,layers,norm}. → model.language_model.
    "ct-mixtral-fp8-dynamic": 2,  # model.layers.N.block_sparse_moe. → model.layers.N.mlp., per layer
    "ct-minimax-m2-nvfp4a16": 2,
}

#: Families quantresolve refuses to run, with the class the one-line error names and why.
REFUSED = {
    "kimi-k2.5": ("Kimi_K25ForConditionalGeneration",
                  "transformers converts the vision tower's fused wqkv (chunk + RoPE permutation) on load"),
    "nemotron-h": ("NemotronHExperts", "non-gated experts (up_proj, down_proj): not a layout QuantExperts runs"),
}


def test_every_builtin_profile_has_a_published_layout_fixture_or_a_refusal() -> None:
    assert set(builtin_profiles()) == set(FAMILY_FIXTURES) | set(REFUSED)
    assert not set(FAMILY_FIXTURES) & set(REFUSED)
    assert set(ATOL) == set(NEW) == set(DENSE_REL)


# --------------------------------------------------------------------------- the published layout itself


def _patterns(names) -> set[str]:
    return {re.sub(r"\.\d+(?=\.|$)", ".N", n) for n in names}


def _parents(patterns: set[str]) -> set[str]:
    return {p.rsplit(".", i)[0] for p in patterns for i in range(1, p.count(".") + 1)}


def test_fixture_modules_are_the_published_ones() -> None:
    """Headers only: every quantized module a new fixture stores is one the family's published index stores
    (``fixtures/families/<family>/checkpoint``), and every other module lies in a subtree that index has
    (the family tables list what engines resolve, not every norm). Qwen2.5-VL, whose family table has the
    newer layout, is in the Qwen/Qwen2.5-VL hub layout (``model.layers.*``, ``visual.*``); Gemma-3's newer
    layout has no table here."""
    for name, family in NEW.items():
        modules = build_inventory(read_checkpoint(checkpoint_dir(name))).modules
        stored = _patterns(modules)
        quantized = _patterns(n for n, m in modules.items() if any(s.startswith("weight_") for s in m.params))
        if family.profile == "qwen2.5-vl":
            assert {p.split(".")[0] for p in stored} == {"model", "visual", "lm_head"}, name
            assert not any(p.startswith("model.language_model.") for p in stored), name
            continue
        if family.profile == "gemma3-mm":
            assert {".".join(p.split(".")[:2]) for p in stored} == {"model.language_model", "model.vision_tower",
                                                                     "model.multi_modal_projector"}, name
            continue
        published = _patterns(build_inventory(read_checkpoint(FIXTURES / "families" / family.profile /
                                                              "checkpoint")).modules)
        assert quantized and quantized <= published, (name, sorted(quantized - published))
        outside = {p for p in stored - published if p.rsplit(".", 1)[0] not in _parents(published)}
        assert not outside, (name, sorted(outside))


# --------------------------------------------------------------------------- the new fixtures against the producer


def _inputs(ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in ref.items() if k not in test_seed_scenarios.OUTPUTS}


@pytest.mark.parametrize("name", sorted(NEW))
def test_default_load_matches_the_producer(name: str) -> None:
    """``load_quantized`` with no profile: logits and greedy tokens against the producer's reference (images too)."""
    model, ref = loaded(name), reference(name)
    mode = reference_mode(checkpoint_dir(name))
    bound = ATOL[name].for_mode(mode)
    inputs = _inputs(ref)
    with torch.no_grad():
        ours = model(**inputs).logits.float()
        generated = model.generate(**inputs, max_new_tokens=ref["greedy_logits"].shape[1], do_sample=False,
                                   pad_token_id=1)
    check_logits(ours, ref["logits"], bound, dense_rel=DENSE_REL[name], label=f"{name} ({mode})")
    check_greedy(generated, ref["greedy_ids"], ref["greedy_logits"], inputs["input_ids"].shape[1], bound)
    report = model.quantresolve_report
    assert report.profile == f"transformers:{NEW[name].architecture}"
    quantized = {r.algo for r in report.layers if r.algo is not None}
    assert quantized and all(not r.algo or r.backend != "dense" for r in report.layers)


# --------------------------------------------------------------------------- quantresolve run, no profile


@pytest.fixture
def cached_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` loads through the per-process cache (:mod:`.loaded`); it must ask for the default profile."""

    def load(path: str, profile: object = None, backend: object = None, deny: object = (), device: object = "cpu",
             dtype: object = None):
        assert profile is None and backend is None and not deny and device == "cpu" and dtype is None
        return loaded(Path(path).name)

    monkeypatch.setattr(integration, "load_quantized", load)


def _run_json(capsys: pytest.CaptureFixture[str], name: str, ids: list[int], new: int) -> dict:
    rc = main(["run", str(checkpoint_dir(name)), "--prompt-ids", ",".join(map(str, ids)),
               "--max-new-tokens", str(new), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == "", err
    return json.loads(out)


@pytest.mark.parametrize(("family", "name"), CASES)
def test_run_with_no_profile(family: str, name: str, capsys: pytest.CaptureFixture[str], cached_loads) -> None:
    """``quantresolve run CKPT`` (no ``--profile``) on the family's published layout.

    Text models: the generated ids are the reference's greedy tokens (up to a near-tie of the reference).
    Multimodal references carry an image the command line cannot pass: ``run``'s ids on the prompt's token
    ids are the default-path model's own, whose image-conditioned logits the tests above and
    ``test_seed_scenarios`` hold to the reference.
    """
    ref = reference(name)
    prompt = ref["input_ids"][0].tolist()
    new = ref["greedy_logits"].shape[1]
    data = _run_json(capsys, name, prompt, new)
    model = loaded(name)
    assert data["profile"] == f"transformers:{type(model).__name__}"
    rules = PREFIX_RULES.get(name, 0)
    reason = data["profile_reason"]
    assert reason.startswith(f"derived from transformers' renamings of {type(model).__name__} (")
    assert reason.endswith(f"({rules} prefix rule{'s' if rules != 1 else ''})" if rules else "the model's)")
    generated = torch.tensor([data["sequence"]])
    if set(_inputs(ref)) == {"input_ids"}:
        bound = (ATOL.get(name) or EXISTING_ATOL[name]).for_mode(reference_mode(checkpoint_dir(name)))
        check_greedy(generated, ref["greedy_ids"], ref["greedy_logits"], len(prompt), bound)
    else:
        with torch.no_grad():
            own = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                 max_new_tokens=new, do_sample=False,
                                 pad_token_id=model.generation_config.eos_token_id)
        assert data["generated_ids"] == own[0, len(prompt):].tolist()


# --------------------------------------------------------------------------- families run refuses


def _synthetic(tmp_path: Path, family: str, config: dict) -> Path:
    """The family's published tensor names (``fixtures/families/<family>``) as tiny dense tensors, a tiny config
    transformers builds, and a compressed-tensors W4A16 section: enough to reach the refusal."""
    index = json.loads((FIXTURES / "families" / family / "checkpoint" / "model.safetensors.index.json").read_text())
    names = sorted({n for n in index["weight_map"]})
    path = tmp_path / family
    path.mkdir()
    save_file({n: torch.zeros(2, dtype=torch.bfloat16) for n in names}, str(path / "model.safetensors"))
    config["quantization_config"] = {"quant_method": "compressed-tensors", "format": "pack-quantized",
                                     "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                                         "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
                                         "group_size": 128}}}, "ignore": ["lm_head"]}
    (path / "config.json").write_text(json.dumps(config))
    return path


MLA = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
       "num_key_value_heads": 2, "vocab_size": 256, "n_routed_experts": 4, "num_experts_per_tok": 2,
       "moe_intermediate_size": 64, "first_k_dense_replace": 1, "q_lora_rank": 32, "kv_lora_rank": 32,
       "qk_rope_head_dim": 16, "qk_nope_head_dim": 16, "v_head_dim": 32, "n_group": 1, "topk_group": 1}
TINY_CONFIGS = {
    # The published config names the remote-code class; transformers' own is Kimi_K25ForConditionalGeneration.
    "kimi-k2.5": {"architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25",
                  "text_config": {**MLA, "model_type": "deepseek_v3"}, "projection_hidden_size": 32,
                  "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "patch_size": 4, "pos_emb_height": 8,
                                    "pos_emb_width": 8},
                  "auto_map": {"AutoModelForCausalLM": "modeling_kimi_k25.KimiK25ForConditionalGeneration"}},
    "nemotron-h": {"architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "hidden_size": 64,
                   "intermediate_size": 128, "num_hidden_layers": 3, "hybrid_override_pattern": "M*E",
                   "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 256,
                   "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
                   "moe_shared_expert_intermediate_size": 64, "mamba_num_heads": 4, "mamba_head_dim": 16,
                   "ssm_state_size": 16, "n_groups": 1},
}


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_run_refuses_in_one_line_naming_the_class(family: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _synthetic(tmp_path, family, dict(TINY_CONFIGS[family]))
    rc = main(["run", str(path), "--prompt-ids", "1,2,3", "--max-new-tokens", "2"])
    out, err = capsys.readouterr()
    cls, _why = REFUSED[family]
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("quantresolve run: error: ") and cls in err, err


def test_a_layer_the_model_class_does_not_load_is_skipped_as_transformers_skips_it(tmp_path: Path) -> None:
    """DeepSeek-V3 checkpoints ship their multi-token-prediction layer as ``model.layers.61.*`` (its experts
    too); ``DeepseekV3ForCausalLM`` declares it does not load it. ``run`` skips exactly those, says so, and
    still refuses any other stray tensor."""
    def mtp(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        extra = {k.replace("model.layers.1.", "model.layers.61."): v.clone() for k, v in t.items()
                 if k.startswith("model.layers.1.")}
        return {**t, **extra, "model.layers.61.eh_proj.weight": torch.zeros(64, 128, dtype=torch.bfloat16)}

    path = tampered("ct-deepseek-v3-mxfp4a16", tmp_path, tensors=mtp)
    model = integration.load_quantized(path)
    report = model.quantresolve_report
    assert report.ignored and all(n.startswith("model.layers.61.") for n in report.ignored)
    assert "model.layers.61.mlp.experts.0.gate_proj.weight_packed" in report.ignored
    ref = reference("ct-deepseek-v3-mxfp4a16")
    with torch.no_grad():
        assert torch.equal(model(ref["input_ids"]).logits, loaded("ct-deepseek-v3-mxfp4a16")(ref["input_ids"]).logits)
    stray = tampered("ct-deepseek-v3-mxfp4a16", tmp_path / "stray",
                     tensors=lambda t: {**t, "model.layers.6.extra.weight": torch.zeros(2)})
    with pytest.raises(LoadError, match=r"nothing in the model consumes: model\.layers\.6\.extra\.weight"):
        integration.load_quantized(stray)


# --------------------------------------------------------------------------- real hub indexes (../shared/corpus)

#: Corpus folder with a published ``model.safetensors.index.json`` → how the default path treats its names:
#: the number of prefix rules transformers' renamings give (every stored module then lands on a built one),
#: or the refusal the load gives (one line, naming what transformers or quantresolve lacks).
CORPUS_LAYOUTS: dict[str, int | str] = {
    "Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM": 0,
    "allenai__Molmo-7B-D-0924__NF4-reubzdubz": "knows no model_type 'molmo'",
    "allenai__olmOCR-7B-0225-preview__BrianYAU-NTEC": 4,  # Qwen2-VL: model.* → model.language_model.*, visual.*
    "bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding": "cannot build Qwen3_5MoeForConditionalGeneration",
    "deepseek-ai__DeepSeek-OCR-2__sen-ye": "knows no model_type 'deepseek_vl_v2'",
    "google__gemma-4__victortorresa94-del": 0,
    "google__medgemma-27b-it": 3,  # Gemma-3's older layout
    "ibm-granite__granite-3.1-1b-a400m-instruct": "GraniteMoeExperts",
    "meta-llama__Llama-3.2-3B-Instruct": 0,
    "microsoft__WizardLM-2-8x22B": 56,  # Mixtral: model.layers.N.block_sparse_moe. → model.layers.N.mlp., per layer
    "nvidia__Cosmos-Reason2__sarcascoder": 0,  # Qwen3-VL
    "openai__gpt-oss-20b__EchoCog": 0,  # fused experts load into FusedGateUpExperts, stacked per projection
    "remodlai__qwen-2.5-vl-7b-instruct-lexiq": 4,
}


@pytest.mark.parametrize("folder", sorted(CORPUS_LAYOUTS))
def test_default_profile_on_real_published_indexes(folder: str) -> None:
    """The model built on the meta device from the real ``config.json``, the profile derived from the real
    index's names (headers of the index only): every stored module is one the model has."""
    root = corpus_dir(folder)
    modules = build_inventory(read_checkpoint(root)).modules
    expected = CORPUS_LAYOUTS[folder]
    try:
        model = build_empty_model(model_config(root), torch.bfloat16)
        choice = choose_profile(None, model, modules, unfuse_experts(model))
    except QuantResolveError as err:
        assert isinstance(expected, str) and expected in str(err) and "\n" not in str(err), str(err)
        return
    assert isinstance(expected, int), choice.reason
    assert len(choice.profile.mapper.orig_to_new_prefix) == expected, choice.reason
    built = dict(model.named_modules())
    assert [n for n in modules if choice.profile.mapper.map_name(n) not in built] == []
