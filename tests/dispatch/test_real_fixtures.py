"""Real producer exports (fixtures/checkpoints) load through the loader protocol by their own names.

Skips cleanly when a fixture is absent. Each q_proj of layer 0 is loaded tensor
by tensor, finalized, and run; the auto backend must agree with the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.formats.scheme import bnb_scheme

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"
PREFIX = "model.layers.0.self_attn.q_proj."

CASES = {
    "modelopt-nvfp4": ("modelopt", "NVFP4"), "modelopt-w4a16-nvfp4": ("modelopt", "W4A16_NVFP4"),
    "modelopt-fp8": ("modelopt", "FP8"), "modelopt-fp8-pc-pt": ("modelopt", "FP8_PER_CHANNEL_PER_TOKEN"),
    "modelopt-mxfp4": ("modelopt", "MXFP4"), "modelopt-int4-awq": ("modelopt", "W4A16_AWQ"),
    "modelopt-w4a8-awq": ("modelopt", "W4A8_AWQ"), "modelopt-int8-sq": ("modelopt", "W8A8_SQ_PER_CHANNEL"),
    "ct-w4a16": ("compressed-tensors", "W4A16"), "ct-w4a16-asym": ("compressed-tensors", "W4A16_ASYM"),
    "ct-w8a16": ("compressed-tensors", "W8A16"), "ct-w8a8": ("compressed-tensors", "W8A8"),
    "ct-fp8": ("compressed-tensors", "FP8"), "ct-fp8-dynamic": ("compressed-tensors", "FP8_DYNAMIC"),
    "ct-fp8-block": ("compressed-tensors", "FP8_BLOCK"), "ct-nvfp4a16": ("compressed-tensors", "NVFP4A16"),
    "ct-nvfp4": ("compressed-tensors", "NVFP4"), "ct-mxfp4a16": ("compressed-tensors", "MXFP4A16"),
    "ct-from-modelopt-nvfp4": ("compressed-tensors", "NVFP4"), "bnb-int8": ("bitsandbytes", "BNB_INT8"),
    "bnb-nf4": ("bitsandbytes", "BNB_NF4"),
}


def _group_size(directory: Path) -> int | None:
    hf = directory / "hf_quant_config.json"
    if hf.exists():
        return json.loads(hf.read_text()).get("quantization", {}).get("group_size")
    return None


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_export_loads_and_runs(name: str) -> None:
    from safetensors import safe_open

    directory = ROOT / name
    if not (directory / "model.safetensors").exists():
        pytest.skip(f"fixture {name} not generated")
    producer, label = CASES[name]
    if producer == "bitsandbytes":
        qc = json.loads((directory / "config.json").read_text())["quantization_config"]
        scheme = bnb_scheme(label, double_quant=bool(qc.get("bnb_4bit_use_double_quant")))
    elif producer == "modelopt" and _group_size(directory) and "AWQ" in label:
        scheme = scheme_from_label(label, producer, group_size=_group_size(directory))
    else:
        scheme = scheme_from_label(label, producer)
    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        tensors = {k[len(PREFIX):]: f.get_tensor(k) for k in f.keys() if k.startswith(PREFIX)}  # noqa: SIM118
    n = 128
    layer = make_linear(scheme, 128, n)
    for suffix, t in tensors.items():
        layer.load(suffix, t)
    layer.finalize()
    x = torch.randn(2, 128).to(torch.bfloat16)
    y, ref = layer(x), layer.reference(x)
    assert torch.isfinite(y).all()
    assert float((y.float() - ref).norm() / ref.norm()) < 2e-2, layer.backend
