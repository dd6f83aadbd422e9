"""Tensor-parallel loading of quantized layers: each rank holds and runs only its part.

Place in the flow: the top of the dispatcher. This package holds the ``torch.distributed``
wrappers over :class:`~quantresolve.dispatch.linear.QuantLinear` (:mod:`.modules`, :mod:`.merge`);
how each tensor is cut — :class:`TPSpec`, the slicers, the per-codec layouts, a layer's plan — is
:mod:`quantresolve.dispatch.slicing`, below the layers (which build their rank's part with it), and
its names are re-exported here.

**Column-parallel** (split out_features N): every rank gets ``N/W`` rows of
each (fused) shard; its output columns can be all-gathered. **Row-parallel**
(split in_features K): every rank gets ``K/W`` input columns and produces a
partial sum; an all-reduce adds them and the bias is added once, afterwards.

Layers take the **full** checkpoint tensors and keep their rank's part, cut on
the format's own boundaries — compressed-tensors int32 words along K (and
zero-point words along N), ModelOpt INT4 AWQ bytes holding two output rows,
FP4 bytes holding two input columns, scale groups, 128×128 FP8 scale blocks,
bitsandbytes absmax blocks (64 weights; 16,384 under double quantization) and
dynamic activation groups. Per-tensor scalars (``weight_scale_2``,
``input_scale``, global scales) are replicated; ``pre_quant_scale`` ``[K]`` and
per-group scales follow K; per-row scales, zero points and the bias follow N.
A cut inside any unit is a :class:`~quantresolve.errors.DispatchError` naming
the tensor and the unit, raised when the layer is built — on every rank alike.
Splits are even: the world size must divide N (of every fused shard) or K.

Numerics: column-parallel outputs are the TP=1 outputs' columns. Row-parallel
outputs are the same sum in another order (partial sums reduced in float32).
Dynamic per-token / per-tensor activation scales (W8A8, FP8_DYNAMIC,
FP8_PER_CHANNEL_PER_TOKEN) are computed by each rank on its K slice, as
tensor-parallel engines do; ``plan.local_activation_scales`` says so.

Worked example — both ranks of a row-parallel INT4 AWQ layer, in one process:

    >>> import torch
    >>> from quantresolve.dispatch import make_linear
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> scheme = modelopt_scheme("W4A16_AWQ", group_size=32)
    >>> g = torch.Generator().manual_seed(0)
    >>> full = {"weight": torch.randint(0, 256, (32, 64), dtype=torch.uint8, generator=g),  # [N/2, K]
    ...         "weight_scale": torch.rand(64, 2, generator=g) / 64}                      # [N, K/32]
    >>> def build(tp=None):
    ...     layer = make_linear(scheme, 64, 64, tp=tp)   # full sizes; tp picks the rank's part
    ...     for suffix, tensor in full.items():
    ...         layer.load(suffix, tensor)                # full tensors in, the rank's part kept
    ...     layer.finalize()
    ...     return layer
    >>> ranks = [build(TPSpec("row", rank, 2)) for rank in range(2)]
    >>> ranks[1].expected_tensors()[(None, "weight")], ranks[1].in_features, ranks[1].backend.endswith("_cpu")
    (((32, 64), 'uint8'), 32, True)
    >>> whole = build()
    >>> torch.equal(torch.cat([r.dequantize() for r in ranks], dim=1), whole.dequantize())
    True
    >>> x = torch.randn(3, 64)
    >>> partial = sum(r.reference(x[:, 32 * i: 32 * (i + 1)]) for i, r in enumerate(ranks))
    >>> torch.allclose(partial, whole.reference(x), rtol=1e-5, atol=1e-5)
    True

Across processes (``torch.distributed``, any backend; gloo on CPU), a gated MLP::

    rank, world = dist.get_rank(), dist.get_world_size()
    gate_up = make_linear(scheme, hidden, [inter, inter], shard_names=["gate_proj", "up_proj"],
                          tp=TPSpec("column", rank, world))
    down = make_linear(scheme, inter, hidden, tp=TPSpec("row", rank, world))
    ... load every full checkpoint tensor with layer.load(suffix, tensor, shard=...); finalize() ...
    gate_up, down = ColumnParallelLinear(gate_up), RowParallelLinear(down)
    g, u = gate_up(x).chunk(2, dim=-1)          # each rank: its inter/W columns of gate and of up
    y = down(torch.nn.functional.silu(g) * u)   # all-reduced: the full output on every rank

How an integration uses it: decide per module whether it is column-parallel
(q/k/v, gate/up, fused or not), row-parallel (o_proj, down_proj) or replicated
(no ``tp``: norms, embeddings, a small lm_head); build each linear with
``make_linear(..., tp=TPSpec(mode, rank, world))`` at its *full* sizes; stream
the checkpoint's full tensors into ``load`` exactly as without TP
(``expected_tensors()`` reports the full shapes it accepts; the kept part is a
copy, so the full tensor can be freed); wrap the layers in
:class:`ColumnParallelLinear` / :class:`RowParallelLinear`. Head counts are the
model's business: split q/k/v only where ``N/W`` is a whole number of heads.
:func:`shard_tensor` cuts a single tensor without a layer.
"""

from quantresolve.dispatch.slicing import (
    LAYOUTS,
    MODES,
    REPLICATED,
    Axis,
    AxisSlicer,
    FlatSlicer,
    Slicer,
    Split,
    TPPlan,
    TPSpec,
    layout_for,
    plan_tp,
    register_layout,
    shard_tensor,
)
from quantresolve.dispatch.tp.merge import merge_column_parts
from quantresolve.dispatch.tp.modules import ColumnParallelLinear, RowParallelLinear

__all__ = ["LAYOUTS", "MODES", "REPLICATED", "Axis", "AxisSlicer", "ColumnParallelLinear", "FlatSlicer",
           "RowParallelLinear", "Slicer", "Split", "TPPlan", "TPSpec", "layout_for", "merge_column_parts",
           "plan_tp", "register_layout", "shard_tensor"]
