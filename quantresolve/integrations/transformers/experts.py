"""``QuantExperts``: a transformers MoE experts module run as one linear per expert projection.

transformers 5 stores all experts of a layer in one module with 3-D
parameters (``Qwen3MoeExperts``: ``gate_up_proj [E, 2I, H]``, ``down_proj
[E, H, I]``) called as ``experts(hidden_states, top_k_index, top_k_weights)``.
Quantized checkpoints store every expert's projections on their own
(``experts.3.gate_proj.weight_packed``), and quantized tensors cannot be
concatenated into those 3-D parameters. :class:`QuantExperts` takes the
module's place with the same call signature and routing semantics, but holds
expert ``e`` as a submodule ``e`` whose projections are ordinary linear
modules at ``<container>.<e>.<gate>`` / ``.<up>`` / ``.<down>`` — exactly the
checkpoint's names, so the resolver, the dispatcher and the loader treat them
like any other linear (a :class:`~quantresolve.dispatch.QuantLinear`, a
:class:`~.fused.ShardView` of a fused ``gate_up``, or a plain ``nn.Linear``
when the config leaves the experts unquantized).

Per token and expert slot ``(t, k)`` with expert ``e = top_k_index[t, k]``:
``y[t, k] = down_e(act(gate_e(x_t)) · up_e(x_t)) · top_k_weights[t, k]``, and
the output row ``t`` is ``Σ_k y[t, k]`` — summed per token in one reduction,
in the dtype ``y`` has (float32 where the router hands float32 weights, as
Mixtral's and DeepSeek-V3's do) and cast to the model dtype once, as
transformers' default ``grouped_mm`` / ``batched_mm`` implementations do (its
``eager`` loop adds expert by expert in the model dtype instead: the same sum
for top-2 with bf16 weights, another rounding order beyond). Slots holding the
sentinel ``e == num_experts`` (expert parallelism) contribute nothing.

    >>> import torch
    >>> experts = QuantExperts(2, ("gate_proj", "up_proj", "down_proj"), torch.nn.ReLU())
    >>> for e in range(2):
    ...     experts.attach(e, {"gate_proj": torch.nn.Linear(2, 3, bias=False), "up_proj":
    ...         torch.nn.Linear(2, 3, bias=False), "down_proj": torch.nn.Linear(3, 2, bias=False)})
    >>> sorted(name for name, _ in experts.named_modules() if name.startswith("1."))
    ['1.down_proj', '1.gate_proj', '1.up_proj']
    >>> x, index, weights = torch.randn(4, 2), torch.tensor([[0, 1], [1, 0], [0, 2], [1, 1]]), torch.rand(4, 2)
    >>> one = lambda e, v: experts[e].down_proj(torch.relu(experts[e].gate_proj(v)) * experts[e].up_proj(v))
    >>> want = torch.stack([sum(one(int(e), x[t]) * w for e, w in zip(index[t], weights[t]) if e < 2)
    ...                     for t in range(4)])
    >>> torch.allclose(experts(x, index, weights), want, atol=1e-6)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn


class ExpertProjections(nn.Module):
    """One expert: its gate, up and down projections as submodules named as the checkpoint names them."""

    def __init__(self, projections: Mapping[str, nn.Module]) -> None:
        super().__init__()
        for name, module in projections.items():
            self.add_module(name, module)


class QuantExperts(nn.Module):
    """Stand-in for a transformers experts module: expert ``e`` at submodule ``str(e)``.

    ``roles`` names the gate, up and down projections in the checkpoint's
    spelling (``("gate_proj", "up_proj", "down_proj")``, Mixtral's
    ``("w1", "w3", "w2")``); ``act_fn`` is the replaced module's activation.
    Expert linears are attached with :meth:`attach` and may later be replaced
    in place (by module path) by the installer.
    """

    def __init__(self, num_experts: int, roles: tuple[str, ...], act_fn: Callable[[torch.Tensor], torch.Tensor],
                 *, replaces: str = "") -> None:
        super().__init__()
        self.num_experts = int(num_experts)
        self.roles = tuple(roles)
        self.replaces = replaces
        # A plain attribute: the activation holds no parameters, and registering the replaced
        # module's instance would list it under this container as a child named act_fn.
        self.__dict__["act_fn"] = act_fn

    def attach(self, expert: int, projections: Mapping[str, nn.Module]) -> None:
        """Register expert ``expert``'s projections (keys: :attr:`roles`)."""
        if set(projections) != set(self.roles):
            raise ValueError(f"expert {expert} needs projections {list(self.roles)}, got {sorted(projections)}")
        self.add_module(str(expert), ExpertProjections({r: projections[r] for r in self.roles}))

    def __getitem__(self, expert: int) -> nn.Module:
        return self.get_submodule(str(expert))

    def expert_output(self, expert: int, x: torch.Tensor) -> torch.Tensor:
        """``down(act(gate(x)) · up(x))`` of one expert on rows ``x``."""
        module = self[expert]
        gate, up, down = (getattr(module, role) for role in self.roles)
        return down(self.act_fn(gate(x)) * up(x))

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        tokens, top_k = top_k_index.shape
        slots = top_k_index.reshape(-1)
        weights = top_k_weights.reshape(-1)
        # y · weight in the promoted dtype, summed there, rounded to the model dtype once (transformers' default)
        acc = torch.promote_types(hidden_states.dtype, top_k_weights.dtype)
        out = hidden_states.new_zeros(tokens * top_k, hidden_states.shape[-1], dtype=acc)
        # Group the (token, slot) pairs by expert once: one call per expert hit, rows in slot order.
        order = torch.argsort(slots, stable=True)
        counts = torch.bincount(slots, minlength=self.num_experts + 1).tolist()
        start = 0
        for expert, count in enumerate(counts[: self.num_experts]):
            if count == 0:
                continue
            rows = order[start:start + count]
            start += count
            y = self.expert_output(expert, hidden_states[rows // top_k])
            out[rows] = (y * weights[rows, None]).to(acc)
        return out.view(tokens, top_k, -1).sum(dim=1).to(hidden_states.dtype)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, roles={list(self.roles)}, replaces={self.replaces}"
