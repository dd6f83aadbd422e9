"""The producer registry: every config layout quantresolve reads, how it is recognised and normalized.

This module imports no producer module. Each producer's ``normalize_<producer>`` module builds one
:class:`ProducerFormat` and calls :func:`register_format` when it is imported;
:mod:`quantresolve.formats.producers` imports them all (one line per producer), and the loader only
asks the registry — it never names a producer::

    >>> import quantresolve.formats.producers  # registers the built-in producers
    >>> [f.name for f in registered_formats()]
    ['modelopt', 'compressed-tensors', 'bitsandbytes', 'gptq', 'awq', 'fp8', 'mxfp4']
    >>> detect_producer({"quant_method": "bitsandbytes", "load_in_4bit": True}, file="config.json",
    ...                 field="quantization_config")
    'bitsandbytes'
    >>> producer_format("modelopt").sidecar.file
    'hf_quant_config.json'

Detection tries the formats by ascending :attr:`ProducerFormat.precedence`; the first whose
``detect`` accepts a ``quantization_config`` section decides. Order matters where layouts overlap:
transformers routes any config with a true ``load_in_*`` flag to bitsandbytes (so it goes first),
and a ModelOpt flat config may carry compressed-tensors-style ``config_groups`` next to its
``quant_algo`` (so ModelOpt goes before compressed-tensors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from quantresolve.errors import ConfigError, ProducerConflictError, UnsupportedFormatError
from quantresolve.formats.algos import Producer

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

    from quantresolve.formats.normalized import NormalizedConfig

#: ``quant_method`` values of formats that are recognised but outside quantresolve's scope. A format
#: that becomes supported registers a :class:`ProducerFormat` and leaves this table.
OUT_OF_SCOPE_METHODS = {
    "aqlm": "AQLM", "hqq": "HQQ", "eetq": "EETQ", "quanto": "Quanto",
    "torchao": "torchao", "fbgemm_fp8": "FBGEMM FP8", "bitnet": "BitNet", "higgs": "HIGGS", "vptq": "VPTQ",
    "spqr": "SpQR", "gguf": "GGUF", "auto-round": "AutoRound", "fp_quant": "FP-Quant", "quark": "Quark",
}

#: ``(section, *, file, field) -> NormalizedConfig`` for a ``quantization_config`` section.
Normalizer = Callable[..., "NormalizedConfig"]


@dataclass(frozen=True)
class LayoutSchema:
    """A JSON Schema quantresolve commits for one of a producer's file layouts (``schemas/<file>``).

    ``model`` returns the pydantic model; it is called only when schemas are written (the
    compressed-tensors model is the library's own, which imports torch).
    """

    file: str
    title: str
    model: Callable[[], type[BaseModel]]


@dataclass(frozen=True)
class Sidecar:
    """A producer's own config file next to ``config.json`` (ModelOpt's ``hf_quant_config.json``).

    - ``recognise(document)``: a standalone JSON document is this file;
    - ``parse(document, file)``: validate it (located errors), returning the parsed file;
    - ``alone(parsed, file)``: the normalized config when the sidecar is the only config;
    - ``with_section(parsed, section, file, field)``: sidecar plus this producer's own
      ``config.json`` section (the producer decides which is authoritative);
    - ``stale(used, sidecar_config, field)``: ``config.json`` holds another producer's config, which
      engines load; the sidecar is reported, never silently dropped.
    """

    file: str
    recognise: Callable[[Mapping[str, Any]], bool]
    parse: Callable[[Any, str], Any]
    alone: Callable[[Any, str], NormalizedConfig]
    with_section: Callable[[Any, dict[str, Any], str, str], NormalizedConfig]
    stale: Callable[[NormalizedConfig, NormalizedConfig, str], NormalizedConfig]


@dataclass(frozen=True)
class ProducerFormat:
    """What the loader needs to know about one producer's config layout.

    - ``name``: the producer label (one of :data:`~quantresolve.formats.algos.Producer`);
    - ``precedence``: detection order, lower first (see the module docstring);
    - ``detect(section)``: this producer wrote the ``quantization_config`` section;
    - ``normalize(section, *, file, field)``: the section as a :class:`NormalizedConfig`;
    - ``quant_methods``: ``quant_method`` values that name this producer outright;
    - ``section_keys``: keys that mark a bare JSON document as this producer's section;
    - ``producer_names``: ``producer.name`` values that claim this producer (ModelOpt writes one);
    - ``base_methods``: another producer's ``quant_method`` values this one accepts next to its own keys
      (ModelOpt's DeepSeek-V4 exports say ``quant_method: fp8`` with ``producer.name: modelopt``), so the
      two claims are not a conflict;
    - ``sidecar``: its own file next to ``config.json``, if any;
    - ``schemas``: the JSON Schemas of its file layouts.
    """

    name: str
    precedence: int
    detect: Callable[[Mapping[str, Any]], bool]
    normalize: Normalizer
    quant_methods: tuple[str, ...] = ()
    section_keys: tuple[str, ...] = ()
    producer_names: tuple[str, ...] = ()
    base_methods: tuple[str, ...] = ()
    sidecar: Sidecar | None = None
    schemas: tuple[LayoutSchema, ...] = ()


_FORMATS: dict[str, ProducerFormat] = {}


def register_format(fmt: ProducerFormat) -> ProducerFormat:
    """Add ``fmt`` to the registry (once per name); returns it, so a module can keep it as a constant."""
    if fmt.name not in get_args(Producer):
        raise ValueError(f"producer {fmt.name!r} is not in quantresolve.formats.algos.Producer; add it there")
    taken = sorted(set(fmt.quant_methods) & set(OUT_OF_SCOPE_METHODS))
    if taken:
        raise ValueError(f"quant_method(s) {taken} of {fmt.name!r} are listed in OUT_OF_SCOPE_METHODS; remove them")
    if fmt.name in _FORMATS and _FORMATS[fmt.name] != fmt:
        raise ValueError(f"producer {fmt.name!r} is registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def register_method_format(name: str, *, precedence: int, model: Callable[[], type[BaseModel]],
                           normalize: Callable[..., NormalizedConfig], schema: tuple[str, str]) -> ProducerFormat:
    """Register a producer recognised by ``quant_method == name`` alone (GPTQ, AWQ): its section is validated
    with ``model()`` (located errors), then ``normalize(parsed, file=, field=)``; ``schema`` is its layout
    schema's ``(file, title)``."""
    from quantresolve.formats.validation import validate_model

    def normalize_section(section: dict[str, Any], *, file: str, field: str) -> NormalizedConfig:
        return normalize(validate_model(model(), section, file=file, prefix=field), file=file, field=field)

    return register_format(ProducerFormat(
        name=name, precedence=precedence, detect=lambda section: section.get("quant_method") == name,
        normalize=normalize_section, quant_methods=(name,), schemas=(LayoutSchema(*schema, model),)))


def registered_formats() -> list[ProducerFormat]:
    """Every registered producer, in the order of :data:`~quantresolve.formats.algos.Producer`."""
    order = get_args(Producer)
    return sorted(_FORMATS.values(), key=lambda f: order.index(f.name))


def producer_format(name: str) -> ProducerFormat:
    """The registered format of producer ``name``."""
    return _FORMATS[name]


def supported_names() -> str:
    """``"modelopt, compressed-tensors, bitsandbytes, ..."``: the registered producers, for messages."""
    return ", ".join(f.name for f in registered_formats())


def looks_like_section(data: Mapping[str, Any]) -> bool:
    """Whether a bare JSON document is a ``quantization_config`` section of some producer."""
    return "quant_method" in data or any(k in data for f in _FORMATS.values() for k in f.section_keys)


def _by_quant_method(data: Mapping[str, Any]) -> str | None:
    method = data.get("quant_method")
    return next((f.name for f in _FORMATS.values() if method in f.quant_methods), None)


def _check_one_claim(data: Mapping[str, Any], *, file: str, field: str) -> None:
    """A section whose ``quant_method`` and ``producer.name`` name different producers is ambiguous."""
    by_method = _by_quant_method(data)
    producer = data.get("producer")
    named = str(producer.get("name", "")).lower() if isinstance(producer, dict) else ""
    by_name = next((f.name for f in _FORMATS.values() if named in f.producer_names), None)
    if by_method is not None and by_name is not None and by_method != by_name \
            and data["quant_method"] not in _FORMATS[by_name].base_methods:
        where = f"{field}.producer.name" if field else "producer.name"
        raise ProducerConflictError(f"quant_method is {data['quant_method']!r} but producer.name is {named!r}: "
                                    "one section claims two producers", file=file, field=where)


def detect_producer(data: Any, *, file: str, field: str) -> str:
    """Which producer wrote this ``quantization_config`` (or a clear refusal)."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected an object, got {type(data).__name__}", file=file, field=field)
    _check_one_claim(data, file=file, field=field)
    for fmt in sorted(_FORMATS.values(), key=lambda f: f.precedence):
        if fmt.detect(data):
            return fmt.name
    qm = data.get("quant_method")
    if isinstance(qm, str) and qm.lower() in OUT_OF_SCOPE_METHODS:
        raise UnsupportedFormatError(
            f"quant_method {qm!r} is {OUT_OF_SCOPE_METHODS[qm.lower()]}, which quantresolve does not handle; "
            f"supported: {supported_names()}", file=file, field=f"{field}.quant_method")
    raise ConfigError(f"cannot tell the producer: quant_method is {qm!r}; supported: {supported_names()}",
                      file=file, field=f"{field}.quant_method" if qm is not None else field)


def normalize_section(data: Any, *, file: str, field: str) -> NormalizedConfig:
    """Detect the producer of a ``quantization_config`` section and normalize it with that producer's rules."""
    producer = detect_producer(data, file=file, field=field)
    return _FORMATS[producer].normalize(data, file=file, field=field)


__all__ = ["OUT_OF_SCOPE_METHODS", "LayoutSchema", "ProducerFormat", "Sidecar", "detect_producer",
           "looks_like_section", "normalize_section", "producer_format", "register_format", "register_method_format",
           "registered_formats",
           "supported_names"]
