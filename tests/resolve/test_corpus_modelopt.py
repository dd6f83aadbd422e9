"""Real ModelOpt configs resolved against a same-family checkpoint index from the corpus.

For each pair the checkpoint's module list comes from the index ``weight_map``
(suffixes stripped with :func:`quantresolve.checkpoint.split_parameter`); every
weight-bearing, non-norm module is resolved in the engine's namespace (the
profile chosen from ``architectures``), and so is every declared fused module
and MoE container. Counts are asserted exactly; every exclude entry that
matches nothing is explained by the index's model being a different size of
the same family (fewer layers, tied LM head, no MTP weights).
"""

from __future__ import annotations

import collections
import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from quantresolve import load_config
from quantresolve.checkpoint import split_parameter
from quantresolve.naming.profiles import profile_for_architectures
from quantresolve.resolve.resolver import Resolver

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
_LAYER = re.compile(r"\.layers\.(\d+)(?:\D|$)")


@dataclass(frozen=True)
class Pair:
    quant: str
    index: str
    profile: str
    counts: dict[tuple[str | None, str], int]
    dead_excludes: int
    dead_layer_keys: int = 0
    fused: dict[tuple[str | None, str], int] = field(default_factory=dict)
    moe: dict[tuple[str | None, str], int] = field(default_factory=dict)


PAIRS = [
    # Gemma-4-31B-IT (60 layers, 10 global layers without v_proj) + a Gemma-4-31B-shaped bf16 index.
    # excluded: 60 × self_attn* (q, k, o + v on 50 sliding layers = 230) + 27 vision layers × 7 .linear
    # (189) + embed_vision.embedding_projection + vision patch_embedder.input_proj = 421;
    # NVFP4: 60 × mlp gate/up/down = 180. Dead: "lm_head" (this index ties the LM head to embed_tokens).
    Pair("nvidia__Gemma-4-31B-IT-NVFP4", "google__gemma-4__victortorresa94-del", "gemma4-mm",
         {(None, "excluded"): 421, ("NVFP4", "default"): 180, (None, "not-quantizable"): 1}, dead_excludes=1,
         # qkv_proj: 60 excluded (global layers vote with q/k only); gate_up_proj: 60 NVFP4
         fused={(None, "excluded"): 60, ("NVFP4", "packed-shards"): 60}),
    # Qwen3.6-35B-A3B (40 layers, 256 experts) + REAP-pruned Qwen3.5-35B-A3B (40 layers, 128 experts).
    # FP8: 10 attention layers × 4 + 30 linear_attn layers × 3 = 130; W4A16_NVFP4 direct: 40 × 3
    # shared_expert + lm_head = 121; container: 40 × 128 × 3 experts covered by one "mlp.experts" key;
    # default (unlisted → unquantized): 30 × (in_proj_a, in_proj_b, conv1d) + 40 × (gate, shared_expert_gate).
    # Dead excludes "mtp*", "mtp.layers.0*": the index ships no MTP weights.
    Pair("nvidia__Qwen3.6-35B-A3B-NVFP4", "bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding", "qwen3.5",
         {("FP8", "direct"): 130, ("W4A16_NVFP4", "direct"): 121, ("W4A16_NVFP4", "container"): 15360,
          (None, "default"): 170, (None, "not-quantizable"): 1}, dead_excludes=2,
         # fused: qkv_proj (10) + in_proj_qkvz (30) FP8; in_proj_ba (30) unlisted; shared_expert.gate_up_proj
         # (40) W4A16_NVFP4; per-expert gate_up_proj (40 × 128) covered by the container key; 40 MoE containers
         fused={("FP8", "packed-shards"): 40, (None, "default"): 30, ("W4A16_NVFP4", "packed-shards"): 40,
                ("W4A16_NVFP4", "container"): 5120}, moe={("W4A16_NVFP4", "direct"): 40}),
    # Qwen3.6-27B is dense with 64 layers; against the 40-layer MoE index only attention / linear_attn of
    # layers 0-39 exist: 130 FP8, lm_head W4A16_NVFP4; everything else is unlisted → unquantized.
    # Dead quantized_layers keys: 64 × 3 dense mlp projections (the index has experts instead) + layers 40-63
    # (6 attention × 4 + 18 linear_attn × 3) = 270.
    Pair("nvidia__Qwen3.6-27B-NVFP4", "bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding", "qwen3.5",
         {("FP8", "direct"): 130, ("W4A16_NVFP4", "direct"): 1, (None, "default"): 15650,
          (None, "not-quantizable"): 1}, dead_excludes=2, dead_layer_keys=270),
    # Qwen3.5-122B-A10B (48 layers): excludes linear_attn*, shared_expert*, self_attn*, model.visual*; 381 excluded =
    # 30 × 6 linear_attn + 10 × 4 attention + 40 × 4 shared_expert(+gate) + lm_head. Dead: entries for layers 40-47 (24) + mtp* + visual (the REAP index ships neither).
    # The 40 routers (mlp.gate) are not excluded: the config says NVFP4, vLLM builds them with
    # quant_config=None → model-unquantized (the profile's unquantized_modules).
    Pair("nvidia__Qwen3.5-122B-A10B-NVFP4", "bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding", "qwen3.5",
         {(None, "excluded"): 381, ("NVFP4", "default"): 15360, (None, "model-unquantized"): 40,
          (None, "not-quantizable"): 1}, dead_excludes=27),
    # Qwen3.5-397B-A17B (60 layers): same style, dead entries are those of layers 40-59.
    Pair("nvidia__Qwen3.5-397B-A17B-NVFP4", "bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding", "qwen3.5",
         {(None, "excluded"): 381, ("NVFP4", "default"): 15360, (None, "model-unquantized"): 40,
          (None, "not-quantizable"): 1}, dead_excludes=62),
    # Llama-3.1-70B-Instruct-FP8 (exclude ["lm_head"]) + Llama-3.1-8B index: 32 × 7 linears FP8, lm_head excluded.
    Pair("nvidia__Llama-3.1-70B-Instruct-FP8", "Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM", "llama",
         {(None, "excluded"): 1, ("FP8", "default"): 224, (None, "not-quantizable"): 1}, dead_excludes=0,
         fused={("FP8", "packed-shards"): 64}),
    # ... + Llama-3.2-3B index: tied embeddings, no lm_head weight → the one exclude entry is dead.
    Pair("nvidia__Llama-3.1-70B-Instruct-FP8", "meta-llama__Llama-3.2-3B-Instruct", "llama",
         {("FP8", "default"): 196, (None, "not-quantizable"): 1}, dead_excludes=1),
]


