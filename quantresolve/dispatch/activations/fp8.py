"""Hugging Face fine-grained FP8 (``quant_method: fp8``) activation rounding: DeepSeek's ``act_quant``.

The format's GPU kernels (DeepSeek-V3's reference ``act_quant``, transformers' FineGrainedFP8 Triton
kernel) quantize activations in float32: ``scale = amax / 448`` over each group — one ``1 × block_k``
group of each token row for block-scaled weights, the whole row for per-tensor dynamic weights — and
``x / scale`` rounded to E4M3; a static scheme divides by the checkpoint's per-tensor scale
(``activation_scale``; AutoFP8's ``input_scale``) and clamps to ±448. An all-zero group gets scale 1
(its codes are zero either way). transformers' own CPU path dequantizes the weights and leaves the
activations unquantized; quantresolve follows the format's kernels, as it does for compressed-tensors'
FP8_BLOCK (vLLM's static kernel multiplies by ``1 / scale`` instead of dividing: one ulp apart at most).

    >>> import torch
    >>> act = ActQuant(kind="fp8", granularity="group", group=2, arith="fp8")
    >>> act.fake(torch.tensor([[448.0, 1.0, 0.0, 0.0]])).tolist()
    [[448.0, 1.0, 0.0, 0.0]]
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations.blocks import join_blocks, row_amax, split_blocks
from quantresolve.dispatch.activations.quant import ROW_WIDE, ActQuant, register_arithmetic
from quantresolve.dispatch.numerics import E4M3_MAX

Tensor = torch.Tensor


def _scale(amax: Tensor) -> Tensor:
    scale = amax / E4M3_MAX
    return torch.where(scale == 0, torch.ones_like(scale), scale)


def _grid(scaled: Tensor) -> Tensor:
    return scaled.clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()


def _codes(act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
    """E4M3 codes (as float32) and the float32 scale multiplying them back, for tensor / token scales."""
    xf = x.float()
    if act.static_scale is not None:
        scale = torch.tensor(act.static_scale, dtype=torch.float32, device=x.device)
    else:
        scale = _scale(row_amax(act, xf))
    return _grid(xf / scale), scale


def _fake(act: ActQuant, x: Tensor) -> Tensor:
    if act.granularity != "group":
        codes, scale = _codes(act, x)
        return codes * scale
    blocks, k = split_blocks(x.float(), act.group or x.shape[-1])
    scale = _scale(blocks.abs().amax(dim=-1, keepdim=True))
    return join_blocks(_grid(blocks / scale) * scale, k)


FP8 = register_arithmetic("fp8", {"fp8": _fake}, {"fp8": (*ROW_WIDE, "group")}, _codes)

__all__ = ["FP8"]
