"""What a layer expects to be loaded with: tensor specs, shapes, devices, verdicts.

Place in the flow: the bottom of the dispatcher, with :mod:`.numerics` — plain data every other
layer speaks (a codec's expected tensors, a backend's verdict), importing nothing but errors (torch
only for type hints).

    >>> spec = TensorSpec((4, 2), "uint8")
    >>> spec.describe()
    '(4, 2) uint8'
    >>> Verdict.no("needs K % 16 == 0").ok, Verdict.yes().reason
    (False, 'ok')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quantresolve.errors import LoadError

if TYPE_CHECKING:
    import torch

#: Spec dtype meaning "any floating dtype" (checkpoints store scales in fp32, bf16 or fp16).
ANY_FLOAT = "float"
#: Spec dtype meaning "any dtype" (zero points are stored as int8, int32 or float by different writers).
ANY_DTYPE = "any"


@dataclass(frozen=True)
class TensorSpec:
    """One checkpoint tensor a layer expects.

    ``shape``: exact shape, or ``None`` for any (bitsandbytes' JSON quant state).
    ``dtype``: a torch dtype name, or :data:`ANY_FLOAT`.
    ``flexible``: accept any shape with the same number of elements (``[N]`` vs
    ``[N, 1]``, ``[]`` vs ``[1]`` — producers differ) and reshape on load.
    ``optional``: the layer runs without it (e.g. ModelOpt ``pre_quant_scale`` of
    block-wise INT4, which has no AWQ smoothing).
    """

    shape: tuple[int, ...] | None
    dtype: str
    flexible: bool = False
    optional: bool = False

    def describe(self) -> str:
        shape = "any shape" if self.shape is None else str(tuple(self.shape))
        return f"{shape} {self.dtype}"


@dataclass(frozen=True)
class Shapes:
    """The problem a backend is asked about: ``y[M, N] = x[M, K] · W[N, K]ᵀ``.

    ``shard_sizes`` are the fused shard output sizes (sum = ``n``); ``batch`` is
    the expected number of rows M when known (the benchmark passes it; layers
    built without it assume small-batch decoding); ``dtype`` names the compute
    (output) dtype, which some kernels restrict.
    """

    n: int
    k: int
    batch: int | None = None
    shard_sizes: tuple[int, ...] = ()
    dtype: str = "bfloat16"

    def text(self) -> str:
        return f"{self.n}x{self.k}" + (f" batch {self.batch}" if self.batch else "")


@dataclass(frozen=True)
class Verdict:
    """A backend's answer to ``supports(...)``: ``ok`` or the reason it cannot."""

    ok: bool
    reason: str = "ok"

    @classmethod
    def yes(cls) -> Verdict:
        return cls(True, "ok")

    @classmethod
    def no(cls, reason: str) -> Verdict:
        return cls(False, reason)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class DeviceInfo:
    """Where a layer will run: ``type`` ("cpu" | "cuda"), CUDA compute capability, training flag."""

    type: str = "cpu"
    capability: tuple[int, int] | None = None
    training: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _dtype_ok(spec: TensorSpec, tensor: torch.Tensor) -> bool:
    if spec.dtype == ANY_DTYPE:
        return True
    if spec.dtype == ANY_FLOAT:
        return tensor.is_floating_point() and tensor.element_size() >= 2
    return str(tensor.dtype).removeprefix("torch.") == spec.dtype


def check_tensor(spec: TensorSpec, tensor: torch.Tensor, where: str) -> torch.Tensor:
    """``tensor`` if its dtype and shape match ``spec`` (a flexible shape is reshaped), else a LoadError."""
    if not _dtype_ok(spec, tensor):
        raise LoadError(f"dtype {tensor.dtype} does not match expected {spec.dtype}", field=where)
    if spec.shape is not None:
        shape = tuple(tensor.shape)
        if spec.flexible and tensor.numel() == max(1, math.prod(spec.shape)):
            return tensor.reshape(spec.shape)
        if shape != tuple(spec.shape):
            raise LoadError(f"shape {list(shape)} does not match expected {list(spec.shape)}", field=where)
    return tensor
