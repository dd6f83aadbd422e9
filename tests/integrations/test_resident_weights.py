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

import json
import struct

import pytest

from quantresolve.dispatch.kernels import float_gemv
from quantresolve.dispatch.linear import QuantLinear

from ..conftest import checkpoint_dir
from .loaded import loaded

pytestmark = pytest.mark.filterwarnings("ignore")

FLOAT_FIXTURES = ("ct-fp8", "ct-fp8-block", "ct-fp8-dynamic", "ct-from-modelopt-nvfp4", "ct-mxfp4a16", "ct-nvfp4",
                  "ct-nvfp4a16", "modelopt-fp8", "modelopt-fp8-pc-pt", "modelopt-mxfp4", "modelopt-nvfp4",
                  "modelopt-w4a16-nvfp4", "modelopt-w4a8-awq")
#: Bytes per dtype name of the safetensors header.
#: Held / checkpoint bytes where the packed form is not the checkpoint's own size.
RATIO = {"modelopt-w4a8-awq": 2.0}
DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "I16": 2, "U8": 1, "I8": 1,
               "F8_E4M3": 1, "F8_E5M2": 1, "BOOL": 1}


def checkpoint_tensor_bytes(name: str) -> dict[str, int]:
    """Tensor name → bytes, from every ``*.safetensors`` header of the fixture (no tensor data read)."""
    out: dict[str, int] = {}
    for path in sorted(checkpoint_dir(name).glob("*.safetensors")):
        if path.name == "reference.safetensors":
            continue
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        for tensor, info in header.items():
            if tensor != "__metadata__":
                count = 1
                for d in info["shape"]:
                    count *= d
                out[tensor] = count * DTYPE_BYTES[info["dtype"]]
    return out


@pytest.mark.skipif(float_gemv.unavailable() is not None,
                    reason=f"float_gemv_cpu unavailable: {float_gemv.unavailable()}")
@pytest.mark.parametrize("name", FLOAT_FIXTURES)
def test_each_quantized_linear_holds_its_checkpoint_bytes(name: str) -> None:
    tensors = checkpoint_tensor_bytes(name)
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
