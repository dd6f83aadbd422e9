"""``QuantLinear.weight``: nn.Linear-style shape/dtype/device answers, never data, never a parameter."""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.formats.scheme import modelopt_scheme

from .test_backends import _random_tensors

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_weight_answers_shape_dtype_device(dtype: torch.dtype) -> None:
    layer = make_linear(modelopt_scheme("W4A16_AWQ", group_size=128), 256, [32, 32], shard_names=["q", "k"],
                        dtype=dtype)
    w = layer.weight  # before finalize() too: model code asks while building
    assert (w.shape, w.dtype, w.device) == (torch.Size([64, 256]), dtype, torch.device("cpu"))
    assert w.untyped_storage().nbytes() == w.element_size()  # one element, whatever the layer's size
    assert bool(w.isnan().all())  # anything computed from it is NaN, not plausibly wrong


def test_weight_is_no_parameter_and_cannot_be_written_or_replaced() -> None:
    layer = make_linear(modelopt_scheme("W4A16_AWQ", group_size=128), 256, 64)
    _random_tensors(layer)
    layer.finalize()
    assert list(layer.parameters()) == [] and "weight" not in layer.state_dict()
    with pytest.raises(RuntimeError):
        layer.weight.add_(1.0)  # broadcast memory: torch refuses in-place writes
    with pytest.raises(AttributeError):
        layer.weight = torch.zeros(64, 256, dtype=torch.bfloat16)
    with pytest.raises(KeyError):
        layer.weight = torch.nn.Parameter(torch.zeros(64, 256))  # nn.Module: "attribute 'weight' already exists"
    x = torch.randn(2, 256, dtype=torch.bfloat16)
    assert torch.equal(layer(x), layer(x))  # the layer still computes from its own tensors
