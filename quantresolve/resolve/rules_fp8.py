"""Hugging Face fine-grained FP8 (``quant_method: fp8``) resolution rules.

For a prefix (model space), in this order:

1. **excluded** — a skip entry (``ignored_layers`` if non-empty, else ``modules_to_not_convert``: vLLM's
   order, :mod:`quantresolve.formats.normalize_fp8`) matches the prefix or one of its wrapper candidates:
   an exact name (mapped into model space) or a dotted ancestor of the prefix, or a glob matched in
   checkpoint space against the name or an ancestor. A fused layer is skipped only when every present
   shard is; some but not all is :class:`~quantresolve.errors.ConflictingShardsError`.
2. **producer-default-skip** — the LM head, when the config gives no skip list at all (``null``):
   transformers then skips the output embedding by default, and vLLM never builds it FP8.
3. **not-quantizable** — embeddings (FP8 embeddings, ``modules_to_convert``, are refused by the config).
4. **experts** (``kind="moe"``) — every expert projection (from the checkpoint when known, else expert 0's
   declared projections) resolves by steps 1 and 5, and all must agree (else
   :class:`~quantresolve.errors.ConflictingExpertsError`).
5. **default** — the config's one scheme; attention modules get no KV-cache scheme (``default``).

Where quantresolve differs from the engines, and why:

- **vLLM** matches entries exactly (shards of a fused layer expanded). quantresolve also lets an entry
  cover the modules under it (``model.visual`` skips ``model.visual.blocks.0.qkv``), as transformers
  does — an entry naming a module that is not itself a linear means the modules under it;
- **transformers 5.23** compiles each entry as a regular expression anchored at the start and ending on a
  component boundary (the same as "exact or dotted ancestor" for plain names), **or** skips a module whose
  name merely ends with the entry's text. quantresolve never matches a raw suffix across a component
  boundary (``kv_proj`` does not skip ``qkv_proj``: field notes §4.11), and matches glob entries as globs
  in checkpoint space, never rewritten;
- transformers' implicit skips when the list is ``null`` — the output embedding, tied parameters and the
  module of the model's last parameter (the LM head in every causal LM) — are step 2 here.

Where the engines would load a module differently (an entry only quantresolve's or transformers' rule
lets match, an LM head the list leaves quantized), the resolver adds an ``engines-disagree`` finding
(:mod:`quantresolve.formats.hf_skip_lists`) and the trail says so: the answer is still the one above.
"""

from __future__ import annotations

from quantresolve.errors import ConflictingShardsError
from quantresolve.formats.hf_skip_lists import engines_disagree
from quantresolve.formats.normalize_fp8 import has_skip_list
from quantresolve.resolve.candidates import wrapper_candidates
from quantresolve.resolve.context import Context, agree
from quantresolve.resolve.entries import EntryIndex, MatchModes
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.rules_registry import register_rules


