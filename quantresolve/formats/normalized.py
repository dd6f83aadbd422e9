"""The one normalized view of a quantization config, whatever its producer.

Every name-bearing entry keeps its original spelling, how it matches
(``exact`` / ``glob`` / ``regex`` / ``class``) and where it came from (file and
field path), so reports can always point back at the line a user wrote.

    >>> e = NameEntry.classify("model.layers.61*", file="hf_quant_config.json",
    ...                        field="quantization.exclude_modules[0]")
    >>> e.kind, e.original
    ('glob', 'model.layers.61*')
    >>> NameEntry.classify("re:.*visual.*", file="config.json", field="ignore[0]").kind
    'regex'
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from operator import attrgetter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from quantresolve.errors import ConfigError
from quantresolve.formats.algos import Producer
from quantresolve.formats.scheme import QuantScheme
from quantresolve.util.patterns import BoundedRegex

Severity = Literal["error", "warning", "info"]
EntryKind = Literal["exact", "glob", "regex", "class"]

_GLOB_CHARS = frozenset("*?[")


class Finding(BaseModel):
    """Something worth telling a user: a stable ``code``, a severity, a message, what it is about."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    subject: str | None = None
    file: str | None = None
    field: str | None = None


class NameEntry(BaseModel):
    """A module name or pattern as a config spells it (checkpoint namespace)."""

    model_config = ConfigDict(frozen=True)

    original: str
    kind: EntryKind
    file: str
    field: str
    #: The regular expression a ``regex`` entry matches with, when it is not ``original`` without its
    #: ``re:`` prefix (GPTQModel ``dynamic`` keys carry ``-:`` / ``+:`` or nothing; see :meth:`regex_body`).
    pattern: str | None = None

    def regex_body(self) -> str:
        """The regular expression of a ``regex`` entry (``re:.*gate`` → ``.*gate``).

            >>> NameEntry(original="-:.*gate", kind="regex", file="c", field="f", pattern=".*gate").regex_body()
            '.*gate'
        """
        return self.pattern if self.pattern is not None else self.original[3:]

    @classmethod
    def classify(cls, spelling: str, *, file: str, field: str, class_names: bool = False) -> NameEntry:
        """Decide how ``spelling`` matches.

        ``re:`` prefix → regex; glob metacharacters → glob; with ``class_names``
        (compressed-tensors targets) a dot-free CamelCase word → class name;
        anything else → exact module path (which also covers its subtree where
        the producer's rules say so).
        """
        if spelling.startswith("re:"):
            kind: EntryKind = "regex"
        elif any(c in _GLOB_CHARS for c in spelling):
            kind = "glob"
        elif class_names and "." not in spelling and spelling[:1].isupper():
            kind = "class"
        else:
            kind = "exact"
        return cls(original=spelling, kind=kind, file=file, field=field)


def name_entries(names: Iterable[str] | None, *, file: str, field: str,
                 class_names: bool = False) -> tuple[NameEntry, ...]:
    """Every name of a config's name list (``field``) as a :class:`NameEntry` located at ``field[i]``.

        >>> [e.kind for e in name_entries(["lm_head", "re:.*gate"], file="config.json", field="ignore")]
        ['exact', 'regex']
    """
    out = []
    for i, name in enumerate(names or ()):
        if not name.strip():
            raise ConfigError("empty module name", file=file, field=f"{field}[{i}]")
        entry = NameEntry.classify(name, file=file, field=f"{field}[{i}]", class_names=class_names)
        if entry.kind == "regex":  # an invalid pattern is refused where it is read, naming it
            if not name[3:]:
                raise ConfigError("empty regular expression 're:' would match every module; accepted: "
                                  "'re:' followed by a pattern, e.g. 're:.*visual.*'", file=file, field=entry.field)
            BoundedRegex(name[3:], file=file, field=entry.field)
        out.append(entry)
    return tuple(out)


