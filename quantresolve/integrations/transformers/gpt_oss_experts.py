"""gpt-oss experts run one linear per expert projection: a fused gate/up linear and a down linear.

transformers' ``GptOssExperts`` keeps ``gate_up_proj`` ``[E, H, 2I]`` and ``down_proj`` ``[E, I, H]``
(transposed: ``x @ W``), each with a bias ``[E, 2I]`` / ``[E, H]``. Along the ``2I`` axis gate and up
**interleave** — even columns gate, odd columns up — and the activation is a clamped SwiGLU: the gate
clamped from above only, the up part to ``±limit``, then ``(up + 1) · gate · sigmoid(alpha · gate)``
(``alpha = swiglu_alpha``, 1.702; ``limit = swiglu_limit``, 7.0).

:class:`FusedGateUpExperts` holds expert ``e`` as two linears at ``<container>.e.gate_up_proj``
(``2I`` outputs, interleaved as stored, with its bias) and ``<container>.e.down_proj``, and computes
``down(gate(gate_up(x)))`` per expert: the de-interleave happens on the fused output, as transformers
does it, so a quantized ``gate_up_proj`` (gpt-oss MXFP4) is one layer whose rows are the checkpoint's.
Routing and the weighted sum over the top-k are :class:`~.experts.QuantExperts`' own.

    >>> import torch
    >>> gate = ClampedSwiGLU(alpha=1.702, limit=7.0)
    >>> y = gate(torch.tensor([[10.0, 9.0, -1.0, -9.0]]))   # (gate 10, up 9), (gate -1, up -9)
    >>> [round(v, 4) for v in y[0].tolist()]
    [55.9996, 0.9252]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from quantresolve.integrations.transformers.experts import QuantExperts


class BiasAfterLinear(nn.Linear):
    """An ``nn.Linear`` that rounds ``x @ Wᵀ`` to the compute dtype before adding the bias.

    transformers' experts add the bias to the rounded matmul (``(x @ W).add_(b)``), where ``F.linear``
    fuses it into one rounding; a quantized layer (:class:`~quantresolve.dispatch.QuantLinear`) adds its
    bias after the matmul too. Used for unquantized expert projections, so they compute what
    transformers' module computes bit for bit.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight)
        return y + self.bias if self.bias is not None else y


@dataclass(frozen=True)
class ClampedSwiGLU:
    """gpt-oss' gate on the interleaved ``gate_up`` output ``[..., 2I]`` → ``[..., I]``.

    The operations run in this order, each rounded to the input's dtype as transformers rounds them:
    the clamps, ``gate · alpha``, its sigmoid, ``gate · sigmoid``, ``up + 1``, the product.
    """

    alpha: float
    limit: float

    def __call__(self, gate_up: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up[..., ::2], gate_up[..., 1::2]
        gate = gate.clamp(max=self.limit)
        up = up.clamp(min=-self.limit, max=self.limit)
        glu = gate * torch.sigmoid(gate * self.alpha)
        return (up + 1) * glu


class FusedGateUpExperts(QuantExperts):
    """Experts with one fused gate/up projection each: ``roles`` = (gate_up, down), ``act_fn`` the gate that
    turns the fused output into the down projection's input."""

    def expert_output(self, expert: int, x: torch.Tensor) -> torch.Tensor:
        module = self[expert]
        gate_up, down = (getattr(module, role) for role in self.roles)
        return down(self.act_fn(gate_up(x)))


__all__ = ["BiasAfterLinear", "ClampedSwiGLU", "FusedGateUpExperts"]
