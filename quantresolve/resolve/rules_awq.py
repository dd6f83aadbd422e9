"""AWQ resolution rules (AutoAWQ GEMM checkpoints, as transformers and vLLM load them).

1. **not-quantizable** — embeddings and attention.
2. **excluded** — a ``modules_to_not_convert`` entry matches **whole path components**: its components
   occur as a contiguous run of the module's (``visual`` covers ``model.visual.blocks.0.attn.qkv``;
   ``gate`` covers ``model.layers.0.mlp.gate`` but not ``...mlp.gate_proj``; ``model.layers.1`` never
   covers ``model.layers.12``). Entries are mapped into model space first; a fused layer is excluded only
   when all its present shards are (some but not all is
   :class:`~quantresolve.errors.ConflictingShardsError`).
3. **producer-default-skip** — the LM head: AutoAWQ quantizes the decoder blocks only, transformers
   always adds the output embedding to the skips, and vLLM's AWQ method is for linear layers, not its
   ``ParallelLMHead``.
4. **default** — every other linear (each expert's projections of an MoE container too).

Where this differs from the producers, and why: AutoAWQ (on block-relative names), vLLM and
transformers 4.x match an entry as a raw **substring** of the module name; transformers 5.23 matches a
start-anchored regex or a raw suffix, and not a substring (so its ``visual`` misses ``model.visual.*``).
A substring crossing a component boundary is the field notes' failure class 11 (``kv_proj`` inside
``qkv_proj``): an answer that depends on how two names happen to overlap. So components are matched
here, and where a substring-matching engine would leave a module unquantized that these rules quantize,
the resolver reports ``exclude-substring-only`` (warning) naming the entry and the module — the
checkpoint's tensors then show which reading its producer meant (the audit's
``config-quantized-tensors-dense`` when the module was left dense).

    >>> from quantresolve import load_config
    >>> from quantresolve.resolve.resolver import Resolver
    >>> cfg = load_config({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True,
    ...                    "version": "gemm", "modules_to_not_convert": ["gate"]})
    >>> r = Resolver(cfg, "transformers")
    >>> [(r.resolve(p).algo, r.resolve(p).rule) for p in ("model.layers.0.mlp.gate", "model.layers.0.mlp.gate_proj")]
    [(None, 'excluded'), ('W4A16_ASYM', 'default')]
    >>> [f.code for f in r.findings]
    ['exclude-substring-only']
"""

from __future__ import annotations

from quantresolve.errors import ConflictingShardsError
from quantresolve.formats.normalized import Finding
from quantresolve.resolve.candidates import wrapper_candidates
from quantresolve.resolve.context import Context, agree
from quantresolve.resolve.entries import EntryIndex, MatchModes
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.rules_registry import register_rules

#: The finding a substring-only match raises, and its severity (the audit's code registry repeats it).
SUBSTRING_ONLY = "exclude-substring-only"
SEVERITY = "warning"


class AwqRules:
    """Resolution for AWQ configs (see the module docstring)."""

    EXCLUDE_MODES = MatchModes(subtree=True, components=True)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.skip = EntryIndex(ctx.config.exclude, ctx.namespace, self.EXCLUDE_MODES)
        self._reported: set[tuple[str, str]] = set()

    def _excluded(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        return self.ctx.excluded_by(
            self.skip, prefix, kind, trail, names=[prefix, *wrapper_candidates(prefix)],
            noun="modules_to_not_convert entry", verb="not converted",
            conflict=lambda cover: ConflictingShardsError(
                f"fused layer {prefix!r}: modules_to_not_convert covers {sorted(cover.covered)} but not "
                f"{sorted(cover.uncovered)}"))

    def _substring_only(self, prefix: str) -> None:
        """Report entries a substring-matching engine would apply to ``prefix`` (which they do not cover here)."""
        names = set(self.ctx.namespace.preimages(prefix))
        for shard in self.ctx.shards(prefix) or ():
            if self.ctx.present(shard):
                names |= self.ctx.namespace.preimages(shard)
        for entry in self.ctx.config.exclude:
            hit = next((n for n in sorted(names) if entry.original in n), None)
            if hit is None or (entry.field, prefix) in self._reported:
                continue
            self._reported.add((entry.field, prefix))
            self.ctx.findings.append(Finding(
                code=SUBSTRING_ONLY, severity=SEVERITY, subject=prefix, file=entry.file, field=entry.field,
                message=f"{prefix}: modules_to_not_convert entry {entry.original!r} occurs in {hit} only across a "
                        "path-component boundary: AutoAWQ, vLLM and transformers 4.x (substring matching) leave it "
                        "unquantized, quantresolve (whole components, like transformers 5) quantizes it; the "
                        "tensors show which the producer meant"))

    def resolve(self, prefix: str, kind: str) -> Resolution:
        trail: list[str] = []
        if kind in ("embedding", "attention"):
            return Resolution(prefix, kind, None, "not-quantizable", None,
                              (f"not-quantizable: AWQ does not quantize {kind} modules",))
        excluded = self._excluded(prefix, kind, trail)
        if excluded is not None:
            return excluded
        if kind == "lm_head":
            trail.append("producer-default-skip: AutoAWQ quantizes decoder blocks only; the LM head stays dense")
            return Resolution(prefix, kind, None, "producer-default-skip", None, tuple(trail))
        if kind == "moe":
            projections = self.ctx.expert_projections(prefix)
            parts = [self.resolve(p, "linear") for p in projections]
            if parts:
                trail.append(f"experts: {len(parts)} expert projection(s) agree")
                return agree(prefix, kind, parts, rule="experts", experts=True, trail=trail)
        self._substring_only(prefix)
        default = self.ctx.config.default_scheme
        trail.append(f"default: {default.summary() if default else None}")
        return Resolution(prefix, kind, default, "default", None, tuple(trail))


register_rules("awq", AwqRules)
