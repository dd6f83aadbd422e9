"""KV-cache scales of ModelOpt / compressed-tensors checkpoints (``k_scale`` / ``v_scale``), and the FP8
rounding they stand for.

An engine with an FP8 KV cache stores ``e4m3(k / k_scale)`` and reads it back times
``k_scale`` (same for v); :meth:`KVCacheScales.round_trip` reproduces that rounding in the
compute dtype. *How* it divides and multiplies is the producer's arithmetic
(:mod:`.activations`): a ModelOpt checkpoint's reference model rounds the keys and values with
its ``k_bmm_quantizer`` / ``v_bmm_quantizer`` — the FP8 activation quantizer, with the
calibrated ``amax`` the export wrote as ``k_scale = amax / 448`` — so ``· (448 / amax)`` then
``· (1 / (448 / amax))``, not ``/ k_scale · k_scale``; a value on a bf16 tie after one of those
products and not the other rounds differently (``modelopt-w4a16-nvfp4-fp8kv``'s logits were
0.0044 off with the plain division, 0.0 with this). Other producers keep the plain float32
``e4m3(x / scale) · scale`` — no fixture pins their rounding down yet.

Place in the flow: a layer-level object beside :mod:`.linear`, over :mod:`.activations` only.

    >>> import torch
    >>> from quantresolve.formats.scheme import modelopt_kv_scheme
    >>> kv = make_kv_cache_scales(modelopt_kv_scheme("FP8"))
    >>> kv.load("k_scale", torch.tensor(0.5)); kv.load("v_scale", torch.tensor([0.25])); kv.finalize()
    >>> kv.k_scale, kv.v_scale, kv.arith
    (0.5, 0.25, 'modelopt')
    >>> k, v = kv.round_trip(torch.tensor([30.0, 100.0]), torch.tensor([1e6]))
    >>> k.tolist(), v.tolist()   # 100 / 0.5 = 200 is no e4m3 value (3 mantissa bits: 192 or 208); v saturates
    ([30.0, 96.0], [112.0])
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.errors import DispatchError, LoadError
from quantresolve.formats.scheme import QuantScheme

_SUPPORTED = {("float", 8)}
#: Producer → the :mod:`.activations` arithmetic that rounds its FP8 KV cache (others: ``float32``).
_ARITH = {"modelopt": "modelopt"}


class KVCacheScales:
    """Holds the per-tensor FP8 KV scales (amax / 448) an attention layer needs, and rounds keys and
    values with them as the checkpoint's producer does (:meth:`round_trip`)."""

    suffixes = ("k_scale", "v_scale")

    def __init__(self, scheme: QuantScheme) -> None:
        args = scheme.output_activations
        if args is None or (args.type, args.num_bits) not in _SUPPORTED:
            raise DispatchError(f"no KV-cache method implements {scheme.summary()}", field="kv_cache_scheme")
        self.scheme = scheme
        self.arith = _ARITH.get(scheme.producer, "float32")
        self._loaded: dict[str, float] = {}
        self.k_scale = self.v_scale = 1.0
        self._k: ActQuant | None = None
        self._v: ActQuant | None = None

    def expected_tensors(self) -> dict[tuple[None, str], tuple[tuple[int, ...], str]]:
        return {(None, s): ((), "float32") for s in self.suffixes}

    def load(self, suffix: str, tensor: torch.Tensor, shard: str | None = None) -> None:
        if suffix not in self.suffixes or tensor.numel() != 1:
            raise LoadError(f"unexpected KV-cache tensor {list(tensor.shape)}", field=suffix)
        self._loaded[suffix] = float(tensor.float().reshape(-1)[0])

    def finalize(self) -> None:
        missing = [s for s in self.suffixes if s not in self._loaded]
        if missing:
            raise LoadError(f"missing KV-cache scales {missing}", field="finalize")
        self.k_scale, self.v_scale = self._loaded["k_scale"], self._loaded["v_scale"]
        # A KV scale is a static per-tensor FP8 activation scale: the activation arithmetic rounds with it.
        self._k, self._v = (ActQuant(kind="fp8", granularity="tensor", static_scale=s, arith=self.arith)
                            for s in (self.k_scale, self.v_scale))

    def round_trip(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``key`` and ``value`` stored in the FP8 cache and read back, each in its own dtype."""
        if self._k is None or self._v is None:
            raise DispatchError("KV-cache scales used before finalize()", field="finalize")
        return self._k.fake(key).to(key.dtype), self._v.fake(value).to(value.dtype)


def make_kv_cache_scales(scheme: QuantScheme) -> KVCacheScales:
    return KVCacheScales(scheme)
