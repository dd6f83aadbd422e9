"""Emulated activation quantization, so CPU outputs follow the producer's numerics: :class:`ActQuant`,
:class:`InputTransform`, and the registry of producer arithmetics they round with.

W8A8, FP8-static/dynamic, NVFP4 (W4A4), MXFP4/MXFP8 and W4A8 checkpoints were
calibrated for activations rounded to a low-precision grid before the GEMM. On
a CPU there is no such GEMM, so every backend except the integer ones (which
quantize to real codes with :meth:`ActQuant.quantize` and multiply integers)
applies :meth:`ActQuant.fake` — quantize then dequantize — before its matmul.

*How* a value is rounded depends on the producer, and the difference is not
noise: a different shared-exponent rule or scale dtype moves whole blocks of
activations to another grid point. So every :class:`ActQuant` names the
arithmetic it follows (``arith``), an :class:`Arithmetic` registered in :data:`ARITHMETIC`
by its producer's module of this package — ModelOpt's quantizers, compressed-tensors'
``forward_quantize``, bitsandbytes' LLM.int8, or plain float32 for activations no producer
describes (tests, tools). This module imports none of them: the package imports them all.

    >>> import torch
    >>> q = ActQuant(kind="int8", granularity="tensor", static_scale=0.5)
    >>> q.fake(torch.tensor([[0.74, -100.0]])).tolist()
    [[0.5, -64.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from quantresolve.errors import DispatchError

Tensor = torch.Tensor
#: The kinds with real codes (:meth:`ActQuant.quantize`), and the granularities whose scale spans a row.
SCALAR_KINDS = ("fp8", "int8")
ROW_WIDE = ("tensor", "token")


@dataclass(frozen=True)
class ActQuant:
    """How the input activations of a layer are quantized.

    - ``kind``: ``fp8`` (E4M3), ``int8``, ``nvfp4`` (E2M1 with E4M3 block scales
      under a per-tensor scale), ``mxfp4`` / ``mxfp8`` (E8M0 block scales),
      ``llm_int8`` (bitsandbytes: int8 rows, 16-bit outlier columns; see :mod:`.bitsandbytes`).
    - ``granularity``: ``tensor`` (one scale), ``token`` (one per row),
      ``group`` (one per ``group`` columns of a row).
    - ``static_scale``: the checkpoint's ``input_scale`` for static schemes; for
      NVFP4 the per-tensor second-level scale (ModelOpt ``input_scale``,
      compressed-tensors ``1 / input_global_scale``); ``None`` = dynamic.
    - ``threshold``: ``llm_int8`` only — the outlier threshold (0 = none).
    - ``arith``: whose arithmetic rounds the activations (a key of :data:`ARITHMETIC`:
      ``modelopt``, ``compressed-tensors``, ``bitsandbytes``, ``float32``).
    - ``static_dtype``: the dtype the checkpoint stores the static scale in
      (compressed-tensors divides in it).
    - ``global_scale``: compressed-tensors NVFP4's ``input_global_scale`` as
      stored (its reciprocal ``static_scale`` is not always exact).
    """

    kind: str
    granularity: str
    static_scale: float | None = None
    group: int | None = None
    threshold: float | None = None
    arith: str = "float32"
    static_dtype: str | None = None
    global_scale: float | None = None

    def __post_init__(self) -> None:
        # Resolved (and checked) once: a kind the arithmetic lacks is an error now, not in the hot path.
        object.__setattr__(self, "_arith", arithmetic(self))

    def key(self) -> tuple[object, ...]:
        return (self.kind, self.granularity, self.static_scale, self.group, self.threshold, self.arith,
                self.static_dtype, self.global_scale)

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Real codes for integer / FP8 GEMMs (``fp8`` / ``int8`` kinds, tensor or token scales):
        float32 ``codes`` holding the int8 or E4M3 values and the float32 multiplier that
        dequantizes them (broadcastable to ``x``), computed as the producer computes them."""
        return self._arith.quantize(self, x)  # type: ignore[attr-defined]

    def fake(self, x: Tensor) -> Tensor:
        """Quantize-dequantize ``x`` as the producer does (float32 result, same shape)."""
        return self._arith.fake(self, x).float()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class InputTransform:
    """What happens to ``x`` before the GEMM: AWQ/SmoothQuant ``pre_quant_scale``, then ``act``.

    ``k_order`` (GPTQ act-order) is the input-channel order a layer's *integer* kernels take ``x``
    in: their codes are stored sorted by group (``IntWeights.k_order``), so they multiply
    ``x[:, k_order]`` — exact, a gather per call. :meth:`apply` (the dense path, whose weight is in
    the natural order) ignores it; fused shards share a group only when their orders are equal.
    """

    pre_quant_scale: Tensor | None = None
    act: ActQuant | None = None
    k_order: Tensor | None = None

    def same_as(self, other: InputTransform) -> bool:
        """Equal transforms let fused shards share one quantized activation."""
        if (self.act.key() if self.act else None) != (other.act.key() if other.act else None):
            return False
        if not _same(self.k_order, other.k_order):
            return False
        return _same(self.pre_quant_scale, other.pre_quant_scale)

    def smooth(self, x: Tensor) -> Tensor:
        """``x · pre_quant_scale`` in torch's promoted dtype of the two — ModelOpt multiplies the
        activation by its ``pre_quant_scale`` buffer before quantizing, so a bf16 model rounds the
        product to bf16 — or ``x`` unchanged without one."""
        if self.pre_quant_scale is None:
            return x
        return x * self.pre_quant_scale.to(x.device)

    def apply(self, x: Tensor) -> Tensor:
        """Smooth then fake-quantize (float32)."""
        xs = self.smooth(x)
        return self.act.fake(xs) if self.act is not None else xs.float()


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(torch.equal(a, b))


