"""Emulated activation quantization, so CPU outputs follow the producer's numerics.

W8A8, FP8-static/dynamic, NVFP4 (W4A4), MXFP4/MXFP8 and W4A8 checkpoints were
calibrated for activations rounded to a low-precision grid before the GEMM. On
a CPU there is no such GEMM, so every backend except ``int_mm_cpu`` (which
quantizes to real int8 codes and multiplies integers) applies
:meth:`ActQuant.fake` — quantize then dequantize in float32 — before its
matmul. ``x_fake @ W_dequantᵀ`` equals the integer / FP8 GEMM up to float
rounding.

    >>> import torch
    >>> q = ActQuant(kind="int8", granularity="tensor", static_scale=0.5)
    >>> q.fake(torch.tensor([[0.74, -100.0]])).tolist()
    [[0.5, -64.0]]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from quantresolve.dispatch.llm_int8 import llm_int8_fake
from quantresolve.dispatch.numerics import E2M1_MAGNITUDES, E2M1_MAX, E4M3_MAX

_TINY = 1e-12
#: Midpoints between consecutive E2M1 magnitudes (round to nearest).
_E2M1_BOUNDS = tuple((a + b) / 2 for a, b in itertools.pairwise(E2M1_MAGNITUDES))


def round_to_e2m1(x: torch.Tensor) -> torch.Tensor:
    """Round float32 values (already divided by their scale) to the nearest E2M1 value, saturating at ±6."""
    bounds = torch.tensor(_E2M1_BOUNDS, dtype=x.dtype, device=x.device)
    mags = torch.tensor(E2M1_MAGNITUDES, dtype=x.dtype, device=x.device)
    idx = torch.bucketize(x.abs().clamp(max=E2M1_MAX), bounds)
    return torch.sign(x) * mags[idx]


@dataclass(frozen=True)
class ActQuant:
    """How the input activations of a layer are quantized.

    - ``kind``: ``fp8`` (E4M3), ``int8``, ``nvfp4`` (E2M1 with E4M3 block scales
      under a per-tensor scale), ``mxfp4`` / ``mxfp8`` (E8M0 block scales),
      ``llm_int8`` (bitsandbytes: int8 rows, 16-bit outlier columns; see :mod:`..llm_int8`).
    - ``granularity``: ``tensor`` (one scale), ``token`` (one per row),
      ``group`` (one per ``group`` columns of a row).
    - ``static_scale``: the checkpoint's ``input_scale`` for static schemes; for
      NVFP4 the per-tensor second-level scale (ModelOpt ``input_scale``,
      compressed-tensors ``1 / input_global_scale``); ``None`` = dynamic.
    - ``threshold``: ``llm_int8`` only — the outlier threshold (0 = none).
    """

    kind: str
    granularity: str
    static_scale: float | None = None
    group: int | None = None
    threshold: float | None = None

    def key(self) -> tuple[object, ...]:
        return (self.kind, self.granularity, self.static_scale, self.group, self.threshold)

    # -- scales -------------------------------------------------------------------------
    def _qmax(self) -> float:
        return {"fp8": E4M3_MAX, "int8": 127.0}[self.kind]

    def scales(self, x: torch.Tensor) -> torch.Tensor:
        """Per-element-broadcastable scale for ``fp8`` / ``int8`` kinds (float32)."""
        if self.static_scale is not None:
            return torch.tensor(self.static_scale, dtype=torch.float32, device=x.device)
        if self.granularity == "token":
            amax = x.abs().amax(dim=-1, keepdim=True)
        elif self.granularity == "tensor":
            amax = x.abs().amax()
        else:
            raise ValueError(f"dynamic {self.granularity} scales need the grouped path")
        return (amax / self._qmax()).clamp(min=_TINY)

    def quantize_int8(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real int8 codes and their float32 scale (``int8`` kind only), for integer GEMMs."""
        xf = x.float()
        scale = self.scales(xf)
        codes = torch.round(xf / scale).clamp(-128, 127).to(torch.int8)
        return codes, scale

    # -- fake quantization -------------------------------------------------------------
    def fake(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize-dequantize ``x`` (float32 result, same shape)."""
        if self.kind == "llm_int8":
            return llm_int8_fake(x, self.threshold or 0.0)
        xf = x.float()
        if self.kind in ("fp8", "int8") and self.granularity != "group":
            return self._fake_scalar(xf, self.scales(xf))
        return self._fake_grouped(xf)

    def _fake_scalar(self, xf: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        if self.kind == "int8":
            return torch.round(xf / scale).clamp(-128, 127) * scale
        return (xf / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float() * scale

    def _fake_grouped(self, xf: torch.Tensor) -> torch.Tensor:
        group = self.group or xf.shape[-1]
        k = xf.shape[-1]
        pad = (-k) % group
        xp = torch.nn.functional.pad(xf, (0, pad)) if pad else xf
        blocks = xp.unflatten(-1, (-1, group))
        amax = blocks.abs().amax(dim=-1, keepdim=True)
        out = _GROUPED[self.kind](self, blocks, amax)
        return out.flatten(-2)[..., :k]

    def _fp8_groups(self, blocks: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
        scale = (amax / E4M3_MAX).clamp(min=_TINY)
        return self._fake_scalar(blocks, scale)

    def _nvfp4_groups(self, blocks: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
        second = self.static_scale if self.static_scale else 1.0
        block_scale = (amax / E2M1_MAX / second).clamp(-E4M3_MAX, E4M3_MAX)
        eff = block_scale.to(torch.float8_e4m3fn).float() * second
        safe = torch.where(eff == 0, torch.ones_like(eff), eff)
        return round_to_e2m1(blocks / safe) * eff

    def _mx_groups(self, blocks: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
        elem_emax = 2.0 if self.kind == "mxfp4" else 8.0  # E2M1 / E4M3 largest exponent
        exp = torch.floor(torch.log2(amax.clamp(min=2.0 ** -127))) - elem_emax
        scale = torch.exp2(exp.clamp(-127, 127))
        if self.kind == "mxfp4":
            return round_to_e2m1(blocks / scale) * scale
        return (blocks / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float() * scale


_GROUPED = {
    "fp8": ActQuant._fp8_groups,
    "nvfp4": ActQuant._nvfp4_groups,
    "mxfp4": ActQuant._mx_groups,
    "mxfp8": ActQuant._mx_groups,
}


@dataclass(frozen=True)
class InputTransform:
    """What happens to ``x`` before the GEMM: AWQ/SmoothQuant ``pre_quant_scale``, then ``act``."""

    pre_quant_scale: torch.Tensor | None = None
    act: ActQuant | None = None

    def same_as(self, other: InputTransform) -> bool:
        """Equal transforms let fused shards share one quantized activation."""
        if (self.act.key() if self.act else None) != (other.act.key() if other.act else None):
            return False
        a, b = self.pre_quant_scale, other.pre_quant_scale
        if a is None or b is None:
            return a is b
        return a.shape == b.shape and bool(torch.equal(a, b))

    def smooth(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``pre_quant_scale`` only (float32)."""
        xf = x.float()
        return xf * self.pre_quant_scale.float() if self.pre_quant_scale is not None else xf

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Smooth then fake-quantize (float32)."""
        xs = self.smooth(x)
        return self.act.fake(xs) if self.act is not None else xs
