"""Helpers for the tensor-parallel tests: layer-0 tensors and schemes of the fixture checkpoints.

Schemes come from the resolver (the path an integration takes); tensors are the
producers' own, read from ``fixtures/checkpoints/<name>/model.safetensors``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from quantresolve.dispatch import QuantLinear, make_linear
from quantresolve.dispatch.tp import TPSpec
from quantresolve.formats.scheme import QuantScheme
from quantresolve.resolve.resolver import Resolver

CHECKPOINTS = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"
MLP = "model.layers.0.mlp"
ATTN = "model.layers.0.self_attn"
#: Every single-scheme fixture (the mixed ones are covered by their single-scheme parts).
FIXTURES = ["bnb-int8", "bnb-nf4", "ct-fp8", "ct-fp8-block", "ct-fp8-dynamic", "ct-from-modelopt-nvfp4",
            "ct-mxfp4a16", "ct-nvfp4", "ct-nvfp4a16", "ct-w4a16", "ct-w4a16-asym", "ct-w8a16", "ct-w8a8",
            "modelopt-fp8", "modelopt-fp8-pc-pt", "modelopt-int4-awq", "modelopt-int8-sq", "modelopt-mxfp4",
            "modelopt-nvfp4", "modelopt-w4a16-nvfp4", "modelopt-w4a8-awq"]
#: (in_features, out_features) of the fixtures' layer-0 linears.
SHAPES = {"gate_proj": (128, 256), "up_proj": (128, 256), "down_proj": (256, 128),
          "q_proj": (128, 128), "k_proj": (128, 64), "v_proj": (128, 64)}


def available(name: str) -> bool:
    return (CHECKPOINTS / name / "model.safetensors").is_file()


@cache
def _resolver(name: str) -> Resolver:
    return Resolver.from_checkpoint(CHECKPOINTS / name)


def scheme_of(name: str, prefix: str) -> QuantScheme | None:
    return _resolver(name).resolve(prefix).scheme


def tensors_of(name: str, prefix: str) -> dict[str, torch.Tensor]:
    """``{suffix: tensor}`` of one module, as the checkpoint stores them."""
    from safetensors import safe_open

    lead = prefix + "."
    with safe_open(str(CHECKPOINTS / name / "model.safetensors"), "pt") as f:
        return {key[len(lead):]: f.get_tensor(key) for key in f.keys() if key.startswith(lead)}  # noqa: SIM118


def layer_schemes(name: str) -> dict[str, QuantScheme]:
    """The resolver's scheme of each layer-0 projection, keyed ``module.projection``."""
    modules = {"gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp",
               "q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn"}
    out = {}
    for proj, module in modules.items():
        scheme = scheme_of(name, f"model.layers.0.{module}.{proj}")
        assert scheme is not None, f"{name}: {module}.{proj} is not quantized"
        out[f"{module}.{proj}"] = scheme
    return out


def build(name: str, module: str, projections: list[str], tp: TPSpec | None = None,
          schemes: dict[str, QuantScheme] | None = None) -> QuantLinear:
    """Layer 0's ``module`` (``mlp`` / ``self_attn``) projections as one (fused) layer, loaded and finalized.

    The scheme is the resolver's, or ``schemes[f"{module}.{projection}"]`` when given (so a process
    can run without resolving, which imports compressed-tensors and transformers for CT configs).
    """
    prefix = f"model.layers.0.{module}"
    k = SHAPES[projections[0]][0]
    sizes = [SHAPES[p][1] for p in projections]
    fused = len(projections) > 1
    first = f"{module}.{projections[0]}"
    scheme = schemes[first] if schemes is not None else scheme_of(name, f"model.layers.0.{first}")
    layer = make_linear(scheme, k, sizes if fused else sizes[0], shard_names=projections if fused else None, tp=tp)
    for proj in projections:
        for suffix, tensor in tensors_of(name, f"{prefix}.{proj}").items():
            layer.load(suffix, tensor, shard=proj if fused else None)
    layer.finalize()
    return layer
