"""Our compressed-tensors rules vs the library's own matching (``compressed_tensors.utils.match``).

On a tiny torch model with real Llama module names, for exact names, ``re:``
patterns, class targets and ignore lists, both must agree on *whether* a
module is quantized and, when exactly one group matches, by *which* group.
The deliberate differences are listed in their own test with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
ct_match = pytest.importorskip("compressed_tensors.utils.match")

from quantresolve import load_config  # noqa: E402
from quantresolve.errors import ResolutionError  # noqa: E402
from quantresolve.resolve.resolver import Resolver  # noqa: E402

INT4 = {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}
FP8_CH = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel"}
FP8_TOK = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token", "dynamic": True}
W8 = {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"}


def g_w4a16(targets: list[str]) -> dict[str, Any]:
    return {"targets": targets, "weights": INT4, "format": "pack-quantized"}


def g_fp8(targets: list[str]) -> dict[str, Any]:
    return {"targets": targets, "weights": FP8_CH, "input_activations": FP8_TOK, "format": "float-quantized"}


def g_w8a16(targets: list[str]) -> dict[str, Any]:
    return {"targets": targets, "weights": W8, "format": "pack-quantized"}


def tiny_llama(layers: int = 2) -> Any:
    nn = torch.nn

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(self, p, nn.Linear(4, 4, bias=False))

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for p in ("gate_proj", "up_proj", "down_proj"):
                setattr(self, p, nn.Linear(4, 4, bias=False))

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self_attn, self.mlp = Attn(), Mlp()
            self.input_layernorm = nn.LayerNorm(4)

    class Inner(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed_tokens = nn.Embedding(8, 4)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.lm_head = Inner(), nn.Linear(4, 8, bias=False)

    return Model()


MODEL = tiny_llama(12)  # 12 layers: model.layers.1 vs model.layers.1x is exercised


def _kind(name: str, module: Any) -> str | None:
    if isinstance(module, torch.nn.Embedding):
        return "embedding"
    if isinstance(module, torch.nn.Linear):
        return "lm_head" if name == "lm_head" else "linear"
    return None


def _library(groups: dict[str, dict[str, Any]], ignore: list[str], name: str, module: Any) -> list[str]:
    return sorted(g for g, spec in groups.items() if ct_match.is_match(name, module, spec["targets"], ignore))


CASES = {
    "class-Linear-ignore-lm_head": ({"group_0": g_w4a16(["Linear"])}, ["lm_head"]),
    "regex-targets-regex-ignore": ({"group_0": g_w4a16(["re:.*mlp.*"])}, ["re:model.layers.1\\..*"]),
    "exact-targets": ({"group_0": g_fp8(["model.layers.0.self_attn.q_proj", "model.layers.11.mlp.down_proj"])}, []),
    "class-ignore": ({"group_0": g_w4a16(["Linear"])}, ["re:.*o_proj$", "Embedding", "lm_head"]),
    "embedding-class": ({"group_0": g_w8a16(["Embedding"])}, []),
    "disjoint-groups": ({"group_0": g_w4a16(["re:.*self_attn.*"]), "group_1": g_fp8(["re:.*mlp.*"])}, ["lm_head"]),
    "prefix-regex-not-a-boundary": ({"group_0": g_w4a16(["Linear"])}, ["re:model.layers.1.*"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_agrees_with_library(case: str) -> None:
    groups, ignore = CASES[case]
    cfg = load_config({"quant_method": "compressed-tensors", "format": "mixed-precision",
                       "config_groups": groups, "ignore": ignore})
    resolver = Resolver(cfg, "transformers")
    by_name = {g.name: g.scheme for g in cfg.groups}
    checked = 0
    for name, module in MODEL.named_modules():
        kind = _kind(name, module)
        if kind is None:
            continue
        lib = _library(groups, ignore, name, module)
        ours = resolver.resolve(name, kind)
        assert ours.quantized == bool(lib), (name, lib, ours.explain())
        if len(lib) == 1:
            assert ours.scheme == by_name[lib[0]], name
        checked += 1
    assert checked == 12 * 7 + 2


def test_regex_is_match_not_search_like_the_library() -> None:
    """``re:`` is ``re.match`` (anchored at the start only) in both: ``re:mlp`` matches nothing here,
    ``re:model.layers.1`` also matches layers 10 and 11 (the author wrote no boundary)."""
    lin = torch.nn.Linear(2, 2)
    for name, target, expected in [("model.layers.0.mlp.up_proj", "re:mlp", False),
                                   ("model.layers.11.mlp.up_proj", "re:model.layers.1", True),
                                   ("model.layers.0.mlp.up_proj", "re:.*mlp", True)]:
        assert ct_match.match_name(name, target) is expected
        cfg = load_config({"quant_method": "compressed-tensors", "format": "pack-quantized",
                           "config_groups": {"group_0": g_w4a16([target])}})
        assert Resolver(cfg, "transformers").resolve(name).quantized is expected
    assert ct_match.is_match("x.y", lin, "Linear")


def test_deliberate_differences() -> None:
    """Where we differ on purpose, and why.

    1. Exact beats regex: the library reports every group whose target matches (both "name" matches);
       we rank an exact name above a ``re:`` pattern (vLLM PR 49483), so a per-layer override works.
    2. A fused layer needs *all* present shards targeted: the library's ``fused`` mapping accepts *any*
       shard, which would quantize bf16 shards with a scheme they were never given.
    3. Same-level ties across groups with different schemes are an error: the library (and vLLM) let
       the first group win, which depends on file order.
    """
    lin = torch.nn.Linear(2, 2)
    name = "model.layers.0.mlp.down_proj"
    groups = {"group_0": g_w4a16([name]), "group_1": g_fp8(["re:.*down_proj$"])}
    assert _library(groups, [], name, lin) == ["group_0", "group_1"]
    res = Resolver(load_config({"quant_method": "compressed-tensors", "format": "mixed-precision",
                                "config_groups": groups}), "transformers").resolve(name)
    assert (res.algo, res.rule) == ("W4A16", "target:name")

    fused = {"qkv_proj": ["q_proj", "k_proj", "v_proj"]}
    qkv = "model.layers.0.self_attn.qkv_proj"
    assert ct_match.is_match(qkv, lin, ["model.layers.0.self_attn.q_proj"], fused=fused)
    cfg = load_config({"quant_method": "compressed-tensors", "format": "pack-quantized",
                       "config_groups": {"group_0": g_w4a16(["model.layers.0.self_attn.q_proj"])}})
    with pytest.raises(ResolutionError, match="k_proj"):
        Resolver(cfg, "llama").resolve(qkv)
    full = load_config({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {
        "group_0": g_w4a16([f"model.layers.0.self_attn.{p}_proj" for p in "qkv"])}})
    assert Resolver(full, "llama").resolve(qkv).rule == "target:fused"

    ties = {"group_0": g_w4a16(["re:.*down_proj$"]), "group_1": g_fp8(["re:.*mlp\\.down.*"])}
    assert _library(ties, [], name, lin) == ["group_0", "group_1"]
    with pytest.raises(ResolutionError, match="same precedence"):
        Resolver(load_config({"quant_method": "compressed-tensors", "format": "mixed-precision",
                              "config_groups": ties}), "transformers").resolve(name)
