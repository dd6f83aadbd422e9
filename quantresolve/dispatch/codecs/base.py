"""The codec interface: what a weight format's codec answers, and the views integer / FP4 / FP8 kernels read.

A codec (one class per producer format, in :mod:`.modelopt`, :mod:`.compressed_tensors`,
:mod:`.bitsandbytes`, :mod:`.fp8`, :mod:`.mxfp4`; the unquantized layer's in :mod:`.dense`) knows the
tensors a layer of its format carries, dequantizes them bit-exactly as the producer does, gives integer,
packed-FP4 or FP8 views for the kernels (:class:`IntWeights`, :class:`FP4Weights`, :class:`FP8Weights` — a
codec opts in to a kernel family by overriding :meth:`WeightCodec.int_weights`, :meth:`~WeightCodec.fp4_weights`
or :meth:`~WeightCodec.fp8_weights`), and builds the layer's input transform (:mod:`..activations`). Codecs register with
:mod:`.registry`.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> act_kind(modelopt_scheme("NVFP4")), act_kind(modelopt_scheme("W4A16_AWQ"))
    ('nvfp4', None)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quantresolve.dispatch.activations import ActQuant, InputTransform
from quantresolve.dispatch.specs import TensorSpec
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme

Tensors = dict[str, torch.Tensor]


@dataclass
class IntWeights:
    """Integer view of a weight for integer kernels: ``W = (q - zero) · repeat(scale, group)``.

    ``q`` int8 ``[N, K]`` signed codes; ``scale`` float32 ``[N, K/group]``;
    ``zero`` float32 integer zero points of the same shape or ``None``;
    ``group`` = K for per-channel scales; ``dtype`` the dtype the producer subtracts and
    multiplies in (compressed-tensors: its scale's dtype; ModelOpt: float32) — the scale and
    zero point are exact in float32, so converting back loses nothing.
    ``k_order`` (GPTQ act-order): the columns of ``q`` (and the groups of ``scale``) are the
    input channels in this order — sorted by group at load, so that groups are contiguous —
    and kernels take ``x[:, k_order]``; ``None`` is the natural order. :meth:`dense` always
    returns the natural order.
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor | None
    group: int
    bits: int
    dtype: torch.dtype = torch.float32
    k_order: torch.Tensor | None = None

    def dense(self, k: int) -> torch.Tensor:
        """``[N, k]`` in ``dtype``: ``(q − zero) · repeat(scale, group)`` — one multiply per element —
        with the columns put back in the natural input order when the view is in ``k_order``."""
        codes = self.q.to(self.dtype)
        if self.zero is not None:
            codes = codes - self.zero.to(self.dtype).repeat_interleave(self.group, dim=-1)[..., :k]
        out = codes * self.scale.to(self.dtype).repeat_interleave(self.group, dim=-1)[..., :k]
        if self.k_order is None:
            return out
        natural = torch.empty_like(out)
        natural[:, self.k_order.to(out.device)] = out
        return natural

    def regroup(self, g: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """float32 scale and zero point ``[N, K/g]`` for a kernel group ``g`` dividing ``group``: each
        column repeated ``group / g`` times (zero point ``None`` when there is none)."""
        reps = self.group // g
        zero = self.zero.float().repeat_interleave(reps, dim=1) if self.zero is not None else None
        return self.scale.float().repeat_interleave(reps, dim=1), zero


def row_scale(t: Tensors, key: str, n: int) -> torch.Tensor:
    """A per-output-row scale (``[N]``, ``[N, 1]`` or flexible) as float32 ``[N, 1]``."""
    return t[key].float().reshape(n, 1)


@dataclass
class FP4Weights:
    """Packed FP4 view for FP4 kernels: ``W = e2m1(packed) · repeat(scale, group) · tensor_scale``.

    ``packed`` uint8 ``[N, K/2]`` (low nibble = even element, bit 3 = sign);
    ``scale`` ``[N, K/group]``: float8_e4m3fn (``kind`` ``nvfp4``, group 16) or
    uint8 E8M0 exponents (``mxfp4``, group 32); ``tensor_scale`` the float32
    per-tensor multiplier (ModelOpt ``weight_scale_2``, compressed-tensors
    ``1 / weight_global_scale``) or ``None`` (MXFP4).

    The exact kernels (``float_gemv_cpu``) compute each group's scale as the producer does:
    ``scale.float() · tensor_scale`` — or, when ``divisor`` is given, ``scale.float() / divisor``
    (compressed-tensors divides by its ``weight_global_scale``; multiplying by the reciprocal rounds
    differently). ``packed_key`` / ``scale_key`` name the checkpoint tensors the two came from, so
    a backend holding a repacking of them can give them back for ``dequantize()``.
    """

    packed: torch.Tensor
    scale: torch.Tensor
    group: int
    kind: str
    tensor_scale: torch.Tensor | None
    divisor: torch.Tensor | None = None
    packed_key: str = "weight"
    scale_key: str = "weight_scale"


@dataclass
class FP8Weights:
    """E4M3 view for FP8 kernels: ``W = round(e4m3(weight) · repeat(scale, block), product_dtype)``.

    ``weight`` float8_e4m3fn ``[N, K]``; ``scale`` the multipliers ``[⌈N/bn⌉, ⌈K/bk⌉]`` for ``block`` =
    ``(bn, bk)`` — per tensor ``(N, K)`` with one value ``[1, 1]``, per channel ``(1, K)`` with ``[N, 1]``,
    128×128 blocks ``(128, 128)`` — as the producer multiplies by them: whatever the checkpoint calls them
    (HF fine-grained FP8: ``weight_scale_inv``) and however it derives them (ModelOpt: its ``1 / (448 / amax)``,
    not the exported ``amax / 448``). ``product_dtype`` is the dtype the producer multiplies in, and so rounds
    the product to (compressed-tensors: the scale's dtype; ModelOpt and HF FP8: float32). ``weight_key`` names
    the checkpoint tensor the codes come from or stand for (the multipliers come from small tensors).
    A per-tensor or per-channel ``scale.reshape(-1)`` is one value or one per output row (``scaled_mm_cuda``
    reads it so). Codecs compute ``dequantize()`` through :meth:`dense`, so the kernels cannot drift from it.

        >>> import torch
        >>> v = FP8Weights(torch.ones(2, 4, dtype=torch.float8_e4m3fn), torch.tensor([[0.5], [2.0]]), (1, 4))
        >>> v.dense().tolist()
        [[0.5, 0.5, 0.5, 0.5], [2.0, 2.0, 2.0, 2.0]]
    """

    weight: torch.Tensor
    scale: torch.Tensor
    block: tuple[int, int]
    product_dtype: torch.dtype = torch.float32
    weight_key: str = "weight"

    def dense(self) -> torch.Tensor:
        """``[N, K]`` in ``product_dtype``: one multiply per element, as the producer computes it (a multiplier
        grid of one row or column broadcasts instead of being repeated)."""
        n, k = self.weight.shape
        bn, bk = self.block
        m = self.scale.to(self.product_dtype)
        m = m.repeat_interleave(bn, 0)[:n] if m.shape[0] > 1 else m
        m = m.repeat_interleave(bk, 1)[:, :k] if m.shape[1] > 1 else m
        return self.weight.to(self.product_dtype) * m


class WeightCodec:
    """Base of every codec; subclasses fill in :meth:`expected` and :meth:`dequantize`.

    ``model_dtype`` is the dtype the model computes in (the layer's compute dtype, which a loaded
    checkpoint takes from its ``config.json``); a codec whose producer rounds an intermediate
    weight to the model's dtype uses it (ModelOpt W4A8 AWQ). float32 — no rounding — by default.
    """

    model_dtype: torch.dtype = torch.float32
    #: True when :meth:`dequantize` returns a checkpoint tensor as it is (no arithmetic to chunk).
    copy_free: bool = False

    def __init__(self, scheme: QuantScheme) -> None:
        self.scheme = scheme

    def dense_is_int_view(self) -> bool:
        """True when :meth:`dequantize` *is* ``int_weights(...).dense(k)``: a backend holding the
        integer codes and the view's scales can then rebuild the dense weight bit for bit."""
        return False

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        """Checkpoint suffix → spec for one shard of ``n`` output rows."""
        raise NotImplementedError

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        """Dense ``[n, k]`` weight, computed with the producer's arithmetic (dtype may be float32)."""
        raise NotImplementedError

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights | None:
        """Integer view for int kernels, or ``None`` when the format is not integer."""
        return None

    def fp4_weights(self, t: Tensors, n: int, k: int) -> FP4Weights | None:
        """Packed FP4 view for FP4 kernels, or ``None`` when the format is not NVFP4 / MXFP4."""
        return None

    def fp8_weights(self, t: Tensors, n: int, k: int) -> FP8Weights | None:
        """E4M3 view for FP8 kernels, or ``None`` when the weights are not FP8 with tensor, channel or block
        multipliers."""
        return None

    def input_transform(self, t: Tensors) -> InputTransform:
        """Pre-quant scale and activation quantizer of this shard."""
        return InputTransform(pre_quant_scale=t.get("pre_quant_scale"), act=self.act_quant(t))

    def act_quant(self, t: Tensors) -> ActQuant | None:
        """Activation quantizer from the scheme and the static scale tensors (see :func:`act_from_scheme`)."""
        s = t.get("input_scale")
        return act_from_scheme(self.scheme, self.static_input_scale(t),
                               static_dtype=dtype_name(s) if s is not None else None)

    def static_input_scale(self, t: Tensors) -> float | None:
        """The per-tensor input scale as a float (``input_scale`` by default)."""
        s = t.get("input_scale")
        return float(s.float().reshape(-1)[0]) if s is not None else None


class IntCodec(WeightCodec):
    """A codec whose dense weight *is* its integer view in float32 (ModelOpt's int formats):
    subclasses implement only :meth:`int_weights`, and the two cannot drift apart."""

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        view = self.int_weights(t, n, k)
        assert view is not None  # an IntCodec always has an integer view
        return view.dense(k)

    def dense_is_int_view(self) -> bool:
        return True


def act_kind(scheme: QuantScheme) -> str | None:
    """``fp8`` | ``int8`` | ``nvfp4`` | ``mxfp4`` | ``mxfp8`` for the scheme's input activations."""
    a = scheme.input_activations
    if a is None:
        return None
    if a.type == "int":
        return "int8"
    microscaled = a.scale_dtype == "uint8"
    if a.num_bits == 4:
        return "mxfp4" if microscaled else "nvfp4"
    return "mxfp8" if microscaled else "fp8"


def act_from_scheme(scheme: QuantScheme, static_scale: float | None, *, static_dtype: str | None = None,
                    global_scale: float | None = None) -> ActQuant | None:
    """Build the :class:`ActQuant` a scheme's ``input_activations`` describe, rounding the way
    the scheme's producer rounds (``arith`` = ``scheme.producer``).

    Static schemes (``dynamic`` false) use ``static_scale`` (stored as ``static_dtype``); NVFP4
    uses it as the per-tensor second-level scale even though its block scales are dynamic.
    Asymmetric activations (a zero point) are not emulated: refused rather than run symmetric.
    """
    a = scheme.input_activations
    kind = act_kind(scheme)
    if a is None or kind is None:
        return None
    if not a.symmetric:
        raise DispatchError(f"{scheme.summary()}: asymmetric activation quantization is not implemented",
                            field="input_activations")
    granularity = {"tensor": "tensor", "token": "token"}.get(a.strategy, "group")
    keeps_static = (not a.dynamic) or kind == "nvfp4"
    return ActQuant(kind=kind, granularity=granularity,
                    static_scale=static_scale if keeps_static else None,
                    group=a.group_size if granularity == "group" else None, arith=scheme.producer,
                    static_dtype=static_dtype if keeps_static else None, global_scale=global_scale)


def dtype_name(t: torch.Tensor) -> str:
    """``torch.bfloat16`` → ``"bfloat16"``."""
    return str(t.dtype).removeprefix("torch.")
