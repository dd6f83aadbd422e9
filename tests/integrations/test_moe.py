"""MoE checkpoints through ``load_quantized``: transformers 5's 3-D experts modules run one linear per expert.

Fixtures (``fixtures/moe_models.py``): a tiny ``Qwen3MoeForCausalLM`` (4 experts, top-2) quantized by
compressed-tensors (W4A16, FP8 on per-expert linears) and by ModelOpt (NVFP4 on the fused experts,
exported per expert). The references come from the 2-core AVX2 box (no AVX-512); tolerances, per mode
(:mod:`tests.references`), are ~1.5x the max |Δlogit| measured with the auto backends — strict: on that
box against its own references, one bf16 step (0.004 at |logit| ≈ 0.73) where the load is bit-exact;
cross-machine: this box's loads against references an AVX-512 machine had computed, and those against
this box's. Greedy tokens may part only at a near-tie of the reference.
"""

from __future__ import annotations

import importlib
import re
import warnings

import pytest
import torch
from accelerate import init_empty_weights
from torch import nn
from transformers import PretrainedConfig

from quantresolve.audit.engine import audit_checkpoint
from quantresolve.dispatch import QuantLinear
from quantresolve.errors import ConflictingExpertsError, LoadError
from quantresolve.integrations.transformers import load_quantized
from quantresolve.integrations.transformers.expert_containers import (
    KNOWN_EXPERTS,
    find_expert_containers,
    unfuse_experts,
)
from quantresolve.integrations.transformers.experts import QuantExperts
from quantresolve.integrations.transformers.fused import ShardView
from quantresolve.resolve.resolver import Resolver

from ..conftest import checkpoint_dir
from ..references import Tolerance, check_greedy, check_logits, reference_mode
from .loaded import loaded, logits, reference
from .tampered import tampered

pytestmark = pytest.mark.filterwarnings("ignore")

#: fixture → max |Δlogit| against reference.safetensors, per mode (measured strict | cross-machine).
ATOL = {
    "ct-qwen3-moe-w4a16": Tolerance(0.009, 0.009),  # 0.0059 (int4pack_cpu; 0.0 dense_dequant) | 0.0059; 0.0039
    "ct-qwen3-moe-fp8": Tolerance(0.004, 0.011),    # 0.0 | 0.0071; 0.0071
    "modelopt-qwen3-moe-nvfp4": Tolerance(0.004, 0.004),  # 0.0 | 0.0; 0.0
}
MOE_FIXTURES = sorted(ATOL)
CONTAINERS = ("model.layers.0.mlp.experts", "model.layers.1.mlp.experts")
ROLES = ("gate_proj", "up_proj", "down_proj")

#: Each registry class → its transformers model module and the model type whose conversion mapping
#: names the per-expert checkpoint projections.
EXPERTS_CLASSES = {
    "DeepseekV3Experts": ("deepseek_v3", "deepseek_v3"),
    "Glm4MoeExperts": ("glm4_moe", "glm4_moe"),
    "GlmMoeDsaExperts": ("glm_moe_dsa", "glm_moe_dsa"),
    "GptOssExperts": ("gpt_oss", "gpt_oss"),
    "MiniMaxM2Experts": ("minimax_m2", "minimax_m2"),
    "MixtralExperts": ("mixtral", "mixtral"),
    "OlmoeExperts": ("olmoe", "olmoe"),
    "Qwen2MoeExperts": ("qwen2_moe", "qwen2_moe"),
    "Qwen3MoeExperts": ("qwen3_moe", "qwen3_moe"),
    "Qwen3NextExperts": ("qwen3_next", "qwen3_next"),
    "Qwen3_5MoeExperts": ("qwen3_5_moe", "qwen3_5_moe_text"),
}
IMPLEMENTATIONS = ("eager", "grouped_mm", "batched_mm")


def _experts_class(name: str) -> type[nn.Module]:
    module = EXPERTS_CLASSES[name][0]
    return getattr(importlib.import_module(f"transformers.models.{module}.modeling_{module}"), name)


