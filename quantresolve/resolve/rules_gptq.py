"""GPTQ resolution rules (AutoGPTQ, optimum / transformers, GPTQModel and its ``dynamic`` map).

For a prefix (model space), in this order — the first step that decides wins:

1. **not-quantizable** — embeddings and attention (GPTQ quantizes linear layers only).
2. **packed-shards** — a declared fused layer (``qkv_proj``, ``gate_up_proj``) is resolved shard by
   shard, over the shards present in the checkpoint (GPTQ producers quantize the unfused modules, and
   their names are what the rules match); the shards must agree, else
   :class:`~quantresolve.errors.ConflictingShardsError` naming each shard, its answer and the key
   that decided it — never "first shard wins".
3. **excluded** — a ``-:`` ``dynamic`` key matches the module (``re.match`` over its checkpoint-space
   spelling: anchored at the start only, as GPTQModel and vLLM match), or ``lm_head: false`` and the
   module is the LM head (by name, mapped to model space, or by kind).
4. **not-included** — optimum's inclusion lists: a module outside ``block_name_to_quantize`` (a module
   path covering its subtree) or whose trailing components no ``modules_in_block_to_quantize`` entry
   names is unquantized.
5. **dynamic** — the positive keys (``+:`` or none) matching the module; every match must give the same
   scheme, else :class:`~quantresolve.errors.ResolutionError` naming the keys.
6. **default** — the config's ``bits`` / ``group_size`` / ``desc_act`` / ``sym``.

MoE containers (``kind="moe"``) resolve over their expert projections (from the checkpoint when known),
which must agree (``experts``).

Where this differs from the producers, and why (order independence, failure classes 6 and 12 of the
field notes):

- GPTQModel takes the first matching key after moving every ``-:`` key first; vLLM takes the first
  matching key in the file's order. The same checkpoint's ``quantize_config.json`` (negatives first)
  and ``config.json`` (keys sorted, so ``+:`` before ``-:``) differ in order, so "first match" gives
  two answers for one checkpoint. Here a negative key always wins (GPTQModel's rule) and two positive
  keys with different overrides matching one module are an error, whatever their order.
- vLLM matches ``dynamic`` against the *fused* prefix (``...qkv_proj``), so per-shard keys never apply
  there; here keys match the checkpoint's own (unfused) module names, as GPTQModel wrote them, and a
  fused layer whose shards fall under different keys is a conflict error.
- optimum's ``block_name_to_quantize`` is a raw ``startswith`` and ``modules_in_block_to_quantize`` a raw
  ``endswith`` (vLLM: substring); here both match whole path components (``model.layers.1`` never
  covers ``model.layers.12``; ``k_proj`` never names ``qk_proj``).

    >>> from quantresolve import load_config
    >>> from quantresolve.resolve.resolver import Resolver
    >>> cfg = load_config({"quant_method": "gptq", "bits": 4, "group_size": 128,
    ...     "dynamic": {"-:model\\\\.layers\\\\.1\\\\..*": {}, r".*\\.0\\.mlp\\..*": {"bits": 8}}})
    >>> r = Resolver(cfg, "llama")
    >>> [(p, r.resolve(p).algo, r.resolve(p).rule) for p in ("model.layers.0.mlp.down_proj",
    ...     "model.layers.0.self_attn.qkv_proj", "model.layers.1.mlp.down_proj", "lm_head")]  # doctest: +NORMALIZE_WHITESPACE
    [('model.layers.0.mlp.down_proj', 'W8A16', 'dynamic'), ('model.layers.0.self_attn.qkv_proj', 'W4A16', 'packed-shards'),
     ('model.layers.1.mlp.down_proj', None, 'excluded'), ('lm_head', None, 'excluded')]
"""

from __future__ import annotations

import re
from collections import defaultdict

from quantresolve.errors import ConflictingShardsError, ResolutionError
from quantresolve.formats.normalized import NameEntry, SchemeGroup
from quantresolve.resolve.candidates import wrapper_candidates
from quantresolve.resolve.context import Context, agree
from quantresolve.resolve.entries import EntryIndex, MatchModes, ref_of
from quantresolve.resolve.resolution import ConfigRef, Resolution
from quantresolve.resolve.rules_registry import register_rules
from quantresolve.util.patterns import BoundedRegex

_INDEX = re.compile(r"(\[\d+\])+$")


def inclusion_lists(entries: tuple[NameEntry, ...]) -> dict[str, list[NameEntry]]:
    """:attr:`~quantresolve.formats.normalized.NormalizedConfig.include` by list (field without its index).

        >>> e = lambda f: NameEntry(original="x", kind="exact", file="c", field=f)
        >>> sorted(inclusion_lists((e("q.a[0][1]"), e("q.a[1][0]"), e("q.b"))))
        ['q.a', 'q.b']
    """
    out: dict[str, list[NameEntry]] = defaultdict(list)
    for entry in entries:
        out[_INDEX.sub("", entry.field)].append(entry)
    return dict(out)


def describe(res: Resolution) -> str:
    """``name → algo (rule, key)`` of one part, for conflict messages."""
    key = f", {res.source.original!r}" if res.source is not None else ""
    return f"{res.prefix} → {res.algo or 'unquantized'} ({res.rule}{key})"