class Fp8Rules:
    """Resolution for ``quant_method: fp8`` configs."""

    EXCLUDE_MODES = MatchModes(subtree=True, glob_ancestors=True)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.skip = EntryIndex(ctx.config.exclude, ctx.namespace, self.EXCLUDE_MODES)
        self.listed = has_skip_list(ctx.config)
        self.exact_texts = tuple(e.original for e in ctx.config.exclude if e.kind == "exact")
        self._noted: set[tuple[str, str]] = set()

    # --- engines-disagree findings ------------------------------------------------------------------

    def _note(self, prefix: str, message: str, trail: list[str], *, field: str | None = None) -> None:
        trail.append(f"engines: {message}")
        if (prefix, message) not in self._noted:
            self._noted.add((prefix, message))
            self.ctx.findings.append(engines_disagree(message, file=self.ctx.config.sources[0], field=field,
                                                      subject=prefix))

    def _vllm_skips(self, prefix: str) -> bool:
        """vLLM's rule: the prefix is listed exactly, or every present shard of it is."""
        if self.skip.match_exact(prefix) is not None:
            return True
        shards = [s for s in self.ctx.shards(prefix) or () if self.ctx.present(s)]
        return bool(shards) and all(self.skip.match_exact(s) is not None for s in shards)

    def _check_skipped(self, res: Resolution, trail: list[str]) -> Resolution:
        if not self._vllm_skips(res.prefix) and res.source is not None:
            self._note(res.prefix, f"skip entry {res.source.original!r} covers it here and in transformers, but vLLM "
                       "matches entries exactly and quantizes it", trail, field=res.source.field)
            return Resolution(res.prefix, res.kind, None, res.rule, res.source, tuple(trail), res.shards)
        return res

    def _check_quantized(self, prefix: str, trail: list[str]) -> None:
        """transformers also skips a module whose name merely ends with an entry's text."""
        if not self.exact_texts:
            return
        for name in sorted({prefix, *self.ctx.namespace.preimages(prefix)}):
            if name.endswith(self.exact_texts):
                entry = next(e for e in self.exact_texts if name.endswith(e))
                self._note(prefix, f"transformers 5.23 skips it because its name {name!r} ends with the skip entry "
                           f"{entry!r}; quantresolve and vLLM do not match a name's tail and quantize it", trail)
                return

    # --- steps ------------------------------------------------------------------------------------

    def _skipped(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        res = self.ctx.excluded_by(
            self.skip, prefix, kind, trail, names=[prefix, *wrapper_candidates(prefix)], noun="skip entry",
            verb="skipped", list_shards=True, conflict=lambda cover: ConflictingShardsError(
                f"fused layer {prefix!r}: skip entries cover {sorted(cover.covered)} but not {sorted(cover.uncovered)}"))
        return self._check_skipped(res, trail) if res is not None else None

    def _default(self, prefix: str, kind: str, trail: list[str]) -> Resolution:
        self._check_quantized(prefix, trail)
        trail.append(f"default: {self.ctx.config.quant_algo}")
        return Resolution(prefix, kind, self.ctx.config.default_scheme, "default", None, tuple(trail))

    def _lm_head(self, prefix: str, trail: list[str]) -> Resolution:
        if not self.listed:
            trail.append("producer-default-skip: no skip list; transformers skips the output embedding by default "
                         "and vLLM never builds it FP8")
            return Resolution(prefix, "lm_head", None, "producer-default-skip", None, tuple(trail))
        self._note(prefix, "the skip list does not name the LM head: transformers quantizes it, vLLM never builds "
                   "the LM head FP8", trail)
        return self._default(prefix, "lm_head", trail)

    def _moe(self, prefix: str, trail: list[str]) -> Resolution:
        projections = self.ctx.expert_projections(prefix)
        if not projections:
            return self._default(prefix, "moe", trail)
        if not self.ctx.namespace.knows_checkpoint:
            trail.append("experts: checkpoint not read; expert 0's declared projections stand for all experts")
        parts = [self.resolve(p, "linear") for p in projections]
        trail.append(f"experts: {len(parts)} expert projection(s) agree")
        return agree(prefix, "moe", parts, rule="experts", experts=True, trail=trail)

    def resolve(self, prefix: str, kind: str) -> Resolution:
        trail: list[str] = []
        skipped = self._skipped(prefix, kind, trail)
        if skipped is not None:
            return skipped
        if kind == "attention":
            trail.append("kv-cache: quant_method fp8 declares no KV-cache quantization")
            return Resolution(prefix, kind, None, "default", None, tuple(trail))
        if kind == "embedding":
            trail.append("not-quantizable: fp8 quantizes linear layers only")
            return Resolution(prefix, kind, None, "not-quantizable", None, tuple(trail))
        if kind == "lm_head":
            return self._lm_head(prefix, trail)
        if kind == "moe":
            return self._moe(prefix, trail)
        return self._default(prefix, kind, trail)


register_rules("fp8", Fp8Rules)
