"""load_quantized on one fixture: the contract of issue 6 (module paths, .dequantize(), .backend)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from quantresolve.dispatch import QuantLinear
from quantresolve.integrations.transformers import load_quantized

from ..conftest import checkpoint_dir
from ..references import check_logits, reference_mode
from .test_fixture_logits import ATOL

pytestmark = pytest.mark.filterwarnings("ignore")


def test_ct_w4a16_contract() -> None:
    path = checkpoint_dir("ct-w4a16")
    model = load_quantized(path)
    layer = model.get_submodule("model.layers.0.mlp.down_proj")
    assert isinstance(layer, QuantLinear) and layer.backend
    assert layer.dequantize().shape == (128, 256)
    assert type(model.lm_head) is nn.Linear  # ignored by the config: plain dense linear
    assert not model.training
    ref = load_file(str(path / "reference.safetensors"))
    with torch.no_grad():
        logits = model(ref["input_ids"]).logits.float()
    mode = reference_mode(path)
    check_logits(logits, ref["logits"], ATOL["ct-w4a16"].for_mode(mode), label=f"ct-w4a16 ({mode})")


def test_compute_dtype_override() -> None:
    path = checkpoint_dir("ct-w4a16")
    model = load_quantized(path, dtype="float32")
    assert model.model.norm.weight.dtype == torch.float32
    assert model.get_submodule("model.layers.1.self_attn.o_proj").dtype == torch.float32
    ref = load_file(str(path / "reference.safetensors"))
    with torch.no_grad():
        logits = model(ref["input_ids"]).logits
    assert logits.dtype == torch.float32
    # Same bound as the bf16 load: 0.0055 measured against this box's reference and the AVX-512 one.
    mode = reference_mode(path)
    check_logits(logits, ref["logits"], ATOL["ct-w4a16"].for_mode(mode), label=f"ct-w4a16 float32 ({mode})")


def test_bad_dtype_is_refused() -> None:
    from quantresolve.errors import LoadError

    with pytest.raises(LoadError, match="not a floating torch dtype"):
        load_quantized(checkpoint_dir("ct-w4a16"), dtype="int8")