def check_granularity(act: ActQuant, allowed: tuple[str, ...]) -> None:
    """Refuse a granularity an arithmetic does not implement (raised when the layer is built)."""
    if act.granularity not in allowed:
        raise DispatchError(f"{act.arith} {act.kind} activations with {act.granularity} scales are not "
                            f"implemented (known: {', '.join(allowed)})", field="input_activations")


Fake = Callable[[ActQuant, Tensor], Tensor]
Codes = Callable[[ActQuant, Tensor], tuple[Tensor, Tensor]]


class Arithmetic:
    """One producer's rounding: ``fakes`` maps kind → quantize-dequantize, ``granularities`` the
    scale granularities each kind implements, ``codes`` (optional) real codes and their
    dequantizing multiplier for the scalar kinds (fp8 / int8) with tensor or token scales."""

    def __init__(self, name: str, fakes: dict[str, Fake], granularities: dict[str, tuple[str, ...]],
                 codes: Codes | None = None) -> None:
        self.name, self.fakes, self.granularities, self.codes = name, fakes, granularities, codes

    def check(self, act: ActQuant) -> None:
        if act.kind not in self.fakes:
            raise DispatchError(f"{self.name} activation arithmetic has no {act.kind} "
                                f"(known: {', '.join(sorted(self.fakes))})", field="input_activations")
        check_granularity(act, self.granularities[act.kind])

    def fake(self, act: ActQuant, x: Tensor) -> Tensor:
        return self.fakes[act.kind](act, x)

    def quantize(self, act: ActQuant, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.codes is None or act.kind not in SCALAR_KINDS or act.granularity not in ROW_WIDE:
            raise DispatchError(f"{self.name} {act.kind} activations with {act.granularity} scales have no "
                                "integer / FP8 codes here", field="input_activations")
        return self.codes(act, x)


#: ``ActQuant.arith`` → its arithmetic (filled by the producer modules of this package).
ARITHMETIC: dict[str, Arithmetic] = {}


def register_arithmetic(name: str, fakes: dict[str, Fake], granularities: dict[str, tuple[str, ...]],
                        codes: Codes | None = None) -> Arithmetic:
    """Build a producer's :class:`Arithmetic` and register it under ``name``; returns it."""
    ARITHMETIC[name] = Arithmetic(name, fakes, granularities, codes)
    return ARITHMETIC[name]


def arithmetic(act: ActQuant) -> Arithmetic:
    """The registered arithmetic of ``act``, checked to implement its kind and granularity."""
    found = ARITHMETIC.get(act.arith)
    if found is None:
        raise DispatchError(f"unknown activation arithmetic {act.arith!r}; known: {', '.join(sorted(ARITHMETIC))}",
                            field="input_activations")
    found.check(act)
    return found
