"""The dispatcher: resolved schemes → torch linear methods on the fastest correct backend.

Sub-layers, each importing only those below it (checked by the "dispatch sub-layers" import-linter
contract in ``pyproject.toml``), top to bottom: :mod:`.tp` (distributed wrappers) → :mod:`.linear`
(``QuantLinear``) and :mod:`.kv_cache` → :mod:`.selection` → :mod:`.backends` (guards, registry,
catalog = the preference order) → :mod:`.shards` → :mod:`.chunked` → :mod:`.slicing` (where each
tensor may be cut) → :mod:`.codecs` (weight formats) → :mod:`.activations` (each producer's activation
rounding) and :mod:`.kernels` (implementations) → :mod:`.specs`, :mod:`.numerics`, :mod:`.presets`.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> layer = make_linear(modelopt_scheme("W4A16_AWQ", group_size=128), 256, 64)
    >>> layer.backend in ("avx512_gemv_cpu", "int4pack_cpu")  # ours where the CPU has AVX-512 BF16
    True
"""

from quantresolve.dispatch.backends import BACKENDS, Backend
from quantresolve.dispatch.kv_cache import KVCacheScales, make_kv_cache_scales
from quantresolve.dispatch.linear import QuantLinear, make_linear
from quantresolve.dispatch.selection import (
           ENV_DENY,
           ENV_FORCE,
           backend_verdicts,
           device_info,
           select_backend,
)
from quantresolve.dispatch.specs import DeviceInfo, Shapes, TensorSpec, Verdict

__all__ = ["BACKENDS", "ENV_DENY", "ENV_FORCE", "Backend", "DeviceInfo", "KVCacheScales", "QuantLinear",
           "Shapes", "TensorSpec", "Verdict", "backend_verdicts", "device_info", "make_kv_cache_scales",
           "make_linear", "select_backend"]
