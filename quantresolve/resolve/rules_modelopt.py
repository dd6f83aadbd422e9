"""ModelOpt resolution rules.

For a prefix (model space), in this order — the first step that decides wins:

1. **excluded** — an ``exclude_modules`` / ``ignore`` entry matches the prefix
   or one of its wrapper candidates: exact, dotted-prefix subtree, or glob full
   match (of the checkpoint-space name or a dotted ancestor). Never a raw
   substring across a component boundary.
2. **direct** — a ``quantized_layers`` key (mapped to model space) equals the prefix.
3. **candidate** — a key equals a wrapper-prefix variant of the prefix
   (``language_model.model.X`` ↔ ``model.language_model.X``, ``*.lm_head`` ↔ ``lm_head``).
4. **container** — a key names a real ancestor module (a MoE container key
   covers its experts).
5. **packed-shards** — the prefix is a declared fused layer: every shard
   **present in the checkpoint** is resolved by steps 1–4 and 7; they must
   agree (else :class:`ConflictingShardsError` naming each shard and algo); a
   shard the checkpoint lacks is skipped, not counted unquantized.
6. **experts** (``kind="moe"``) — the keys under the container (its experts'
   projections) and its per-expert exclusions roll up only when all agree (else
   :class:`ConflictingExpertsError`); with the checkpoint's module list, every
   real expert projection is resolved and must agree.
7. **default** — the global algorithm; unquantized under ``MIXED_PRECISION``
   (a module not listed is unquantized there).

Never a sibling: nothing is inferred from a neighbouring module's entry.
Embeddings are unquantized (``not-quantizable``) unless listed; attention
modules answer the KV-cache scheme (``kv-cache``) unless excluded.
"""

from __future__ import annotations

from collections import defaultdict

from quantresolve.errors import ConflictingExpertsError
from quantresolve.resolve.candidates import wrapper_candidates
from quantresolve.resolve.context import Context, agree
from quantresolve.resolve.entries import EntryIndex, MatchModes
from quantresolve.resolve.layer_index import LayerIndex
from quantresolve.resolve.resolution import ConfigRef, Resolution
from quantresolve.resolve.rules_registry import register_rules