class GptqRules:
    """Resolution for GPTQ configs (see the module docstring)."""

    #: ``-:`` keys are regexes; the ``lm_head`` entry (``lm_head: false``) an exact name covering its subtree.
    EXCLUDE_MODES = MatchModes(subtree=True, glob_ancestors=False)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.skip = EntryIndex(cfg.exclude, ctx.namespace, self.EXCLUDE_MODES)
        self.head_flag = next((e for e in cfg.exclude if e.kind == "exact" and e.field.rsplit(".", 1)[-1] == "lm_head"),
                              None)
        self.overrides: list[tuple[SchemeGroup, NameEntry, BoundedRegex]] = [
            (g, t, BoundedRegex(t.regex_body(), file=t.file, field=t.field)) for g in cfg.groups for t in g.targets]
        self.include = [(field, EntryIndex(entries, ctx.namespace, self.EXCLUDE_MODES))
                        for field, entries in sorted(inclusion_lists(cfg.include).items())]

    # --- steps ----------------------------------------------------------------------------------

    def _excluded(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        if kind == "lm_head" and self.head_flag is not None:
            trail.append("excluded: lm_head is false: GPTQ leaves the output embedding unquantized")
            return Resolution(prefix, kind, None, "excluded", ref_of(self.head_flag, None), tuple(trail))
        for name in (prefix, *wrapper_candidates(prefix)):
            hit = self.skip.match(name, kind)
            if hit is not None:
                ref, how = hit
                what = "lm_head is false" if ref.field == (self.head_flag.field if self.head_flag else None) else (
                    f"dynamic key {ref.original!r}")
                trail.append(f"excluded: {what} matches {name} ({how})")
                return Resolution(prefix, kind, None, "excluded", ref, tuple(trail))
        trail.append("excluded: no -: dynamic key matches" + ("" if self.head_flag is None else ", not the LM head"))
        return None

    def _not_included(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        for field, index in self.include:
            if index.match(prefix, kind) is None:
                first = index.entries[0]
                trail.append(f"not-included: no entry of {field} names {prefix}")
                return Resolution(prefix, kind, None, "not-included",
                                  ConfigRef(original=first.original, mapped=None, file=first.file, field=field),
                                  tuple(trail))
            trail.append(f"included: an entry of {field} names it")
        return None

    def _dynamic(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        names = sorted(self.ctx.namespace.preimages(prefix))
        hits = [(g, t) for g, t, rx in self.overrides if any(rx.match(n) for n in names)]
        if not hits:
            if self.overrides:
                trail.append(f"dynamic: no override key matches {', '.join(names)}")
            return None
        schemes = {g.scheme for g, _ in hits}
        if len(schemes) > 1:
            keys = "; ".join(f"{t.original!r} → {g.scheme.summary()}" for g, t in sorted(hits, key=lambda h: h[1].original))
            raise ResolutionError(f"{prefix!r} is matched by dynamic keys with different overrides: {keys}. "
                                  "GPTQModel and vLLM take the first match in file order, and config.json and "
                                  "quantize_config.json order the keys differently: make the keys disjoint",
                                  file=hits[0][1].file, field=hits[0][1].field)
        group, target = min(hits, key=lambda h: h[1].original)
        trail.append(f"dynamic: key {target.original!r} matches ({len(hits)} matching key(s), one override)")
        return Resolution(prefix, kind, group.scheme, "dynamic", ref_of(target, None), tuple(trail))

    def _single(self, prefix: str, kind: str) -> Resolution:
        trail: list[str] = []
        found = (self._excluded(prefix, kind, trail) or self._not_included(prefix, kind, trail)
                 or self._dynamic(prefix, kind, trail))
        if found is not None:
            return found
        default = self.ctx.config.default_scheme
        trail.append(f"default: {default.summary() if default else None}")
        return Resolution(prefix, kind, default, "default", None, tuple(trail))

    def _linear(self, prefix: str, kind: str) -> Resolution:
        shards = self.ctx.shards(prefix)
        if not shards:
            return self._single(prefix, kind)
        present = [s for s in shards if self.ctx.present(s)]
        trail = [f"packed-shards: resolving {len(present)} present shard(s) of {len(shards)}"]
        parts = [self._single(s, kind) for s in present]
        if len({p.scheme for p in parts}) > 1:
            raise ConflictingShardsError(f"shards of fused layer {prefix!r} disagree: "
                                         + "; ".join(describe(p) for p in sorted(parts, key=lambda p: p.prefix)))
        if not parts:
            return self._single(prefix, kind)
        return agree(prefix, kind, parts, rule="packed-shards", trail=trail)

    # --- entry point ----------------------------------------------------------------------------

    def resolve(self, prefix: str, kind: str) -> Resolution:
        if kind in ("embedding", "attention"):
            return Resolution(prefix, kind, None, "not-quantizable", None,
                              (f"not-quantizable: GPTQ does not quantize {kind} modules",))
        if kind == "moe":
            projections = self.ctx.expert_projections(prefix)
            if not projections:
                return Resolution(prefix, kind, None, "not-quantizable", None,
                                  ("experts: the container has no expert projections",))
            parts = [self._single(p, "linear") for p in projections]
            trail = [f"experts: {len(parts)} expert projection(s) agree"]
            return agree(prefix, kind, parts, rule="experts", experts=True, trail=trail)
        return self._linear(prefix, kind)


register_rules("gptq", GptqRules)
