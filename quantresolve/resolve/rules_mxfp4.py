"""gpt-oss MXFP4 (``quant_method: mxfp4``) resolution rules.

gpt-oss quantizes its MoE experts and nothing else. For a prefix (model space), in this order:

1. **excluded** — a ``modules_to_not_convert`` entry matches the prefix or a wrapper candidate: an exact
   name or a dotted ancestor of it (mapped into model space), or a glob (``model.layers.*.self_attn``)
   matched in checkpoint space against the name or one of its ancestors — never rewritten as a path. A
   glob starting with ``*`` is matched like any other (transformers raises on it: the config carries an
   ``engines-disagree`` finding).
2. **default** — an MoE experts container (``kind="moe"``: the checkpoint's fused
   ``mlp.experts.{gate_up,down}_proj_{blocks,scales}``), or one expert's projection of it (the per-expert
   linears ``quantresolve run`` installs, ``<container>.<e>.gate_up_proj``): the config's MXFP4 scheme.
   A projection skipped while its container is not (or the reverse) is
   :class:`~quantresolve.errors.ConflictingExpertsError`: one fused tensor holds every expert.
3. **not-quantizable** — every other module: transformers converts only ``GptOssMLP``'s experts, vLLM
   only its ``FusedMoE``.

Where the engines differ: vLLM's ``Mxfp4Config`` ignores ``modules_to_not_convert`` and runs every
experts container MXFP4. An entry that skips a container here — as transformers skips it — therefore
adds an ``engines-disagree`` finding and says so in the trail.
"""

from __future__ import annotations

from quantresolve.errors import ConflictingExpertsError
from quantresolve.formats.hf_skip_lists import engines_disagree
from quantresolve.resolve.candidates import wrapper_candidates
from quantresolve.resolve.context import Context
from quantresolve.resolve.entries import EntryIndex, MatchModes
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.rules_registry import register_rules


class Mxfp4Rules:
    """Resolution for gpt-oss ``quant_method: mxfp4`` configs."""

    EXCLUDE_MODES = MatchModes(subtree=True, glob_ancestors=True)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.skip = EntryIndex(ctx.config.exclude, ctx.namespace, self.EXCLUDE_MODES)
        self._noted: set[str] = set()

    def _skipped(self, prefix: str, kind: str, trail: list[str]) -> Resolution | None:
        names = [prefix, *wrapper_candidates(prefix)]
        for name in names:
            hit = self.skip.match(name, kind)
            if hit is not None:
                trail.append(f"excluded: entry {hit[0].original!r} matches {name} ({hit[1]})")
                return Resolution(prefix, kind, None, "excluded", hit[0], tuple(trail))
        trail.append(f"excluded: no entry matches {', '.join(names)}")
        return None

    def _container(self, prefix: str, kind: str) -> str | None:
        if kind == "moe":
            return prefix
        hit = self.ctx.profile.expert_of(prefix) if kind == "linear" else None
        return hit[0] if hit is not None else None

    def _experts(self, prefix: str, kind: str, container: str, trail: list[str]) -> Resolution:
        skipped = self._skipped(prefix, kind, trail)
        if container != prefix:  # one expert's projection: its container decides, and they must agree
            whole = self._skipped(container, "moe", [])
            if (skipped is None) != (whole is None):
                entry = (skipped or whole).source.original  # type: ignore[union-attr]
                raise ConflictingExpertsError(
                    f"experts of MoE container {container!r} disagree: entry {entry!r} skips "
                    f"{prefix if skipped is not None else container} but not "
                    f"{container if skipped is not None else prefix}; gpt-oss stores every expert in one fused tensor")
        if skipped is not None:
            message = "vLLM ignores modules_to_not_convert and runs these experts MXFP4; transformers skips them"
            trail_list = [*skipped.trail, f"engines: {message}"]
            if container not in self._noted:
                self._noted.add(container)
                self.ctx.findings.append(engines_disagree(message, file=self.ctx.config.sources[0],
                                                          field=skipped.source.field if skipped.source else None,
                                                          subject=container))
            return Resolution(prefix, kind, None, "excluded", skipped.source, tuple(trail_list))
        trail.append(f"default: {self.ctx.config.quant_algo} (gpt-oss quantizes the MoE experts)")
        return Resolution(prefix, kind, self.ctx.config.default_scheme, "default", None, tuple(trail))

    def resolve(self, prefix: str, kind: str) -> Resolution:
        container = self._container(prefix, kind)
        trail: list[str] = []
        if container is not None:
            return self._experts(prefix, kind, container, trail)
        skipped = self._skipped(prefix, kind, trail)
        if skipped is not None:
            return skipped
        trail.append("not-quantizable: gpt-oss MXFP4 quantizes only the MoE experts")
        return Resolution(prefix, kind, None, "not-quantizable", None, tuple(trail))


register_rules("mxfp4", Mxfp4Rules)
