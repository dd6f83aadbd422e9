"""The tensor-parallel plan of one layer: local shape, boundary checks, and the slicer of every tensor.

Built before any tensor is loaded, so a split that does not respect a packed
word, a scale group, a block or an activation group fails at construction —
with the tensor and the boundary named — on every rank alike.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> from quantresolve.dispatch.codecs import codec_for
    >>> codec = codec_for(modelopt_scheme("NVFP4"))
    >>> plan = plan_tp(codec, 256, [128], [None], bias=False, spec=TPSpec("row", 1, 2))
    >>> plan.local_k, plan.local_sizes, plan.full_specs[(None, "weight")].shape
    (128, [128], (128, 128))
    >>> plan_tp(codec, 256, [128], [None], bias=False, spec=TPSpec("row", 0, 32))
    Traceback (most recent call last):
    ...
    quantresolve.errors.DispatchError: weight_scale: row-parallel split of in_features 256 over 32 ranks (8 each): a cut at input column 8 falls inside a group of 16 input columns (16 input columns)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quantresolve.dispatch.activations import InputTransform
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.slicing.common import ROWS
from quantresolve.dispatch.slicing.registry import layout_for
from quantresolve.dispatch.slicing.slicers import Slicer
from quantresolve.dispatch.slicing.split import Split, TPSpec
from quantresolve.dispatch.specs import ANY_FLOAT, TensorSpec
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme

Key = tuple[str | None, str]

#: Activation strategies whose dynamic scales cover whole groups of K: a row split must keep groups whole.
_GROUPED_ACTIVATIONS = ("group", "tensor_group")
#: Activation granularities whose dynamic scale spans the whole row: a rank computes it on its K slice.
_ROW_WIDE_ACTIVATIONS = ("token", "tensor")


@dataclass
class TPPlan:
    """What rank ``spec.rank`` holds of a layer of full ``[sum(full_sizes), full_k]``.

    ``full_specs`` are the checkpoint tensors as stored (what :meth:`QuantLinear.load`
    accepts); ``slicers`` cut them. ``local_activation_scales`` (known after
    ``finalize()``) is true when the layer quantizes its input with a dynamic
    per-token or per-tensor scale (W8A8, FP8 dynamic, LLM.int8) *and* K is split:
    each rank then computes that scale on its own K slice — what tensor-parallel
    engines do — so the result differs from TP=1 by activation rounding.
    """

    spec: TPSpec
    full_k: int
    full_sizes: list[int]
    local_k: int
    local_sizes: list[int]
    full_specs: dict[Key, TensorSpec]
    slicers: dict[Key, tuple[Slicer, Split]]
    local_activation_scales: bool = False

    def note_transforms(self, transforms: list[InputTransform]) -> None:
        """At ``finalize()``: check the shards' input quantizers against the split and record
        whether any computes a row-wide dynamic scale (see ``local_activation_scales``)."""
        if self.spec.axis != "k" or self.spec.world == 1:
            return
        acts = [t.act for t in transforms if t.act is not None]
        for act in acts:
            if act.granularity == "group" and act.group and self.local_k % act.group:
                raise DispatchError(f"row-parallel split of in_features {self.full_k} over {self.spec.world} "
                                    f"ranks cuts a dynamic activation group of {act.group} input columns",
                                    field="input_activations")
        self.local_activation_scales = any(a.static_scale is None and a.granularity in _ROW_WIDE_ACTIVATIONS
                                           for a in acts)

    def slice(self, key: Key, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's part of one full checkpoint tensor (already checked against ``full_specs``)."""
        slicer, split = self.slicers[key]
        shard, suffix = key
        return slicer.slice(tensor, split, f"{shard}.{suffix}" if shard is not None else suffix)


def _activation_violation(scheme: QuantScheme | None, split: Split) -> str | None:
    a = scheme.input_activations if scheme is not None else None
    if split.axis != "k" or a is None or a.strategy not in _GROUPED_ACTIVATIONS or not a.group_size:
        return None
    for cut in split.boundaries:
        if cut % a.group_size:
            return (f"a cut at input column {cut} falls inside a dynamic activation group of "
                    f"{a.group_size} input columns")
    return None


def plan_tp(codec: WeightCodec, in_features: int, sizes: list[int], names: list[str | None], *,
            bias: bool, spec: TPSpec) -> TPPlan:
    """Plan rank ``spec.rank``'s part of a layer (``sizes``: full output rows of each shard)."""
    local_k, local_sizes = spec.local_shape(in_features, sizes)
    layout = layout_for(codec)
    full_specs: dict[Key, TensorSpec] = {}
    slicers: dict[Key, tuple[Slicer, Split]] = {}
    for name, n in zip(names, sizes, strict=True):
        split = spec.split(n, in_features)
        tensors = dict(codec.expected(n, in_features))
        if bias:
            tensors["bias"] = TensorSpec((n,), ANY_FLOAT)
        for suffix, tspec in tensors.items():
            where = f"{name}.{suffix}" if name is not None else suffix
            slicer = ROWS if suffix == "bias" else layout.get(suffix)
            if slicer is None:
                raise DispatchError(f"the tensor-parallel layout of {type(codec).__name__} does not say how "
                                    "this tensor splits", field=where)
            problem = slicer.violation(split)
            if problem is not None:
                raise DispatchError(f"{spec.mode}-parallel split of {split.text()}: {problem}", field=where)
            full_specs[(name, suffix)] = tspec
            slicers[(name, suffix)] = (slicer, split)
        problem = _activation_violation(codec.scheme, split)
        if problem is not None:
            raise DispatchError(f"{spec.mode}-parallel split of {split.text()}: {problem}",
                                field="input_activations")
    return TPPlan(spec, in_features, list(sizes), local_k, local_sizes, full_specs, slicers)
