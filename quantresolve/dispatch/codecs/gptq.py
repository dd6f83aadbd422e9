"""GPTQ (AutoGPTQ / GPTQModel / optimum): int32 words packed along K, act-order ``g_idx``, v1 / v2 zero points.

Tensors of a linear with ``K`` inputs, ``N`` outputs, ``b`` bits and ``G`` groups (field notes §7,
``docs`` of GPTQModel's ``PackableQuantLinear``):

- ``qweight`` int32 ``[K·b/32, N]``: each column one LSB-first bitstream of K codes (2/4/8 bits: 32/b
  whole codes per word; 3 bits: 32 codes in three words, one 96-bit little-endian stream);
- ``qzeros`` int32 ``[G, N·b/32]``: each row the zero points of one group, the same bitstream along N;
- ``scales`` float ``[G, N]``; ``g_idx`` int32 ``[K]``: the group of each input channel (``k // g``
  without act-order; a permutation of the groups with ``desc_act``).

``W[n, k] = (q[k, n] − z[g_idx[k], n]) · s[g_idx[k], n]``, where ``z`` is the stored field (``gptq_v2``)
or the stored field + 1 (``gptq``, v1: producers store zero points minus one). The difference is an
exact integer and its product with the fp16 / bf16 scale is exact in float32, so the one rounding is
the cast to the model's dtype — GPTQModel's fp16 dequantization (integer difference, one multiply
rounded to fp16) gives the same bits.

v1 and a zero point of 0: the stored field is then ``−1``, all ones. It is read per field,
``(field + 1) mod 2^b`` = 0. With ``sym: true`` every zero point must be ``2^(b−1)`` (the symmetric
kernels drop them), else the load fails naming ``qzeros``. Producers disagree there (old AutoGPTQ packing ORed the ``−1`` into the
following fields; GPTQModel converts v1 → v2 by a packed add that carries into the next field), so an
asymmetric v1 checkpoint with a zero point of 0 is ambiguous; ``gptq_v2`` is not.

Act-order: a ``g_idx`` that is not a permutation of the groups (a group id out of range, a group with
the wrong number of channels) is refused naming ``g_idx``. The integer view (:meth:`GptqCodec.int_weights`,
what the int4 / int8 kernels repack) has contiguous groups: its columns are the input channels sorted
by group (a stable argsort of ``g_idx``, done once at load), and the layer's input transform carries the
same order (``InputTransform.k_order``), so the kernels multiply ``x[:, order]`` — a gather per call,
exact. The dense weight is always in the natural order.

    >>> import torch
    >>> from quantresolve.formats.normalize_gptq import gptq_scheme
    >>> codec = codec_for(gptq_scheme(4, 32, True, False, "gptq"))
    >>> sorted((k, s.shape) for k, s in codec.expected(64, 128).items())
    [('g_idx', (128,)), ('qweight', (16, 64)), ('qzeros', (4, 8)), ('scales', (4, 64))]
"""

from __future__ import annotations

import math

import torch

from quantresolve.dispatch.activations import InputTransform
from quantresolve.dispatch.codecs.base import IntWeights, Tensors, WeightCodec
from quantresolve.dispatch.codecs.registry import codec_for, register_codec
from quantresolve.dispatch.numerics import unpack_int32_dense
from quantresolve.dispatch.specs import ANY_FLOAT, TensorSpec
from quantresolve.errors import DispatchError, LoadError
from quantresolve.formats.normalize_gptq import BITS

__all__ = ["GptqCodec", "codec_for", "group_order"]

#: Every label a GPTQ scheme can carry (``W{b}A16``, with ``_ASYM`` when ``sym`` is false).
LABELS = tuple(f"W{b}A16{asym}" for b in BITS for asym in ("", "_ASYM"))