class ModelOptRules:
    """Resolution for ModelOpt configs (legacy and flat)."""

    EXCLUDE_MODES = MatchModes(subtree=True, glob_ancestors=True)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.exclude = EntryIndex(cfg.exclude, ctx.namespace, self.EXCLUDE_MODES)
        self.layers = LayerIndex(cfg, ctx.namespace, ctx.findings)
        self.expert_excludes: dict[str, list[ConfigRef]] = defaultdict(list)
        for mapped, ref in self.exclude.exact.items():
            hit = ctx.profile.expert_of(mapped)
            if hit is not None:
                self.expert_excludes[hit[0]].append(ref)
        self.default = cfg.default_scheme
        self.kv = cfg.kv_cache

    # --- steps ----------------------------------------------------------------------------------

    def _excluded(self, prefix: str, kind: str, names: list[str], trail: list[str]) -> Resolution | None:
        """Step 1: the first of ``names`` (the prefix, then its wrapper candidates) an exclude entry matches."""
        for name in names:
            hit = self.exclude.match(name)
            if hit is not None:
                ref, how = hit
                trail.append(f"excluded: entry {ref.original!r} matches {name} ({how})")
                return Resolution(prefix, kind, None, "excluded", ref, tuple(trail))
        trail.append(f"excluded: no exclude entry matches {', '.join(names)}")
        return None

    def _lookup(self, prefix: str, kind: str, names: list[str], trail: list[str]) -> Resolution | None:
        """Steps 2–4: direct, candidate, container."""
        for i, name in enumerate(names):
            hit = self.layers.get(name)
            if hit is not None:
                rule = "direct" if i == 0 else "candidate"
                trail.append(f"{rule}: key {hit[1].original!r} names {name}")
                return Resolution(prefix, kind, hit[0], rule, hit[1], tuple(trail))
        trail.append("direct/candidate: no quantized_layers key names " + ", ".join(names))
        if self.layers:
            for name in names:
                pos = name.rfind(".")
                while pos > 0:
                    anc = name[:pos]
                    hit = self.layers.get(anc)
                    if hit is not None:
                        trail.append(f"container: key {hit[1].original!r} names ancestor {anc}")
                        return Resolution(prefix, kind, hit[0], "container", hit[1], tuple(trail))
                    pos = anc.rfind(".")
            trail.append("container: no key names an ancestor module")
        return None

    def _default(self, prefix: str, kind: str, trail: list[str]) -> Resolution:
        if self.ctx.config.is_mixed_precision:
            trail.append("default: MIXED_PRECISION and not listed → unquantized")
        else:
            trail.append(f"default: global algorithm {self.default.algo if self.default else None}")
        return Resolution(prefix, kind, self.default, "default", None, tuple(trail))

    def _single(self, prefix: str, kind: str, allow_packed: bool = True) -> Resolution:
        names = [prefix, *wrapper_candidates(prefix)]
        trail: list[str] = []
        excluded = self._excluded(prefix, kind, names, trail)
        if excluded is not None:
            return excluded
        found = self._lookup(prefix, kind, names, trail)
        if found is not None:
            return found
        if allow_packed:
            shards = self.ctx.shards(prefix)
            if shards is not None:
                present = [s for s in shards if self.ctx.present(s)]
                absent = [s for s in shards if s not in present]
                if absent:
                    trail.append(f"packed-shards: skipping shards absent from the checkpoint: {', '.join(absent)}")
                if present:
                    parts = [self._single(s, kind, allow_packed=False) for s in present]
                    trail.append(f"packed-shards: {len(parts)} shard(s) agree")
                    return agree(prefix, kind, parts, rule="packed-shards", trail=trail)
        return self._default(prefix, kind, trail)

    def _moe(self, prefix: str) -> Resolution:
        names = [prefix, *wrapper_candidates(prefix)]
        trail: list[str] = []
        excluded = self._excluded(prefix, "moe", names, trail)
        if excluded is not None:
            return excluded
        found = self._lookup(prefix, "moe", names, trail)
        if found is not None:
            return found
        listed = self.layers.experts(prefix)
        excluded = self.expert_excludes.get(prefix, [])
        if self.ctx.namespace.knows_checkpoint:
            projections = self.ctx.expert_projections(prefix)
            if projections:
                parts = [self._single(p, "linear", allow_packed=False) for p in projections]
                trail.append(f"experts: {len(parts)} expert projections in the checkpoint agree")
                return agree(prefix, "moe", parts, rule="experts", experts=True, trail=trail)
        if listed or excluded:
            if len(listed) + bool(excluded) > 1:  # name the size of each side, not just one representative
                sides = [f"{n} key(s) → {scheme.algo} (first {ref.mapped})" for scheme, n, ref in listed]
                if excluded:
                    sides.append(f"{len(excluded)} exclusion(s) → unquantized (first "
                                 f"{min(r.mapped or r.original for r in excluded)})")
                raise ConflictingExpertsError(f"experts of MoE container {prefix!r} disagree: {'; '.join(sides)}")
            parts = [Resolution(ref.mapped or ref.original, "linear", scheme, "direct", ref)
                     for scheme, _, ref in listed]
            parts += [Resolution(ref.mapped or ref.original, "linear", None, "excluded", ref) for ref in excluded]
            count = sum(n for _, n, _ in listed)
            trail.append(f"experts: {count} key(s) under the container and {len(excluded)} per-expert exclusion(s) "
                         "(checkpoint not read: assumed to cover every expert)")
            return agree(prefix, "moe", parts, rule="experts", experts=True, trail=trail)
        return self._default(prefix, "moe", trail)

    # --- entry point ----------------------------------------------------------------------------

    def resolve(self, prefix: str, kind: str) -> Resolution:
        if kind == "moe":
            return self._moe(prefix)
        if kind == "attention":
            trail: list[str] = []
            excluded = self._excluded(prefix, kind, [prefix, *wrapper_candidates(prefix)], trail)
            if excluded is not None:
                return excluded
            trail.append(f"kv-cache: kv_cache_quant_algo is {self.kv.algo if self.kv else None}")
            return Resolution(prefix, kind, self.kv, "kv-cache" if self.kv else "default", None, tuple(trail))
        if kind == "embedding":
            names = [prefix, *wrapper_candidates(prefix)]
            trail = []
            found = self._lookup(prefix, kind, names, trail)
            if found is not None and found.rule in ("direct", "candidate"):
                return found
            return Resolution(prefix, kind, None, "not-quantizable", None,
                              ("not-quantizable: ModelOpt does not quantize embeddings unless listed",))
        return self._single(prefix, kind)


register_rules("modelopt", ModelOptRules)
