"""After ``load_quantized``, every quantized linear holds about its checkpoint's bytes — never the dense weight.

Per module of each float fixture (FP8 per tensor / channel / block, NVFP4 with and without FP4 activations,
MXFP4, W4A8): the bytes the layer holds (:meth:`~quantresolve.dispatch.linear.QuantLinear.held_bytes`: its
backend's state, the checkpoint tensors it keeps, its bias) against the bytes of the checkpoint tensors under
its name (read from the safetensors headers; the held bytes counted per K actually stored, i.e. without the
kernels' padding of K to whole blocks of 64; gpt-oss' experts, one linear per expert slicing the fused
``experts.<proj>_blocks`` / ``_scales`` / ``_bias``, are summed per projection), within ±10 % — except ModelOpt W4A8_AWQ, whose producer computes
with FP8 weights derived from its int4 codes: held as one E4M3 byte per weight, about twice its checkpoint
and half the dense bf16 weight. On a machine where the packed float kernels cannot
run (no AVX2 / FMA / F16C or no compiler) the float layers run on ``dense_dequant`` and the test is skipped.
No timing: RSS and speed are measured in ``benchmarks/load_memory.py`` and ``benchmarks/linear_backends.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quantresolve.checkpoint import read_checkpoint
from quantresolve.dispatch.kernels import float_gemv
from quantresolve.dispatch.linear import QuantLinear

from ..conftest import checkpoint_dir
from .loaded import loaded

pytestmark = pytest.mark.filterwarnings("ignore")

FLOAT_FIXTURES = ("ct-fp8", "ct-fp8-block", "ct-fp8-dynamic", "ct-from-modelopt-nvfp4", "ct-mxfp4a16", "ct-nvfp4",
                  "ct-nvfp4a16", "modelopt-fp8", "modelopt-fp8-pc-pt", "modelopt-mxfp4", "modelopt-nvfp4",
                  "modelopt-w4a16-nvfp4", "modelopt-w4a8-awq",
                  # Hugging Face fine-grained FP8 (128×128 blocks, a ragged edge; AutoFP8 per tensor), gpt-oss MXFP4
                  "fp8-block", "fp8-block-ragged", "fp8-autofp8-static", "mxfp4-gpt-oss")
#: Held / checkpoint bytes where the packed form is not the checkpoint's own size.
RATIO = {"modelopt-w4a8-awq": 2.0}


def checkpoint_tensor_bytes(path: Path) -> dict[str, int]:
    """Tensor name → bytes, from the checkpoint's safetensors headers (no tensor data read)."""
    return {name: int(info.nbytes or 0) for name, info in read_checkpoint(path).tensors.items()}


@pytest.mark.skipif(float_gemv.unavailable() is not None,
                    reason=f"float_gemv_cpu unavailable: {float_gemv.unavailable()}")
@pytest.mark.parametrize("name", FLOAT_FIXTURES)
def test_each_quantized_linear_holds_its_checkpoint_bytes(name: str) -> None:
    tensors = checkpoint_tensor_bytes(checkpoint_dir(name))
    model = loaded(name)
    held: dict[str, list] = {}
    for prefix, module in model.named_modules():
        if not isinstance(module, QuantLinear) or module.scheme is None:
            continue
        key = prefix + "."
        if not any(t.startswith(key) for t in tensors):  # gpt-oss: experts.E.proj is a slice of experts.proj_*
            container, _, proj = prefix.rpartition(".")
            key = f"{container.rpartition('.')[0]}.{proj}_"
        row = held.setdefault(key, [set(), 0, module.in_features])
        row[0].add(module.backend)
        row[1] += module.held_bytes()
    rows = []
    for key, (backends, nbytes, k) in held.items():
        stored = sum(b for t, b in tensors.items() if t.startswith(key))
        assert stored, f"{name}: no checkpoint tensors under {key}"
        # the kernels' layout pads K to whole blocks of 64 weights (gpt-oss' fixture has an intermediate size of
        # 96; real models' K are multiples of 64)
        rows.append((key, ",".join(sorted(backends)), nbytes * k / float_gemv.padded(k), stored))
    assert rows, f"{name}: no quantized linear"
    ratio = RATIO.get(name, 1.0)
    off = [r for r in rows if not 0.9 * ratio * r[3] <= r[2] <= 1.1 * ratio * r[3]]
    assert not off, f"{name}: held vs checkpoint bytes off by more than 10 %: {off}"
    assert {b for _, b, _, _ in rows} == {"float_gemv_cpu"}, rows