def group_order(g_idx: torch.Tensor, groups: int, group: int, k: int) -> torch.Tensor | None:
    """The input order that makes the groups contiguous (``None`` when ``g_idx`` is already ``k // group``).

    Raises :class:`~quantresolve.errors.LoadError` (field ``g_idx``) unless every group ``j`` holds
    exactly ``group`` channels (the last one ``k − group·(groups − 1)``).

        >>> group_order(torch.tensor([1, 0, 0, 1]), 2, 2, 4).tolist()
        [1, 2, 0, 3]
        >>> group_order(torch.tensor([0, 0, 1, 1]), 2, 2, 4) is None
        True
    """
    g_idx = g_idx.reshape(-1).to(torch.int64)
    natural = torch.arange(k, device=g_idx.device) // group
    if torch.equal(g_idx, natural):
        return None
    if int(g_idx.min()) < 0 or int(g_idx.max()) >= groups:
        raise LoadError(f"g_idx holds group {int(g_idx.min()) if int(g_idx.min()) < 0 else int(g_idx.max())}, "
                        f"outside 0..{groups - 1}: not a permutation of the {groups} groups", field="g_idx")
    counts = torch.bincount(g_idx, minlength=groups)
    wanted = torch.full((groups,), group, dtype=counts.dtype)
    wanted[-1] = k - group * (groups - 1)
    if not torch.equal(counts, wanted):
        bad = int((counts != wanted).nonzero()[0])
        raise LoadError(f"g_idx gives group {bad} {int(counts[bad])} input channels, expected {int(wanted[bad])}: "
                        f"not a permutation of the {groups} groups of {group}", field="g_idx")
    return torch.argsort(g_idx, stable=True)


@register_codec("gptq", *LABELS)
class GptqCodec(WeightCodec):
    """GPTQ ``qweight`` / ``qzeros`` / ``scales`` / ``g_idx`` (see the module docstring)."""

    def __init__(self, scheme) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scheme)
        w = scheme.weights
        if w is None or w.type != "int" or w.num_bits not in BITS:
            raise DispatchError(f"GPTQ needs integer weights of {BITS} bits, got {scheme.summary()}",
                                field="scheme.weights")
        self.bits: int = w.num_bits
        self.group_size: int | None = w.group_size if w.strategy == "group" else None
        #: v1 (``gptq``) stores zero points minus one
        self.zero_offset = 1 if scheme.format == "gptq" else 0
        self.act_order = bool(scheme.options.get("desc_act"))
        self.symmetric = w.symmetric

    def _groups(self, k: int) -> tuple[int, int]:
        """(number of groups, group width)."""
        g = self.group_size or k
        return math.ceil(k / g), g

    def _words(self, count: int, what: str) -> int:
        if count * self.bits % 32:
            step = 32 // math.gcd(32, self.bits)
            raise DispatchError(f"{what} {count} does not fill whole int32 words of {self.bits}-bit codes "
                                f"(GPTQ needs a multiple of {step})", field="scheme")
        return count * self.bits // 32

    def expected(self, n: int, k: int) -> dict[str, TensorSpec]:
        groups, _ = self._groups(k)
        return {
            "qweight": TensorSpec((self._words(k, "in_features"), n), "int32"),
            "qzeros": TensorSpec((groups, self._words(n, "out_features")), "int32"),
            "scales": TensorSpec((groups, n), ANY_FLOAT),
            # without act-order g_idx is k // g (AutoGPTQ and GPTQModel write it anyway); with it, it is needed
            "g_idx": TensorSpec((k,), "int32", optional=not self.act_order),
        }

    def _order(self, t: Tensors, k: int) -> torch.Tensor | None:
        g_idx = t.get("g_idx")
        if g_idx is None:
            return None
        return group_order(g_idx, *self._groups(k), k)

    def int_weights(self, t: Tensors, n: int, k: int) -> IntWeights:
        half = 1 << (self.bits - 1)
        codes = unpack_int32_dense(t["qweight"].t().contiguous(), self.bits, k)  # [N, K] unsigned
        zeros = unpack_int32_dense(t["qzeros"], self.bits, n)  # [G, N] stored fields
        zeros = (zeros + self.zero_offset) & ((1 << self.bits) - 1)
        if self.symmetric and bool(zeros.ne(half).any()):
            # symmetric kernels (int8pack) drop zero points: a "sym" checkpoint must hold the midpoint only
            raise LoadError(f"sym is true, so every zero point is {half}, but qzeros holds "
                            f"{int(zeros[zeros.ne(half)][0])} ({'v1: stored minus one' if self.zero_offset else 'v2'})",
                            field="qzeros")
        order = self._order(t, k)
        if order is not None:
            codes = codes[:, order]
        _, g = self._groups(k)
        return IntWeights(q=(codes - half).to(torch.int8), scale=t["scales"].t().float().contiguous(),
                          zero=(zeros - half).t().float().contiguous(), group=g, bits=self.bits,
                          k_order=order)

    def dequantize(self, t: Tensors, n: int, k: int) -> torch.Tensor:
        return self.int_weights(t, n, k).dense(k)

    def dense_is_int_view(self) -> bool:
        return True

    def input_transform(self, t: Tensors) -> InputTransform:
        g_idx = t.get("g_idx")
        order = None if g_idx is None else group_order(g_idx, *self._groups(g_idx.numel()), g_idx.numel())
        return InputTransform(k_order=order)
