"""bitsandbytes resolution rules (transformers' ``BitsAndBytesConfig`` semantics, made exact).

1. **excluded** — an ``llm_int8_skip_modules`` entry matches whole path
   components: its components occur as a contiguous run of the prefix's
   components (``ff_out`` skips every ``...ff_out``; ``model.transformer.ff_out``
   skips only the LM head of Molmo, not ``...blocks.N.ff_out``; ``kv_proj`` never
   matches inside ``qkv_proj``). A fused layer is skipped only if all its shards are.
2. **producer-default-skip** — with no skip list (``null``), transformers keeps
   the output embedding (LM head) unquantized.
3. **not-quantizable** — embeddings and attention (no KV-cache quantization).
4. **default** — every other linear, including each expert of an MoE container
   (bitsandbytes quantizes per-expert ``nn.Linear`` modules).
"""

from __future__ import annotations

from quantresolve.errors import ConflictingShardsError
from quantresolve.resolve.candidates import wrapper_candidates
from quantresolve.resolve.context import Context
from quantresolve.resolve.entries import EntryIndex, MatchModes
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.rules_registry import register_rules


class BitsAndBytesRules:
    """Resolution for bitsandbytes configs."""

    EXCLUDE_MODES = MatchModes(subtree=True, components=True)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.skip = EntryIndex(ctx.config.exclude, ctx.namespace, self.EXCLUDE_MODES)

    def _skipped(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        return self.ctx.excluded_by(
            self.skip, prefix, kind, trail, names=[prefix, *wrapper_candidates(prefix)], noun="skip entry",
            verb="skipped", conflict=lambda cover: ConflictingShardsError(
                f"fused layer {prefix!r}: skip entries cover {sorted(cover.covered)} but not {sorted(cover.uncovered)}"))

    def resolve(self, prefix: str, kind: str) -> Resolution:
        trail: list[str] = []
        if kind in ("embedding", "attention"):
            return Resolution(prefix, kind, None, "not-quantizable", None,
                              (f"not-quantizable: bitsandbytes does not quantize {kind} modules",))
        skipped = self._skipped(prefix, kind, trail)
        if skipped is not None:
            return skipped
        if kind == "lm_head" and not self.ctx.config.exclude:
            trail.append("producer-default-skip: no skip list, transformers keeps the LM head unquantized")
            return Resolution(prefix, kind, None, "producer-default-skip", None, tuple(trail))
        trail.append(f"default: {self.ctx.config.quant_algo}")
        return Resolution(prefix, kind, self.ctx.config.default_scheme, "default", None, tuple(trail))


register_rules("bitsandbytes", BitsAndBytesRules)