def _needs(*names: str) -> None:
    for name in names:
        if not (CORPUS / name).is_dir():
            pytest.skip(f"corpus folder {name} not available")


def _modules(index_dir: str) -> dict[str, set[str]]:
    weight_map = json.loads((CORPUS / index_dir / "model.safetensors.index.json").read_text())["weight_map"]
    params: dict[str, set[str]] = collections.defaultdict(set)
    for tensor in weight_map:
        module, param, _ = split_parameter(tensor)
        params[module].add(param)
    return params


def _kind(module: str) -> str:
    if "embed_tokens" in module:
        return "embedding"
    return "lm_head" if module.rsplit(".", 1)[-1] == "lm_head" else "linear"


def _ancestors(names: list[str]) -> set[str]:
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def _layer_count(names: list[str]) -> int:
    return 1 + max(int(m.group(1)) for n in names if (m := _LAYER.search(n)))


@pytest.fixture(scope="module", params=PAIRS, ids=[f"{p.quant}+{p.index.split('__')[0]}" for p in PAIRS])
def case(request: pytest.FixtureRequest) -> tuple[Pair, Resolver, dict[str, set[str]]]:
    pair: Pair = request.param
    _needs(pair.quant, pair.index)
    cfg = load_config(CORPUS / pair.quant)
    arch = json.loads((CORPUS / pair.quant / "config.json").read_text()).get("architectures")
    profile = profile_for_architectures(arch)
    assert profile.name == pair.profile
    params = _modules(pair.index)
    return pair, Resolver(cfg, profile, checkpoint_modules=sorted(params)), params


def test_every_checkpoint_module_resolves_with_expected_counts(case) -> None:  # type: ignore[no-untyped-def]
    pair, resolver, params = case
    counts: collections.Counter[tuple[str | None, str]] = collections.Counter()
    for module in sorted(params):
        if "weight" not in params[module] or "norm" in module.rsplit(".", 1)[-1]:
            continue
        model_name = resolver.namespace.to_model(module)
        assert model_name, module
        res = resolver.resolve(model_name, _kind(module))
        counts[(res.algo, res.rule)] += 1
        if res.rule in ("excluded", "direct", "container"):
            assert res.source is not None
    assert dict(counts) == pair.counts


def test_fused_modules_and_containers_resolve(case) -> None:  # type: ignore[no-untyped-def]
    """Every fused module (profile's packed mapping) whose shards exist resolves without a conflict."""
    pair, resolver, params = case
    if not pair.fused:
        pytest.skip("no fused expectation for this pair")
    fused_names = set()
    for module in params:
        model_name = resolver.namespace.to_model(module)
        if not model_name or "." not in model_name:
            continue
        parent, leaf = model_name.rsplit(".", 1)
        for fused, shards in resolver.profile.packed_modules_mapping.items():
            if leaf in shards and "." not in fused:
                fused_names.add(f"{parent}.{fused}")
    counts: collections.Counter[tuple[str | None, str]] = collections.Counter()
    for name in sorted(fused_names):
        res = resolver.resolve(name)
        counts[(res.algo, res.rule)] += 1
    assert dict(counts) == pair.fused
    containers = set()
    for module in params:
        model_name = resolver.namespace.to_model(module)
        hit = resolver.profile.expert_of(model_name) if model_name else None
        if hit is not None:
            containers.add(hit[0])
    moe: collections.Counter[tuple[str | None, str]] = collections.Counter()
    for name in sorted(containers):
        res = resolver.resolve(name, "moe")
        moe[(res.algo, res.rule)] += 1
    assert dict(moe) == pair.moe


def test_dead_exclude_entries_are_explained(case) -> None:  # type: ignore[no-untyped-def]
    """An exclude entry matching no checkpoint module is dead; each one must be explained by the index
    coming from another size of the family: a layer beyond the index's depth, MTP or vision weights the index does
    not ship, or an LM head the index ties to the embeddings."""
    pair, resolver, params = case
    names = sorted(params)
    present = _ancestors(names)
    n_layers = _layer_count(names)
    dead = []
    for entry in resolver.config.exclude:
        live = (any(fnmatch.fnmatchcase(a, entry.original) for a in present) if entry.kind == "glob"
                else entry.original in present)
        if not live:
            dead.append(entry.original)
    explained = [d for d in dead if d.startswith(("mtp", "model.visual")) or (d == "lm_head" and "lm_head" not in present)
                 or ((m := _LAYER.search(d)) is not None and int(m.group(1)) >= n_layers)]
    assert sorted(dead) == sorted(explained)
    assert len(dead) == pair.dead_excludes


def test_dead_quantized_layer_keys(case) -> None:  # type: ignore[no-untyped-def]
    pair, resolver, _ = case
    ns = resolver.namespace
    dead = [e.name for e in resolver.config.layers if not ns.exists(ns.to_model(e.name) or e.name)]
    assert len(dead) == pair.dead_layer_keys