def _tiny_experts(cls: type[nn.Module], implementation: str, experts: int = 4, hidden: int = 32,
                  inter: int = 16) -> nn.Module:
    """``cls`` on a config carrying every attribute name the registry's classes read, random bf16 weights."""
    cfg = PretrainedConfig(num_experts=experts, n_routed_experts=experts, num_local_experts=experts,
                           hidden_size=hidden, moe_intermediate_size=inter, intermediate_size=inter,
                           hidden_act="silu", swiglu_alpha=1.702, swiglu_limit=7.0,
                           experts_implementation=implementation)
    torch.manual_seed(0)
    module = cls(cfg).to(torch.bfloat16)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.2)
    return module


def _routing(tokens: int, experts: int, top_k: int, seed: int = 1,
             weights_dtype: torch.dtype = torch.bfloat16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, 32, generator=g).to(torch.bfloat16)
    index = torch.stack([torch.randperm(experts, generator=g)[:top_k] for _ in range(tokens)])
    weights = torch.rand(tokens, top_k, generator=g).softmax(-1).to(weights_dtype)
    return x, index, weights


# --------------------------------------------------------------------------- the module against transformers


def _expert_weights(name: str, original: nn.Module):
    """expert → {checkpoint role: (weight [out, in], bias or None)} of ``original``'s dense 3-D parameters."""
    layout = KNOWN_EXPERTS[name]
    gate_up, down = original.gate_up_proj.detach().clone(), original.down_proj.detach().clone()
    if layout.stacked:  # gpt-oss: [E, in, out], interleaved gate/up kept as one projection, with biases
        biases = original.gate_up_proj_bias.detach().clone(), original.down_proj_bias.detach().clone()
        return lambda e: {layout.checkpoint[0]: (gate_up[e].t(), biases[0][e]),
                          layout.checkpoint[1]: (down[e].t(), biases[1][e])}
    inter = down.shape[-1]
    gate, up, down_name = layout.checkpoint
    return lambda e: {gate: (gate_up[e, :inter], None), up: (gate_up[e, inter:], None), down_name: (down[e], None)}


def test_every_registry_class_is_checked() -> None:
    assert set(EXPERTS_CLASSES) == set(KNOWN_EXPERTS)


#: (implementation, routing-weight dtype): bf16 weights (Qwen-style routers) for every implementation; float32
#: weights (Mixtral's, DeepSeek-V3's routers) for the default reductions — eager adds them in bf16 instead.
ROUTINGS = [*((i, torch.bfloat16) for i in IMPLEMENTATIONS), ("grouped_mm", torch.float32),
            ("batched_mm", torch.float32)]


@pytest.mark.parametrize(("implementation", "weights_dtype"), ROUTINGS)
@pytest.mark.parametrize("name", sorted(KNOWN_EXPERTS))
def test_quant_experts_compute_what_transformers_computes(name: str, implementation: str,
                                                         weights_dtype: torch.dtype) -> None:
    """Same dense weights in the transformers module and in per-expert linears: bit-identical (top-2, 11 tokens,
    one token routed to two experts that other tokens skip)."""
    original = _tiny_experts(_experts_class(name), implementation)
    weights_of = _expert_weights(name, original)
    holder = nn.Module()
    holder.experts = original
    quant = unfuse_experts(holder)["experts"]
    assert holder.experts is quant and quant.replaces == name
    for e in range(quant.num_experts):
        for role, (weight, bias) in weights_of(e).items():
            assert isinstance(quant[e].get_submodule(role), nn.Linear)
            dense = type(quant[e].get_submodule(role))(weight.shape[1], weight.shape[0], bias=bias is not None,
                                                         dtype=torch.bfloat16)
            dense.weight.data.copy_(weight)
            if bias is not None:
                dense.bias.data.copy_(bias)
            setattr(quant[e], role, dense)
    x, index, weights = _routing(11, 4, 2, weights_dtype=weights_dtype)
    with torch.no_grad():
        want = original(x, index, weights)
        got = quant(x, index, weights)
    assert got.dtype == want.dtype and torch.equal(got, want)


