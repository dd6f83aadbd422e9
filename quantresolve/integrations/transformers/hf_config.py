"""The quantization configs transformers hands to quantresolve's quantizer (:mod:`.hf_quantizer`).

transformers picks a quantizer by a config's ``quant_method``. Two methods route to quantresolve
once :func:`~.registration.register` has run:

- ``quantresolve`` — :class:`QuantresolveConfig`, which a user passes: it holds quantresolve's
  loading options (naming profile, backend, denied backends, the producer the checkpoint must
  come from), never the quantization itself — that is always read from the checkpoint's own files
  (:func:`quantresolve.load_config`), whatever its producer;
- ``modelopt`` — :class:`QuantresolveModelOptConfig`, which transformers builds from a ModelOpt
  checkpoint's own ``quantization_config`` when it finds ``quant_method: modelopt`` there. It keeps
  the section as stored and has no options: transformers merges a config passed to
  ``from_pretrained`` into a checkpoint's by dropping the passed one's fields, so options given that
  way would be lost without a word; they are refused here instead, naming the way that works.

    >>> c = QuantresolveConfig(backend="dense_dequant", deny=["bnb_cpu"])
    >>> c.quant_method, c.to_dict()["deny"]
    ('quantresolve', ['bnb_cpu'])
    >>> QuantresolveConfig.from_dict(c.to_dict()).backend
    'dense_dequant'
    >>> QuantresolveConfig(expect_producer="gguf")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: quantization_config.expect_producer: 'gguf' is not a producer quantresolve reads; known: ...
    >>> QuantresolveModelOptConfig(quant_method="modelopt", quant_algo="NVFP4").quant_algo
    'NVFP4'
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from transformers.utils.quantization_config import QuantizationConfigMixin

from quantresolve.errors import ConfigError
from quantresolve.formats.algos import Producer

#: The ``quant_method`` of :class:`QuantresolveConfig`.
METHOD = "quantresolve"
#: The ``quant_method`` ModelOpt writes into a checkpoint's ``config.json``.
MODELOPT = "modelopt"
#: The options :class:`QuantresolveConfig` holds (``quant_method`` aside).
OPTIONS = ("profile", "backend", "deny", "expect_producer")
PRODUCERS: tuple[str, ...] = typing.get_args(Producer)
_FIELD = "quantization_config"


def _optional_str(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"expected a string, got {type(value).__name__}", field=f"{_FIELD}.{name}")
    return value


class QuantresolveConfig(QuantizationConfigMixin):
    """quantresolve's loading options for ``from_pretrained`` (``quant_method: quantresolve``).

    ``profile``: a built-in naming profile or a profile file (default: derived from transformers'
    renamings of the class built, as ``load_quantized`` does). ``backend`` / ``deny``: force or exclude
    dispatcher backends. ``expect_producer``: the producer the checkpoint must have been quantized by
    (``modelopt``, ``compressed-tensors``, ``bitsandbytes``, ...); another one is an error.
    """

    def __init__(self, profile: str | None = None, backend: str | None = None, deny: Sequence[str] = (),
                 expect_producer: str | None = None, quant_method: str = METHOD, **unknown: Any) -> None:
        if quant_method != METHOD:
            raise ConfigError(f"quant_method {quant_method!r} is not {METHOD!r}", field=f"{_FIELD}.quant_method")
        if unknown:
            raise ConfigError(f"unknown option(s) {sorted(unknown)}; known: {', '.join(OPTIONS)}", field=_FIELD)
        if isinstance(deny, str) or not all(isinstance(d, str) for d in deny):
            raise ConfigError("expected a list of backend names", field=f"{_FIELD}.deny")
        if expect_producer is not None and expect_producer not in PRODUCERS:
            raise ConfigError(f"{expect_producer!r} is not a producer quantresolve reads; known: "
                              f"{', '.join(PRODUCERS)}", field=f"{_FIELD}.expect_producer")
        self.quant_method = METHOD
        self.profile = _optional_str("profile", profile)
        self.backend = _optional_str("backend", backend)
        self.deny = list(deny)
        self.expect_producer = expect_producer


class QuantresolveModelOptConfig(QuantizationConfigMixin):
    """A ModelOpt checkpoint's own ``quantization_config`` section (``quant_method: modelopt``), as stored.

    Built by transformers from the checkpoint; loading options go in a :class:`QuantresolveConfig`
    through ``config=`` or :func:`~.pretrained.from_pretrained` (module docstring: why not here).
    """

    def __init__(self, **section: Any) -> None:
        given = sorted(set(section) & set(OPTIONS))
        if given:
            raise ConfigError(f"quantresolve options {given} are not read from a ModelOpt checkpoint's config: pass "
                              "QuantresolveConfig(...) through quantresolve.integrations.transformers.from_pretrained "
                              "or pretrained_config", field=_FIELD)
        self.__dict__.update(section)
        self.quant_method = MODELOPT


def loading_options(config: QuantizationConfigMixin) -> QuantresolveConfig:
    """The options a load runs with: ``config``'s own, or the defaults for a checkpoint's section."""
    return config if isinstance(config, QuantresolveConfig) else QuantresolveConfig()


__all__ = ["METHOD", "MODELOPT", "OPTIONS", "QuantresolveConfig", "QuantresolveModelOptConfig", "loading_options"]
