"""compressed-tensors resolution rules.

1. **excluded** — an ``ignore`` entry matches: exact name (mapped to model
   space), ``re:`` pattern with ``re.match`` semantics (anchored at the start
   only, matched against the checkpoint-space name), or a class name matching
   the module's kind. A fused layer is ignored only when **all** its present
   shards are; some-but-not-all is :class:`ConflictingShardsError`.
2. **targets**, by precedence across all groups — exact name
   (``target:name``) > ``re:`` pattern (``target:regex``) > fused expansion
   (``target:fused``: every present shard targeted by name, by one scheme) >
   class name (``target:class``, e.g. ``Linear``). Two groups matching at the
   same level with different schemes is an error, whatever their order in the
   file; the per-group ``format`` travels with the scheme.
3. **not-targeted** — no group matches: unquantized.

MoE containers (``kind="moe"``) resolve over the real expert projections only
(from the checkpoint when known; else expert 0 with the profile's declared
projections), which must all agree. Attention modules answer the
``kv_cache_scheme``.

Deliberate differences from the library's own ``match`` helpers (listed in a
test): exact beats regex (the library treats both as "name"); a fused layer
needs *all* shards to match (the library accepts *any*); same-level ties across
groups are errors (vLLM takes the first).
"""

from __future__ import annotations

from quantresolve.errors import ResolutionError
from quantresolve.formats.normalized import SchemeGroup
from quantresolve.resolve.context import Context, agree
from quantresolve.resolve.entries import EntryIndex, MatchModes
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.rules_registry import register_rules

_LEVELS = ("exact", "regex", "fused", "class")
_RULE = {"exact": "target:name", "regex": "target:regex", "fused": "target:fused", "class": "target:class"}


class CompressedTensorsRules:
    """Resolution for compressed-tensors configs."""

    #: ``ignore`` and ``targets`` alike: exact names, ``re:`` patterns, class names; no subtree.
    EXCLUDE_MODES = MatchModes(subtree=False, glob_ancestors=False)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ignore = EntryIndex(ctx.config.exclude, ctx.namespace, self.EXCLUDE_MODES)
        self.groups: list[tuple[SchemeGroup, EntryIndex]] = [
            (g, EntryIndex(g.targets, ctx.namespace, self.EXCLUDE_MODES)) for g in ctx.config.groups]

    def _ignored(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        return self.ctx.excluded_by(
            self.ignore, prefix, kind, trail, names=[prefix], noun="ignore entry", verb="ignored", list_shards=True,
            conflict=lambda cover: ResolutionError(
                f"fused layer {prefix!r}: ignore covers some shards but not all "
                f"(ignored: {', '.join(cover.covered)}; quantized: {', '.join(cover.uncovered)})"))

    def _name_level(self, name: str) -> tuple[str, list[tuple[SchemeGroup, object]]]:
        """Best name-level match for one module: ('exact'|'regex'|'', [(group, ref)])."""
        exact = [(g, idx.match_exact(name)) for g, idx in self.groups]
        exact = [(g, r) for g, r in exact if r is not None]
        if exact:
            return "exact", exact
        regex = [(g, idx.match_regex(name)) for g, idx in self.groups]
        regex = [(g, r) for g, r in regex if r is not None]
        return ("regex", regex) if regex else ("", [])

    def _pick(self, prefix: str, kind: str, level: str, matches: list, trail: list[str]) -> Resolution:
        schemes = {g.scheme for g, _ in matches}
        if len(schemes) > 1:
            raise ResolutionError(f"{prefix!r} is targeted at the same precedence ({level}) by groups with different "
                                  f"schemes: {', '.join(f'{g.name}={g.scheme.algo}' for g, _ in matches)}")
        group, ref = sorted(matches, key=lambda m: m[0].name)[0]
        trail.append(f"{_RULE[level]}: group {group.name!r} target {ref.original!r} ({group.scheme.format})")
        return Resolution(prefix, kind, group.scheme, _RULE[level], ref, tuple(trail))

    def _linear(self, prefix: str, kind: str) -> Resolution:
        trail: list[str] = []
        ignored = self._ignored(prefix, kind, trail)
        if ignored is not None:
            return ignored
        level, matches = self._name_level(prefix)
        if matches:
            return self._pick(prefix, kind, level, matches, trail)
        shards = self.ctx.shards(prefix)
        if shards:
            present = [s for s in shards if self.ctx.present(s)]
            per_shard = {s: self._name_level(s) for s in present}
            targeted = {s for s, (lvl, m) in per_shard.items() if m}
            if targeted and targeted != set(present):
                raise ResolutionError(f"fused layer {prefix!r}: shards {sorted(targeted)} are targeted by name but "
                                      f"{sorted(set(present) - targeted)} are not")
            if targeted:
                parts = [self._pick(s, kind, lvl, m, []) for s, (lvl, m) in sorted(per_shard.items())]
                trail.append("target:fused: every shard is targeted by name")
                return agree(prefix, kind, parts, rule="target:fused", trail=trail)
        classes = [(g, idx.match_class(kind)) for g, idx in self.groups]
        classes = [(g, r) for g, r in classes if r is not None]
        if classes:
            return self._pick(prefix, kind, "class", classes, trail)
        trail.append("not-targeted: no group targets this module by name, pattern, shards or class")
        return Resolution(prefix, kind, None, "not-targeted", None, tuple(trail))

    def resolve(self, prefix: str, kind: str) -> Resolution:
        if kind == "attention":
            trail: list[str] = []
            kv = self.ctx.config.kv_cache
            trail.append(f"kv-cache: kv_cache_scheme is {kv.algo if kv else None}")
            return Resolution(prefix, kind, kv, "kv-cache" if kv else "default", None, tuple(trail))
        if kind == "moe":
            trail = []
            ignored = self._ignored(prefix, kind, trail)
            if ignored is not None:
                return ignored
            projections = self.ctx.expert_projections(prefix)
            if not self.ctx.namespace.knows_checkpoint:
                trail.append("experts: checkpoint not read; expert 0's declared projections stand for all experts")
            parts = [self._linear(p, "linear") for p in projections]
            if not parts:
                trail.append("experts: the container has no expert projections")
                return Resolution(prefix, kind, None, "not-targeted", None, tuple(trail))
            trail.append(f"experts: {len(parts)} expert projection(s) agree")
            return agree(prefix, kind, parts, rule="experts", experts=True, trail=trail)
        return self._linear(prefix, kind)


register_rules("compressed-tensors", CompressedTensorsRules)