def test_registry_names_match_transformers_conversion_mapping() -> None:
    """The per-expert names are the ones transformers merges into gate_up_proj (gate, then up) and down_proj."""
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping
    from transformers.core_model_loading import WeightConverter

    for name, (_, model_type) in EXPERTS_CLASSES.items():
        layout = KNOWN_EXPERTS[name]
        if layout.stacked:  # checkpoints keep every expert in one tensor per projection: nothing to merge
            continue
        converters = {tuple(c.target_patterns): c.source_patterns
                      for c in get_checkpoint_conversion_mapping(model_type) or [] if isinstance(c, WeightConverter)}
        merged = {t[0].rsplit(".", 1)[-1]: [re.sub(r"^.*\.\*\.|\.weight$", "", s) for s in src]
                  for t, src in converters.items()}
        gate, up, down = layout.checkpoint
        assert merged.get(layout.gate_up) == [gate, up], (name, merged)
        assert merged.get(layout.down) == [down], (name, merged)


def test_sentinel_expert_slots_contribute_nothing() -> None:
    """Expert parallelism marks slots with ``num_experts``: the eager transformers loop skips them."""
    original = _tiny_experts(_experts_class("Qwen3MoeExperts"), "eager")
    holder = nn.Module()
    holder.experts = original
    gate_up, down = original.gate_up_proj.detach().clone(), original.down_proj.detach().clone()
    quant = unfuse_experts(holder)["experts"]
    for e in range(4):
        for role, weight in zip(ROLES, (gate_up[e, :16], gate_up[e, 16:], down[e]), strict=True):
            dense = nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=torch.bfloat16)
            dense.weight.data.copy_(weight)
            setattr(quant[e], role, dense)
    x, index, weights = _routing(5, 4, 2)
    index[1, 0] = 4
    index[3, 1] = 4
    with torch.no_grad():
        assert torch.equal(quant(x, index, weights), original(x, index, weights))


# --------------------------------------------------------------------------- detection and refusal


def test_unsupported_experts_class_is_refused_by_name() -> None:
    from transformers import GraniteMoeConfig, GraniteMoeForCausalLM

    cfg = GraniteMoeConfig(hidden_size=32, intermediate_size=16, num_hidden_layers=1, num_local_experts=2,
                           num_experts_per_tok=1, num_attention_heads=2, num_key_value_heads=1, vocab_size=64)
    with init_empty_weights():
        model = GraniteMoeForCausalLM(cfg)
    (path,) = find_expert_containers(model)
    with pytest.raises(LoadError, match=rf"{re.escape(path)}: GraniteMoeExperts stores its experts"):
        unfuse_experts(model)


def test_gpt_oss_experts_become_fused_gate_up_linears_with_biases() -> None:
    from transformers import GptOssConfig, GptOssForCausalLM

    from quantresolve.integrations.transformers.gpt_oss_experts import FusedGateUpExperts

    cfg = GptOssConfig(hidden_size=32, intermediate_size=16, num_hidden_layers=1, num_local_experts=2,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=64,
                       layer_types=["full_attention"])
    with init_empty_weights():
        model = GptOssForCausalLM(cfg)
    quant = unfuse_experts(model)["model.layers.0.mlp.experts"]
    assert isinstance(quant, FusedGateUpExperts) and quant.roles == ("gate_up_proj", "down_proj")
    gate_up = model.get_submodule("model.layers.0.mlp.experts.1.gate_up_proj")
    assert (gate_up.in_features, gate_up.out_features, gate_up.bias is not None) == (32, 32, True)
    assert (quant.act_fn.alpha, quant.act_fn.limit) == (cfg.swiglu_alpha, cfg.swiglu_limit)


def test_registry_class_built_with_another_layout_is_refused() -> None:
    module = _tiny_experts(_experts_class("Qwen3MoeExperts"), "eager")
    module.is_transposed = True
    holder = nn.Module()
    holder.experts = module
    with pytest.raises(LoadError, match="is_transposed"):
        unfuse_experts(holder)


