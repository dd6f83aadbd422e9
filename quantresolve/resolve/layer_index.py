"""ModelOpt ``quantized_layers`` keys in model space, built for configs with ~70k keys.

Keys are looked up by model-space name through :class:`MappedNames`: keys that
share a head the mapper rewrites uniformly are never mapped one by one (a lookup
swaps the head back and bisects the sorted keys), and two keys mapping onto one
name are still found at construction. The config entry behind an answer
(:class:`ConfigRef`, original and mapped spelling) is built only when a lookup
hits it. MoE roll-ups read the keys under one container as contiguous ranges of
the sorted keys, so a config with 384 experts × 61 layers costs a few bisections
per container, not one regex per key.

    >>> from quantresolve import load_config
    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> from quantresolve.resolve.namespace import Namespace
    >>> cfg = load_config({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "quantized_layers": {
    ...     "model.language_model.layers.1.mlp.experts.0.down_proj": {"quant_algo": "NVFP4", "group_size": 16},
    ...     "model.language_model.layers.1.mlp.experts.1.down_proj": {"quant_algo": "NVFP4", "group_size": 16}}})
    >>> mapper = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
    >>> index = LayerIndex(cfg, Namespace(mapper), [])
    >>> scheme, ref = index.get("language_model.model.layers.1.mlp.experts.0.down_proj")
    >>> scheme.algo, ref.original
    ('NVFP4', 'model.language_model.layers.1.mlp.experts.0.down_proj')
    >>> [(s.algo, count) for s, count, _ in index.experts("language_model.model.layers.1.mlp.experts")]
    [('NVFP4', 2)]
"""

from __future__ import annotations

from collections.abc import Sequence

from quantresolve.errors import MappingError
from quantresolve.formats.normalized import Finding, NormalizedConfig
from quantresolve.formats.scheme import QuantScheme
from quantresolve.naming.mapped_names import MappedNames
from quantresolve.resolve.namespace import Namespace
from quantresolve.resolve.resolution import ConfigRef


class LayerIndex:
    """Model-space name → (scheme, config entry) for one config's per-layer entries (sorted by name)."""

    def __init__(self, config: NormalizedConfig, namespace: Namespace, findings: list[Finding]) -> None:
        self._entries = config.layers
        names, self._schemes = config.layer_columns()
        self._names = MappedNames(names, namespace.mapper)
        if self._names.anomalous:  # dropped names or collisions: rare, reported entry by entry in sorted order
            self._report_anomalies(names, namespace, findings)
        self._refs: dict[int, ConfigRef] = {}
        self._found: dict[str, int | None] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def _report_anomalies(self, names: Sequence[str], namespace: Namespace, findings: list[Finding]) -> None:
        mapped_names = namespace.mapper.map_many(names)
        seen: dict[str, int] = {}
        for i, (entry, mapped) in enumerate(zip(self._entries, mapped_names, strict=True)):
            if mapped is None:
                findings.append(Finding(code="entry-dropped-by-mapper", severity="warning", subject=entry.name,
                                        file=entry.file, field=entry.field,
                                        message=f"{entry.name}: the profile's mapper drops this name"))
                continue
            first = seen.setdefault(mapped, i)
            if first == i:
                continue
            previous = self._entries[first]
            if previous.scheme != entry.scheme:
                raise MappingError(
                    f"config keys {previous.name!r} ({previous.scheme.algo}) and {entry.name!r} "
                    f"({entry.scheme.algo}) both map to {mapped!r}", file=entry.file, field=entry.field)
            findings.append(Finding(
                code="duplicate-after-mapping", severity="info", subject=mapped, file=entry.file, field=entry.field,
                message=f"config keys {previous.name!r} and {entry.name!r} both map to {mapped!r} (same scheme)"))

    def _ref(self, i: int) -> ConfigRef:
        ref = self._refs.get(i)
        if ref is None:
            entry = self._entries[i]
            ref = self._refs[i] = ConfigRef(original=entry.name, mapped=self._names.mapped(i), file=entry.file,
                                            field=entry.field)
        return ref

    def get(self, name: str) -> tuple[QuantScheme, ConfigRef] | None:
        """The entry whose mapped name is ``name`` (the first in sorted order when several are)."""
        found = self._found
        if name in found:  # a constructor asks for the same ancestors over and over
            i = found[name]
        else:
            i = found[name] = self._names.find(name)
        return None if i is None else (self._entries[i].scheme, self._ref(i))

    def experts(self, container: str) -> list[tuple[QuantScheme, int, ConfigRef]]:
        """The keys under ``container`` (its experts' projections) grouped by scheme:
        ``(scheme, count, first key's entry)``, the first key being the smallest model-space name —
        a 1,152-expert-key container costs a few bisections and one set of scheme identities."""
        ranges = self._names.under(container)
        if not ranges:
            return []
        spans = [self._schemes[r.start:r.stop] for r in ranges]
        one = spans[0][0]
        # the usual case: one scheme (count() compares by identity first, in C; equal schemes count as one)
        if all(span.count(one) == len(span) for span in spans):
            first = min((r.start for r in ranges), key=self._names.mapped)  # type: ignore[arg-type,return-value]
            return [(one, sum(len(r) for r in ranges), self._ref(first))]
        merged: dict[QuantScheme, list[int]] = {}  # equal schemes built separately count as one
        for r, span in zip(ranges, spans, strict=True):
            for i, scheme in zip(r, span, strict=True):
                slot = merged.setdefault(scheme, [0, i])
                slot[0] += 1
                if slot[1] != i and self._names.mapped(i) < self._names.mapped(slot[1]):  # type: ignore[operator]
                    slot[1] = i
        sides = sorted(merged.items(), key=lambda item: self._names.mapped(item[1][1]))  # type: ignore[arg-type,return-value]
        return [(scheme, n, self._ref(i)) for scheme, (n, i) in sides]
