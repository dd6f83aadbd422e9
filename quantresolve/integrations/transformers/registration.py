"""Route transformers' ``from_pretrained`` to quantresolve: explicit, idempotent, never over another quantizer.

transformers finds a quantizer by ``quant_method`` in two tables that
``transformers.quantizers.auto.register_quantization_config`` / ``register_quantizer`` fill, and
both refuse a name already taken. :func:`register` claims two names:

- ``quantresolve`` — the method of :class:`~.hf_config.QuantresolveConfig`. A config passed as
  ``from_pretrained(..., quantization_config=QuantresolveConfig())`` is used as is when the
  checkpoint's own ``quant_method`` is one transformers does not know; a checkpoint with a method
  transformers knows (compressed-tensors, bitsandbytes, fp8, gptq, awq, mxfp4) is merged with the
  passed config by transformers, which refuses two config classes — for those the checkpoint's
  config is replaced instead (``config=``, :mod:`.pretrained`).
- ``modelopt`` — the method ModelOpt writes into ``config.json``, which transformers 5.23 does not
  know: with it registered, ``AutoModelForCausalLM.from_pretrained(modelopt_checkpoint)`` loads
  through quantresolve with no argument at all. Only while the name is free: a transformers (or
  another package) that registers ``modelopt`` itself keeps it — :func:`register` leaves it alone
  and says so in :attr:`Registration.deferred`, and ModelOpt checkpoints still reach quantresolve
  through ``config=`` / :func:`~.pretrained.from_pretrained`. ``register(modelopt=False)`` never claims it.

Nothing registers at ``import quantresolve`` (or of this package): only a call does. Calling again
changes nothing.

    >>> r = register()
    >>> r.routed
    ('quantresolve', 'modelopt')
    >>> register() == r
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers.quantizers import auto

from quantresolve.integrations.transformers.hf_config import (
    METHOD,
    MODELOPT,
    QuantresolveConfig,
    QuantresolveModelOptConfig,
)
from quantresolve.integrations.transformers.hf_quantizer import QuantresolveHfQuantizer

#: quant_method → the config class transformers builds for it when it routes to quantresolve.
CONFIG_CLASSES = {METHOD: QuantresolveConfig, MODELOPT: QuantresolveModelOptConfig}


@dataclass(frozen=True)
class Registration:
    """``routed``: the methods transformers now loads through quantresolve; ``deferred``: the ones
    another quantizer already holds, left to it."""

    routed: tuple[str, ...]
    deferred: tuple[str, ...]


def _ours(method: str) -> bool:
    return (auto.AUTO_QUANTIZER_MAPPING.get(method) is QuantresolveHfQuantizer
            and auto.AUTO_QUANTIZATION_CONFIG_MAPPING.get(method) is CONFIG_CLASSES[method])


def _free(method: str) -> bool:
    return method not in auto.AUTO_QUANTIZER_MAPPING and method not in auto.AUTO_QUANTIZATION_CONFIG_MAPPING


def register(*, modelopt: bool = True) -> Registration:
    """Register quantresolve's quantizer with transformers (module docstring); safe to call any number of times."""
    routed, deferred = [], []
    for method in (METHOD, MODELOPT) if modelopt else (METHOD,):
        if not _ours(method):
            if not _free(method):
                deferred.append(method)
                continue
            auto.register_quantization_config(method)(CONFIG_CLASSES[method])
            auto.register_quantizer(method)(QuantresolveHfQuantizer)
        routed.append(method)
    return Registration(tuple(routed), tuple(deferred))


__all__ = ["CONFIG_CLASSES", "Registration", "register"]
