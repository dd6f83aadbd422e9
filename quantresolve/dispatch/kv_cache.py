"""KV-cache scales of ModelOpt / compressed-tensors checkpoints (``k_scale`` / ``v_scale``).

    >>> import torch
    >>> from quantresolve.formats.scheme import modelopt_kv_scheme
    >>> kv = make_kv_cache_scales(modelopt_kv_scheme("FP8"))
    >>> kv.load("k_scale", torch.tensor(0.5)); kv.load("v_scale", torch.tensor([0.25])); kv.finalize()
    >>> kv.k_scale, kv.v_scale
    (0.5, 0.25)
"""

from __future__ import annotations

import torch

from quantresolve.errors import DispatchError, LoadError
from quantresolve.formats.scheme import QuantScheme

_SUPPORTED = {("float", 8)}


class KVCacheScales:
    """Holds the per-tensor FP8 KV scales (amax / 448) an attention layer needs."""

    suffixes = ("k_scale", "v_scale")

    def __init__(self, scheme: QuantScheme) -> None:
        args = scheme.output_activations
        if args is None or (args.type, args.num_bits) not in _SUPPORTED:
            raise DispatchError(f"no KV-cache method implements {scheme.summary()}", field="kv_cache_scheme")
        self.scheme = scheme
        self._loaded: dict[str, float] = {}
        self.k_scale = self.v_scale = 1.0

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


def make_kv_cache_scales(scheme: QuantScheme) -> KVCacheScales:
    return KVCacheScales(scheme)
