"""After ``load_quantized``, every quantized linear holds about its checkpoint's bytes — never the dense weight.

Per module of each float fixture (FP8 per tensor / channel / block, NVFP4 with and without FP4 activations,
MXFP4, W4A8): the bytes the layer holds (:meth:`~quantresolve.dispatch.linear.QuantLinear.held_bytes`: its
backend's state, the checkpoint tensors it keeps, its bias) against the bytes of the checkpoint tensors under
its name (read from the safetensors headers), within ±10 % — except ModelOpt W4A8_AWQ, whose producer computes
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
                  "modelopt-w4a16-nvfp4", "modelopt-w4a8-awq")
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
    rows = []
    for prefix, module in model.named_modules():
        if not isinstance(module, QuantLinear) or module.scheme is None:
            continue
        stored = sum(b for t, b in tensors.items() if t.startswith(prefix + "."))
        assert stored, f"{name}: no checkpoint tensors under {prefix}"
        rows.append((prefix, module.backend, module.held_bytes(), stored))
    assert rows, f"{name}: no quantized linear"
    ratio = RATIO.get(name, 1.0)
    off = [r for r in rows if not 0.9 * ratio * r[3] <= r[2] <= 1.1 * ratio * r[3]]
    assert not off, f"{name}: held vs checkpoint bytes off by more than 10 %: {off}"
    assert {b for _, b, _, _ in rows} - {"float_gemv_cpu", "int4pack_cpu", "avx512_gemv_cpu"} == set(), rows
