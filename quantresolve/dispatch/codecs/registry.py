"""The codec registry: (producer, format or algorithm) → codec class, and :func:`codec_for`.

Place in the flow: imports no codec — each producer module of this package registers its classes
with :func:`register_codec`, and the package imports them all, so the registry is complete whenever
anything under :mod:`quantresolve.dispatch.codecs` is imported.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> type(codec_for(modelopt_scheme("NVFP4"))).__name__
    'ModelOptNVFP4'
    >>> codec_overrides(modelopt_scheme("W4A16_AWQ"), "int_weights")
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme

#: (producer, format-or-algo) → codec class. compressed-tensors keys by ``scheme.format``,
#: ModelOpt and bitsandbytes by ``scheme.algo``.
CODECS: dict[tuple[str, str], type[WeightCodec]] = {}


def register_codec(producer: str, *keys: str) -> Callable[[type[WeightCodec]], type[WeightCodec]]:
    def deco(cls: type[WeightCodec]) -> type[WeightCodec]:
        for key in keys:
            CODECS[(producer, key)] = cls
        return cls
    return deco


def codec_key(scheme: QuantScheme) -> tuple[str, str]:
    return (scheme.producer, scheme.format if scheme.producer == "compressed-tensors" else scheme.algo)


def codec_overrides(scheme: QuantScheme, method: str) -> bool:
    """True when the scheme's codec implements ``method`` itself (e.g. ``int_weights``)."""
    cls = CODECS.get(codec_key(scheme))
    return cls is not None and getattr(cls, method) is not getattr(WeightCodec, method)


def codec_for(scheme: QuantScheme, model_dtype: torch.dtype | None = None) -> WeightCodec:
    """The codec of a scheme; a scheme with no implementation is an error naming it."""
    cls = CODECS.get(codec_key(scheme))
    if cls is None:
        producer, key = codec_key(scheme)
        raise DispatchError(f"no linear method implements {scheme.summary()} "
                            f"({producer} {key!r}); refusing to run it as dense",
                            field="scheme")
    codec = cls(scheme)
    if model_dtype is not None:
        codec.model_dtype = model_dtype
    return codec
