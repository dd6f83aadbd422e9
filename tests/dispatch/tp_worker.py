"""One rank of the torch.distributed tensor-parallel test: ``python -m tests.dispatch.tp_worker RANK WORLD DIR``.

``DIR/schemes.json`` holds the resolver's schemes of every fixture's layer-0
projections (``{fixture: {"mlp.gate_proj": scheme, ...}}``), written by the test.

Every rank builds layer 0 of each fixture at TP=WORLD from the full checkpoint
tensors and runs, through :class:`ColumnParallelLinear` / :class:`RowParallelLinear`
over gloo, the gated MLP (column gate/up → SiLU·up → row down), the same MLP
with a gathered activation split again by the row layer, and the fused q/k/v
gathered — on the backend path and on the float32 reference path. Rank 0 also
computes TP=1, the last rank a single-process emulation of the ranks (all ranks'
layers built in one process, partial sums added in float32). Results go to
``DIR/rank{RANK}.pt``.
Threads are pinned to one so that both ranks and the TP=1 run use the same kernels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn import functional as F

from quantresolve.dispatch import QuantLinear
from quantresolve.dispatch.tp import (
    ColumnParallelLinear,
    RowParallelLinear,
    TPSpec,
    merge_column_parts,
)
from quantresolve.formats.scheme import QuantScheme

from .tp_fixture_layers import FIXTURES, build

GATE_UP = ["gate_proj", "up_proj"]
QKV = ["q_proj", "k_proj", "v_proj"]
#: Every fixture but bnb-nf4, whose double-quantized absmax allows only gate/up at TP=2 (covered,
#: with its refusals, by test_tensor_parallel_slicing) and would cost a bitsandbytes import per rank.
NAMES = [n for n in FIXTURES if n != "bnb-nf4"]
#: Layers a TP=2 split cannot make (see test_tensor_parallel_slicing.REFUSED): skipped here.
SKIP = {("ct-fp8-block", "qkv")}
Result = dict[str, object]


def _act(h: torch.Tensor) -> torch.Tensor:
    gate, up = h.chunk(2, dim=-1)
    return F.silu(gate) * up


Schemes = dict[str, QuantScheme]


def _column(name: str, projections: list[str], module: str, tp: TPSpec, gather: bool,
            schemes: Schemes) -> ColumnParallelLinear:
    return ColumnParallelLinear(build(name, module, projections, tp, schemes), gather_output=gather)


def distributed(name: str, rank: int, world: int, x: torch.Tensor, schemes: Schemes) -> Result:
    out: Result = {}
    column = TPSpec("column", rank, world)
    gate_up = _column(name, GATE_UP, "mlp", column, gather=True, schemes=schemes)
    out["gate_up"] = (gate_up(x), gate_up.reference(x))
    if (name, "mlp") not in SKIP:
        local_gate_up = _column(name, GATE_UP, "mlp", column, gather=False, schemes=schemes)
        down_layer = build(name, "mlp", ["down_proj"], TPSpec("row", rank, world), schemes)
        down = RowParallelLinear(down_layer)
        split_down = RowParallelLinear(down_layer, input_is_parallel=False)
        out["mlp"] = (down(_act(local_gate_up(x))), down.reference(_act(local_gate_up.reference(x))))
        out["mlp_gathered"] = (split_down(_act(gate_up(x))), split_down.reference(_act(gate_up.reference(x))))
        assert down_layer.tp_plan is not None
        out["local_activation_scales"] = down_layer.tp_plan.local_activation_scales
    if (name, "qkv") not in SKIP:
        qkv = _column(name, QKV, "self_attn", column, gather=True, schemes=schemes)
        out["qkv"] = (qkv(x), qkv.reference(x))
    return out


def tp1(name: str, x: torch.Tensor, schemes: Schemes) -> Result:
    gate_up = build(name, "mlp", GATE_UP, None, schemes)
    out: Result = {"gate_up": (gate_up(x), gate_up.reference(x))}
    if (name, "mlp") not in SKIP:
        down = build(name, "mlp", ["down_proj"], None, schemes)
        out["mlp"] = (down(_act(gate_up(x))), down.reference(_act(gate_up.reference(x))))
    if (name, "qkv") not in SKIP:
        qkv = build(name, "self_attn", QKV, None, schemes)
        out["qkv"] = (qkv(x), qkv.reference(x))
    return out


def _reduce(partials: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    return torch.stack([p.float() for p in partials]).sum(0).to(dtype)


def emulated(name: str, world: int, x: torch.Tensor, schemes: Schemes) -> Result:
    """All ranks in this process: column parts merged shard by shard, row partial sums added in float32."""
    def gathered(layers: list[QuantLinear], fn: str) -> torch.Tensor:
        return merge_column_parts([getattr(layer, fn)(x) for layer in layers], layers[0].shard_sizes)

    gate_up = [build(name, "mlp", GATE_UP, TPSpec("column", r, world), schemes) for r in range(world)]
    out: Result = {"gate_up": (gathered(gate_up, "forward"), gathered(gate_up, "reference"))}
    if (name, "mlp") not in SKIP:
        down = [build(name, "mlp", ["down_proj"], TPSpec("row", r, world), schemes) for r in range(world)]
        fwd = [d(_act(g(x))) for g, d in zip(gate_up, down, strict=True)]
        ref = [d.reference(_act(g.reference(x))) for g, d in zip(gate_up, down, strict=True)]
        out["mlp"] = (_reduce(fwd, x.dtype), _reduce(ref, torch.float32))
    if (name, "qkv") not in SKIP:
        qkv = [build(name, "self_attn", QKV, TPSpec("column", r, world), schemes) for r in range(world)]
        out["qkv"] = (gathered(qkv, "forward"), gathered(qkv, "reference"))
    return out


def main(argv: list[str]) -> None:
    rank, world, directory = int(argv[0]), int(argv[1]), Path(argv[2])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{directory / 'rendezvous'}", rank=rank, world_size=world)
    try:
        x = torch.randn(4, 128, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
        raw = json.loads((directory / "schemes.json").read_text())
        schemes = {n: {k: QuantScheme.model_validate(v) for k, v in layers.items()} for n, layers in raw.items()}
        results: dict[str, Result] = {f"tp{world}/{n}": distributed(n, rank, world, x, s) for n, s in schemes.items()}
        if rank == 0:
            results |= {f"tp1/{n}": tp1(n, x, s) for n, s in schemes.items()}
        if rank == world - 1:  # the other rank does the emulation (in parallel with rank 0's TP=1)
            results |= {f"emulated/{n}": emulated(n, world, x, s) for n, s in schemes.items()}
        torch.save(results, directory / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