def test_detection_is_structural() -> None:
    """Convolutions and 3-D parameters of other modules are not experts; a registry class is, whatever its path."""

    class PositionBias(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.zeros(2, 3, 4))

    model = nn.Module()
    model.conv = nn.Conv1d(4, 4, 3)
    model.bias = PositionBias()
    model.block = nn.Module()
    model.block.ffn = _tiny_experts(_experts_class("MixtralExperts"), "eager")
    assert list(find_expert_containers(model)) == ["block.ffn"]
    quant = unfuse_experts(model)["block.ffn"]
    assert quant.roles == ("w1", "w3", "w2")
    assert model.get_submodule("block.ffn.3.w3").out_features == 16


# --------------------------------------------------------------------------- the fixtures


@pytest.mark.parametrize("name", MOE_FIXTURES)
def test_every_expert_projection_runs_as_resolved(name: str) -> None:
    model = loaded(name)
    resolver = Resolver.from_checkpoint(checkpoint_dir(name), profile="qwen3-moe")
    audit = {m.name: m for m in audit_checkpoint(checkpoint_dir(name)).modules}
    report = model.quantresolve_report
    for container in CONTAINERS:
        experts = model.get_submodule(container)
        assert isinstance(experts, QuantExperts) and experts.num_experts == 4
        moe = resolver.resolve(container, "moe")
        assert moe.rule == "experts" and moe.algo == audit[container].algo
        for e in range(4):
            for role in ROLES:
                prefix = f"{container}.{e}.{role}"
                layer = model.get_submodule(prefix)
                assert isinstance(layer, QuantLinear)
                assert layer.scheme == resolver.resolve(prefix, "linear").scheme == moe.scheme
                assert report.layer(prefix).backend == layer.backend
                dense = layer.dequantize()
                assert dense.shape == (layer.out_features, layer.in_features) and dense.dtype == torch.bfloat16
        assert f"{container}: 4 experts (Qwen3MoeExperts), {moe.algo} by rule 'experts'" in report.notes


@pytest.mark.parametrize("name", MOE_FIXTURES)
def test_logits_and_greedy_tokens_match_the_producer(name: str) -> None:
    ref, mode = reference(name), reference_mode(checkpoint_dir(name))
    bound = ATOL[name].for_mode(mode)
    check_logits(logits(name), ref["logits"], bound, label=f"{name} ({mode})")
    with torch.no_grad():
        greedy = loaded(name).generate(ref["input_ids"], max_new_tokens=ref["greedy_ids"].shape[1] - 8,
                                       do_sample=False)
    check_greedy(greedy, ref["greedy_ids"], ref["greedy_logits"], 8, bound)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_loaded_experts_equal_transformers_experts_on_their_dequantized_weights(implementation: str) -> None:
    """The loaded QuantExperts (weight-only, dense_dequant backend) against Qwen3MoeExperts holding the
    experts' ``dequantize()``: bit-identical."""
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeExperts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_quantized(checkpoint_dir("ct-qwen3-moe-w4a16"), backend="dense_dequant")
    quant = model.get_submodule(CONTAINERS[1])
    config = model.config
    config._experts_implementation = implementation
    original = Qwen3MoeExperts(config).to(torch.bfloat16)
    with torch.no_grad():
        for e in range(4):
            gate, up, down = (quant[e].get_submodule(r).dequantize() for r in ROLES)
            original.gate_up_proj[e].copy_(torch.cat([gate, up]))
            original.down_proj[e].copy_(down)
    x, index, weights = _routing(9, 4, 2, seed=7)
    x = torch.nn.functional.pad(x, (0, 128 - 32))
    with torch.no_grad():
        assert torch.equal(quant(x, index, weights), original(x, index, weights))


def test_fused_profile_runs_gate_up_as_one_layer_per_expert() -> None:
    """vLLM's qwen3-moe profile packs gate/up: each expert gets one fused layer, viewed at gate_proj / up_proj."""
    name = "ct-qwen3-moe-w4a16"
    model = loaded(name, "qwen3-moe")
    expert = model.get_submodule("model.layers.0.mlp.experts.2")
    assert isinstance(expert.gate_proj, ShardView) and isinstance(expert.up_proj, ShardView)
    assert expert.gate_proj.fused is expert.gate_up_proj and expert.gate_up_proj.shard_sizes == [128, 128]
    mode = reference_mode(checkpoint_dir(name))
    check_logits(logits(name, "qwen3-moe"), reference(name)["logits"], ATOL[name].for_mode(mode),
                 label=f"{name} ({mode})")


