"""Cross-format equivalence: a ModelOpt NVFP4 export and the same export converted by compressed-tensors.

``ct-from-modelopt-nvfp4`` is ``modelopt-nvfp4`` put through compressed-tensors'
own ``ModelOptNvfp4Converter``. The converter copies the FP4 codes and the E4M3
block scales byte for byte and stores each per-tensor scale as its float32
reciprocal (``weight_global_scale = 1 / weight_scale_2``, ``input_global_scale
= 1 / input_scale``). What that means end to end, as measured here:

- dequantized weights are bit-identical in the compute dtype (bfloat16) for
  every linear; in float32 a block scale may differ by one ulp
  (``s·w2`` versus ``s / (1/w2)``);
- logits are *not* bit-identical, and should not be: each checkpoint's activations are
  quantized the way its own producer does it (:mod:`quantresolve.dispatch.activations`). ModelOpt
  takes the NVFP4 block amax in float32; compressed-tensors divides it by 6 in bfloat16 first and
  multiplies by its global scale, so some blocks get another E4M3 scale. The ModelOpt load is the
  producer's reference bit for bit (on the machine that computed the reference; elsewhere within
  ``modelopt-nvfp4``'s cross-machine bound, :mod:`tests.references`); the converted one differs by
  that arithmetic alone — with the activation quantizers taken out of both, the logits are
  bit-identical.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from quantresolve.dispatch import QuantLinear
from quantresolve.dispatch.activations import InputTransform
from quantresolve.integrations.transformers import load_quantized

from ..conftest import checkpoint_dir
from ..references import STRICT, check_logits, reference_mode
from .test_fixture_logits import ATOL

pytestmark = pytest.mark.filterwarnings("ignore")

MODELOPT, CONVERTED = "modelopt-nvfp4", "ct-from-modelopt-nvfp4"


@pytest.fixture(scope="module")
def tensors() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    return (load_file(str(checkpoint_dir(MODELOPT) / "model.safetensors")),
            load_file(str(checkpoint_dir(CONVERTED) / "model.safetensors")))


@pytest.fixture(scope="module")
def models() -> tuple[nn.Module, nn.Module]:
    return load_quantized(checkpoint_dir(MODELOPT)), load_quantized(checkpoint_dir(CONVERTED))


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint_dir(MODELOPT) / "reference.safetensors"))


def _quantized(model: nn.Module) -> dict[str, QuantLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, QuantLinear)}


def test_the_converted_checkpoint_is_this_export(tensors) -> None:
    """Same codes, same block scales, per-tensor scales exactly the float32 reciprocals (not a second export)."""
    modelopt, converted = tensors
    packed = [k.removesuffix(".weight") for k, v in modelopt.items() if k.endswith(".weight") and v.dtype == torch.uint8]
    assert len(packed) == 14
    for module in packed:
        assert torch.equal(modelopt[f"{module}.weight"], converted[f"{module}.weight_packed"])
        assert torch.equal(modelopt[f"{module}.weight_scale"].view(torch.uint8),
                           converted[f"{module}.weight_scale"].view(torch.uint8))
        for scale, global_scale in (("weight_scale_2", "weight_global_scale"), ("input_scale", "input_global_scale")):
            assert torch.equal(torch.reciprocal(modelopt[f"{module}.{scale}"].float()),
                               converted[f"{module}.{global_scale}"].float().reshape(()))
    for name, value in modelopt.items():  # every dense tensor copied unchanged
        if value.dtype == torch.bfloat16:
            assert torch.equal(value, converted[name]), name


def test_both_load_the_same_layers_by_their_own_producer(models) -> None:
    modelopt, converted = (_quantized(m) for m in models)
    assert sorted(modelopt) == sorted(converted) and len(modelopt) == 14
    for name in modelopt:
        assert (modelopt[name].scheme.producer, converted[name].scheme.producer) == ("modelopt", "compressed-tensors")
        assert modelopt[name].scheme.algo == converted[name].scheme.algo == "NVFP4"
    for model in models:
        assert type(model.lm_head) is nn.Linear


def test_dequantized_weights_are_identical(models) -> None:
    modelopt, converted = (_quantized(m) for m in models)
    for name, layer in modelopt.items():
        a, b = layer.dequantize(), converted[name].dequantize()
        assert a.dtype == b.dtype == torch.bfloat16
        assert torch.equal(a, b), name


def test_float32_block_scales_differ_by_at_most_one_ulp(tensors) -> None:
    """Why the identity above holds in bfloat16 only: ``s·w2`` versus ``s / (1/w2)`` in float32."""
    modelopt, converted = tensors
    differing = 0
    for key in (k for k in modelopt if k.endswith(".weight_scale_2")):
        module = key.removesuffix(".weight_scale_2")
        block = modelopt[f"{module}.weight_scale"].float()
        ours = block * modelopt[key].float()
        theirs = block / converted[f"{module}.weight_global_scale"].float()
        ulp = torch.finfo(torch.float32).eps * ours.abs()
        assert bool(((ours - theirs).abs() <= ulp).all()), module
        differing += int((ours != theirs).sum())
    assert differing > 0  # the float32 difference is real; bfloat16 rounding absorbs it


def test_each_load_follows_its_own_producers_activation_arithmetic(models, reference) -> None:
    ids = reference["input_ids"]
    for model, producer in zip(models, ("modelopt", "compressed-tensors"), strict=True):
        for layer in _quantized(model).values():
            assert {g.transform.act.arith for g, _ in layer._groups} == {producer}
    with torch.no_grad():
        a, b = (m(ids).logits.float() for m in models)
    mode = reference_mode(checkpoint_dir(MODELOPT))  # ModelOpt's export runs as ModelOpt's own model did
    if mode == STRICT:
        assert torch.equal(a, reference["logits"])
    else:
        check_logits(a, reference["logits"], ATOL[MODELOPT].for_mode(mode), label=f"{MODELOPT} ({mode})")
    # compressed-tensors' rounding of the same activations moves the logits by less than NVFP4 itself
    # does: the unquantized model is 0.20 (relative) from this reference.
    assert 0 < float((b - a).norm() / a.norm()) < 0.2


def _without_activation_quantization(model: nn.Module) -> nn.Module:
    for layer in _quantized(model).values():
        for group, _ in layer._groups:
            group.transform = InputTransform(group.transform.pre_quant_scale, None)
    return model


def test_logits_are_bit_identical_without_the_activation_quantizers(models, reference) -> None:
    """The weights are the same numbers in both loads; only the producers' activation rounding differs."""
    a, b = (_without_activation_quantization(load_quantized(checkpoint_dir(name))) for name in (MODELOPT, CONVERTED))
    ids = reference["input_ids"]
    with torch.no_grad():
        la, lb = a(ids).logits, b(ids).logits
        quantized = models[0](ids).logits
    assert torch.equal(la, lb)
    assert not torch.equal(la, quantized)  # the activation quantizers did matter
