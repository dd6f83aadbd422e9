"""Resolve a whole 1T-parameter MoE model (Kimi-K2.5 scale) against a MIXED_PRECISION config.

The config is synthetic but shaped like real ModelOpt exports: 61 layers × 384
routed experts × 3 projections as per-expert ``quantized_layers`` keys (NVFP4),
MLA attention and shared experts (FP8), the first layer dense, keys spelled in
checkpoint space ``model.language_model.layers.N...`` while the model builds
``language_model.model.layers.N...`` (the mapper has to translate every key).

In the same run it times a straightforward reference that does what the peers
do — map keys, then for each module a direct lookup followed by a linear scan
over all keys for parent/child matches — checks both give the same answers,
and prints the ratio. Last line::

    resolve_scale: modules=N total_s=X reference_s=Y speedup=Z
"""

from __future__ import annotations

import argparse
import time
from typing import Any

LAYERS, EXPERTS = 61, 384
ATTN = ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")
PROJ = ("gate_proj", "up_proj", "down_proj")
CKPT, MODEL = "model.language_model.layers", "language_model.model.layers"


def build_config() -> dict[str, Any]:
    layers: dict[str, Any] = {}
    for i in range(LAYERS):
        for a in ATTN:
            layers[f"{CKPT}.{i}.self_attn.{a}"] = {"quant_algo": "FP8"}
        if i == 0:
            for p in PROJ:
                layers[f"{CKPT}.{i}.mlp.{p}"] = {"quant_algo": "FP8"}
            continue
        for p in PROJ:
            layers[f"{CKPT}.{i}.mlp.shared_experts.{p}"] = {"quant_algo": "FP8"}
        for e in range(EXPERTS):
            for p in PROJ:
                layers[f"{CKPT}.{i}.mlp.experts.{e}.{p}"] = {"quant_algo": "NVFP4", "group_size": 16}
    layers["lm_head"] = {"quant_algo": "FP8"}
    return {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "quantized_layers": layers,
            "ignore": ["mtp*"], "producer": {"name": "modelopt", "version": "0.47.0"}}


def model_modules() -> list[tuple[str, str]]:
    """The modules a vLLM-style constructor builds (fused MLA qkv_a, gate_up, one FusedMoE per layer)."""
    out: list[tuple[str, str]] = [("language_model.model.embed_tokens", "embedding")]
    for i in range(LAYERS):
        p = f"{MODEL}.{i}"
        out += [(f"{p}.self_attn.fused_qkv_a_proj", "linear"), (f"{p}.self_attn.q_b_proj", "linear"),
                (f"{p}.self_attn.kv_b_proj", "linear"), (f"{p}.self_attn.o_proj", "linear"),
                (f"{p}.self_attn.attn", "attention")]
        if i == 0:
            out += [(f"{p}.mlp.gate_up_proj", "linear"), (f"{p}.mlp.down_proj", "linear")]
        else:
            out += [(f"{p}.mlp.gate", "linear"), (f"{p}.mlp.experts", "moe"),
                    (f"{p}.mlp.shared_experts.gate_up_proj", "linear"), (f"{p}.mlp.shared_experts.down_proj", "linear")]
    out.append(("language_model.lm_head", "lm_head"))
    return out


PROFILE = {
    "name": "bench-kimi",
    "mapper": {"orig_to_new_prefix": {"model.language_model.": "language_model.model.",
                                      "lm_head.": "language_model.lm_head."},
               "orig_to_new_regex": {"^lm_head$": "language_model.lm_head"}},
    "packed_modules_mapping": {"fused_qkv_a_proj": ["q_a_proj", "kv_a_proj_with_mqa"],
                               "gate_up_proj": ["gate_proj", "up_proj"]},
    "expert_containers": [r"^(?P<container>.*\.mlp\.experts)\.(?P<expert>\d+)\.(?P<proj>gate_proj|up_proj|down_proj)$"],
}


def run_quantresolve(cfg: Any, modules: list[tuple[str, str]]) -> dict[str, str | None]:
    from quantresolve.naming.profiles import Profile
    from quantresolve.resolve.resolver import Resolver

    resolver = Resolver(cfg, Profile.from_dict(PROFILE))
    return {name: resolver.resolve(name, kind).algo for name, kind in modules}


def run_reference(cfg: Any, modules: list[tuple[str, str]]) -> dict[str, str | None]:
    """The straightforward way: map the keys, then answer every lookup by a linear scan over all keys
    (the key itself, or its children: every child must agree), packed shards one by one."""
    from quantresolve.naming.profiles import Profile

    profile = Profile.from_dict(PROFILE)
    key_list = [(profile.mapper.map_name(e.name), e.scheme.algo) for e in cfg.layers]

    def lookup(prefix: str) -> str | None:
        child = prefix + "."
        found: set[str] = set()
        for key, algo in key_list:
            if key == prefix:
                return algo
            if key.startswith(child):
                found.add(algo)
        return found.pop() if len(found) == 1 else (None if not found else "CONFLICT")

    out: dict[str, str | None] = {}
    for name, kind in modules:
        if kind in ("embedding", "attention"):
            out[name] = None if kind == "embedding" else cfg.kv_cache.algo if cfg.kv_cache else None
            continue
        leaf = name.rsplit(".", 1)[-1]
        shards = profile.packed_modules_mapping.get(leaf)
        if shards:
            base = name.rsplit(".", 1)[0]
            algos = {lookup(f"{base}.{s}") for s in shards}
            out[name] = algos.pop() if len(algos) == 1 else "CONFLICT"
        else:
            out[name] = lookup(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; the median is reported")
    args = parser.parse_args()
    from quantresolve import load_config

    raw = build_config()
    modules = model_modules()
    t = time.perf_counter()
    cfg = load_config(raw)  # parsing the config is shared by both sides and timed apart
    load_s = time.perf_counter() - t
    ours, ref = [], []
    answer = reference = None
    for _ in range(args.repeat):  # interleaved
        t = time.perf_counter()
        answer = run_quantresolve(cfg, modules)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        reference = run_reference(cfg, modules)
        ref.append(time.perf_counter() - t)
    assert answer == reference, {k: (answer[k], reference[k]) for k in answer if answer[k] != reference[k]}
    total, reference_s = sorted(ours)[len(ours) // 2], sorted(ref)[len(ref) // 2]
    print(f"config entries: {len(raw['quantized_layers'])}; both sides agree on all {len(modules)} modules")
    print(f"load_config (parse + validate, shared by both sides, not in the ratio): {load_s:.3f} s; "
          f"quantresolve whole model, load_config included: {load_s + total:.3f} s")
    print(f"resolve_scale: modules={len(modules)} total_s={total:.3f} reference_s={reference_s:.3f} "
          f"speedup={reference_s / total:.1f}")


if __name__ == "__main__":
    main()