# --------------------------------------------------------------------------- what must fail loudly


def test_conflicting_experts_raise_through_load_quantized(tmp_path) -> None:
    odd = "model.layers.0.mlp.experts.1.down_proj"
    ct = tampered("ct-qwen3-moe-w4a16", tmp_path, config=lambda c: c["quantization_config"]["ignore"].append(odd))
    with pytest.raises(ConflictingExpertsError, match=rf"model\.layers\.0\.mlp\.experts.*{re.escape(odd)}"):
        load_quantized(ct)

    def exclude(data: dict) -> None:
        section = data.get("quantization", data.get("quantization_config"))
        section["exclude_modules" if "exclude_modules" in section else "ignore"].append(odd)

    mo = tampered("modelopt-qwen3-moe-nvfp4", tmp_path, config=exclude, hf_quant=exclude)
    with pytest.raises(ConflictingExpertsError, match=re.escape(odd)):
        load_quantized(mo)


def test_missing_expert_tensor_is_named(tmp_path) -> None:
    gone = "model.layers.1.mlp.experts.2.up_proj.weight_scale"
    path = tampered("ct-qwen3-moe-w4a16", tmp_path, tensors=lambda t: {k: v for k, v in t.items() if k != gone})
    with pytest.raises(LoadError, match=rf"does not provide: {re.escape(gone)}$"):
        load_quantized(path)


def test_missing_expert_projection_is_named(tmp_path) -> None:
    """A whole projection absent: its expert still resolves (by the class target) and its tensors are missing."""
    gone = "model.layers.0.mlp.experts.3.down_proj."
    path = tampered("modelopt-qwen3-moe-nvfp4", tmp_path,
                    tensors=lambda t: {k: v for k, v in t.items() if not k.startswith(gone)})
    with pytest.raises(LoadError, match=re.escape(f"{gone}weight")):
        load_quantized(path)


def test_tensor_of_an_expert_the_model_lacks_is_unconsumed(tmp_path) -> None:
    extra = "model.layers.0.mlp.experts.4.down_proj.weight_scale"

    def add(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**t, extra: t["model.layers.0.mlp.experts.3.down_proj.weight_scale"].clone()}

    with pytest.raises(LoadError, match=rf"nothing in the model consumes: {re.escape(extra)}"):
        load_quantized(tampered("ct-qwen3-moe-w4a16", tmp_path, tensors=add))


def test_experts_the_config_leaves_unquantized_load_as_plain_linears(tmp_path) -> None:
    """Experts stored dense and ignored by the config: nn.Linear per projection, filled from the checkpoint;
    on the dequantized weights the logits equal the quantized load's (dense_dequant) bit for bit."""
    name = "ct-qwen3-moe-w4a16"
    quantized = loaded(name)
    dense = {f"{c}.{e}.{r}": quantized.get_submodule(f"{c}.{e}.{r}").dequantize()
             for c in CONTAINERS for e in range(4) for r in ROLES}

    def densify(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kept = {k: v for k, v in t.items() if k.rsplit(".", 1)[0] not in dense}
        return {**kept, **{f"{m}.weight": w.contiguous() for m, w in dense.items()}}

    path = tampered(name, tmp_path, tensors=densify,
                    config=lambda c: c["quantization_config"]["ignore"].append(r"re:.*mlp\.experts\..*"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_quantized(path, backend="dense_dequant")  # attention stays W4A16: same backend on both
        exact = load_quantized(checkpoint_dir(name), backend="dense_dequant")
    layer = model.get_submodule("model.layers.1.mlp.experts.3.up_proj")
    assert type(layer) is nn.Linear and torch.equal(layer.weight, dense["model.layers.1.mlp.experts.3.up_proj"])
    assert model.quantresolve_report.layer("model.layers.1.mlp.experts.3.up_proj").algo is None
    assert "model.layers.0.mlp.experts: 4 experts (Qwen3MoeExperts), unquantized by rule 'excluded'" in \
        model.quantresolve_report.notes
    ids = reference(name)["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, exact(ids).logits)
