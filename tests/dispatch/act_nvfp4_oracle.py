"""The NVFP4 activation quantisers as they were before the vectorised E2M1 rounding (main 9b43c50):
the oracle the new ones must equal bit for bit (``test_act_nvfp4_vectorised.py``), and the "before"
column of ``benchmarks/act_quant.py``.

The rounding looked each magnitude up in the E2M1 code table: ``bucketize`` over the seven midpoints,
plus a broadcast comparison against the three midpoints whose tie goes up. Kept verbatim; do not
"improve" it — it is the reference.

    >>> import torch
    >>> old_round_e2m1_half_even(torch.tensor([0.25, 0.75, 1.25, 2.5, 5.0, -7.0, -0.1, -0.0])).tolist()
    [0.0, 1.0, 1.0, 2.0, 4.0, -6.0, -0.0, 0.0]
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.dispatch.activations.blocks import join_blocks, split_blocks
from quantresolve.dispatch.numerics import E2M1_BOUNDS, E2M1_MAGNITUDES, E2M1_MAX, E4M3_MAX

Tensor = torch.Tensor


def old_round_e2m1_half_even(x: Tensor) -> Tensor:
    """Nearest E2M1 value, ties to the even code, saturating at ±6, by table look-up."""
    mags = torch.tensor(E2M1_MAGNITUDES, dtype=x.dtype, device=x.device)
    bounds = torch.tensor(E2M1_BOUNDS, dtype=x.dtype, device=x.device)
    a = x.abs()
    idx = torch.bucketize(a, bounds)  # ties go down here ...
    odd_tie = (a.unsqueeze(-1) == bounds[1::2]).any(-1)  # ... except at 0.75, 1.75, 3.5, whose even side is up
    return torch.where(x < 0, -mags[idx + odd_tie.long()], mags[idx + odd_tie.long()])


def old_modelopt_nvfp4(act: ActQuant, x: Tensor) -> Tensor:
    """ModelOpt's NVFP4 quantize-dequantize (``NVFP4QTensor``), in ``x``'s dtype."""
    xf = x.float()
    s2 = torch.tensor(act.static_scale, dtype=torch.float32, device=x.device) if act.static_scale is not None \
        else xf.abs().amax() / (E2M1_MAX * E4M3_MAX)
    blocks, k = split_blocks(xf, act.group or 16)
    per_block = blocks.abs().amax(dim=-1, keepdim=True) / (E2M1_MAX * s2)
    per_block = torch.where(per_block == 0, torch.ones_like(per_block), per_block)
    eff = per_block.clamp(min=2.0 ** -9, max=E4M3_MAX).to(torch.float8_e4m3fn).float() * s2
    return join_blocks(old_round_e2m1_half_even(blocks / eff) * eff, k).to(x.dtype)


def old_ct_nvfp4(act: ActQuant, x: Tensor) -> Tensor:
    """compressed-tensors' NVFP4 ``forward_quantize``, in ``x``'s dtype."""
    assert act.global_scale is not None
    g = torch.tensor([act.global_scale], dtype=torch.float32, device=x.device)
    blocks, k = split_blocks(x, act.group or 16)
    local = blocks.abs().amax(dim=-1, keepdim=True) / torch.tensor(E2M1_MAX, dtype=x.dtype, device=x.device)
    scale = (g * local).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()
    scale = torch.where(scale == 0, torch.full_like(scale, 0.125), scale) / g
    fp4 = old_round_e2m1_half_even((blocks / scale).clamp(-E2M1_MAX, E2M1_MAX))
    return join_blocks(fp4 * scale, k).to(x.dtype)


#: ``ActQuant.arith`` → the old NVFP4 quantize-dequantize (before ``ActQuant.fake``'s float32 cast).
OLD_NVFP4 = {"modelopt": old_modelopt_nvfp4, "compressed-tensors": old_ct_nvfp4}