class LayerEntry(BaseModel):
    """A per-layer setting: ModelOpt ``quantized_layers`` key → scheme."""

    model_config = ConfigDict(frozen=True)

    name: str
    scheme: QuantScheme
    file: str
    field: str


class SchemeGroup(BaseModel):
    """A compressed-tensors config group (or a ModelOpt flat ``config_groups`` entry)."""

    model_config = ConfigDict(frozen=True)

    name: str
    scheme: QuantScheme
    targets: tuple[NameEntry, ...]
    field: str


class NormalizedConfig(BaseModel):
    """What a checkpoint says about its own quantization, producer-neutral.

    - ``quant_algo``: the global canonical label (ModelOpt: may be
      ``MIXED_PRECISION``; bitsandbytes: ``BNB_*``; compressed-tensors: the
      single group's label, or ``None`` when groups differ).
    - ``default_scheme``: applies to every quantizable layer not excluded and
      not listed per layer (ModelOpt non-mixed, bitsandbytes); ``None`` when
      unlisted layers stay unquantized (MIXED_PRECISION) or groups decide (CT).
    - ``groups``: compressed-tensors config groups, sorted by name.
    - ``exclude``: exclude / ignore / skip entries, original spelling kept.
    - ``layers``: per-layer entries, sorted by name.
    - ``include``: inclusion lists (optimum's GPTQ ``block_name_to_quantize`` /
      ``modules_in_block_to_quantize``): when given, a module no entry of a list matches is
      unquantized. Entries of one list (one ``field``, its index aside) are alternatives; every
      list present must match.
    - ``kv_cache``: the KV-cache scheme, if any.
    - ``findings``: disagreements and oddities found while loading.
    - ``sources``: the files read, relative to the checkpoint directory.
    """

    model_config = ConfigDict(frozen=True)

    producer: Producer
    producer_version: str | None = None
    format: str | None = None
    quant_algo: str | None = None
    default_scheme: QuantScheme | None = None
    groups: tuple[SchemeGroup, ...] = ()
    exclude: tuple[NameEntry, ...] = ()
    layers: tuple[LayerEntry, ...] = ()
    include: tuple[NameEntry, ...] = ()
    kv_cache: QuantScheme | None = None
    findings: tuple[Finding, ...] = ()
    sources: tuple[str, ...] = ()
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    _layer_columns: tuple[tuple[LayerEntry, ...], tuple[str, ...], tuple[QuantScheme, ...]] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _sorted_layers(self) -> NormalizedConfig:
        """Per-layer entries are kept sorted by name (lookups bisect them, see ``LayerIndex``); their
        names and schemes are gathered once here, as columns, for indexes over ~10^5 entries."""
        names = tuple(map(_NAME, self.layers))
        if not all(map(operator.le, names, names[1:])):
            object.__setattr__(self, "layers", tuple(sorted(self.layers, key=lambda e: (e.name, e.field))))
            names = tuple(map(_NAME, self.layers))
        self._layer_columns = (self.layers, names, tuple(map(_SCHEME, self.layers)))
        return self

    def layer_columns(self) -> tuple[tuple[str, ...], tuple[QuantScheme, ...]]:
        """``(names, schemes)`` of :attr:`layers`, position by position (built once per ``layers``)."""
        cols = self._layer_columns
        if cols is None or cols[0] is not self.layers:  # e.g. after model_copy(update={"layers": ...})
            cols = self._layer_columns = (self.layers, tuple(map(_NAME, self.layers)),
                                          tuple(map(_SCHEME, self.layers)))
        return cols[1], cols[2]

    @property
    def is_mixed_precision(self) -> bool:
        return self.quant_algo == "MIXED_PRECISION"

    def algos(self) -> list[str]:
        """Every canonical label this config can assign, sorted."""
        labels = {e.scheme.algo for e in self.layers} | {g.scheme.algo for g in self.groups}
        if self.default_scheme is not None:
            labels.add(self.default_scheme.algo)
        return sorted(labels)


_NAME = attrgetter("name")
_SCHEME = attrgetter("scheme")
