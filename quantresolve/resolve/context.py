"""What every producer's rules share: the config, the profile, the namespace, and helpers.

Kept separate from the rules so each producer's file holds only its own rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from quantresolve.errors import ConflictingExpertsError, ConflictingShardsError, ResolutionError
from quantresolve.formats.normalized import Finding, NormalizedConfig
from quantresolve.formats.scheme import QuantScheme
from quantresolve.naming.profiles import Profile
from quantresolve.resolve.entries import EntryIndex
from quantresolve.resolve.namespace import Namespace
from quantresolve.resolve.packed import shard_names
from quantresolve.resolve.resolution import ConfigRef, Resolution


@dataclass(frozen=True)
class ShardCover:
    """The present shards of a fused layer and the entry each covered one matches (in shard order).

    A fused layer is excluded only when every present shard is (:attr:`complete`); some but not
    all (:attr:`partial`) is a conflict each producer's rules report in its own words.
    """

    present: list[str]
    covered: dict[str, ConfigRef]

    @property
    def partial(self) -> bool:
        return bool(self.covered) and len(self.covered) < len(self.present)

    @property
    def complete(self) -> bool:
        return bool(self.covered) and len(self.covered) == len(self.present)

    @property
    def uncovered(self) -> list[str]:
        return [s for s in self.present if s not in self.covered]

    def first(self) -> ConfigRef:
        """The entry covering the first shard by name (order-independent)."""
        return self.covered[min(self.covered)]


@dataclass
class Context:
    """Shared state of one resolver."""

    config: NormalizedConfig
    profile: Profile
    namespace: Namespace
    findings: list[Finding] = field(default_factory=list)

    def shards(self, prefix: str) -> list[str] | None:
        return shard_names(prefix, self.profile.packed_modules_mapping)

    def present(self, name: str) -> bool:
        """Whether the checkpoint has ``name`` (unknown checkpoint → assume yes)."""
        known = self.namespace.exists(name)
        return True if known is None else known

    def shard_cover(self, prefix: str, kind: str, entries: EntryIndex) -> ShardCover | None:
        """Which shards of the fused layer ``prefix``, among those present, ``entries`` match (an
        exclude / ignore / skip list); ``None`` when ``prefix`` is not a declared fused layer."""
        shards = self.shards(prefix)
        if not shards:
            return None
        present = [s for s in shards if self.present(s)]
        covered = {}
        for shard in present:
            hit = entries.match(shard, kind)
            if hit is not None:
                covered[shard] = hit[0]
        return ShardCover(present, covered)

    def excluded_by(self, entries: EntryIndex, prefix: str, kind: str, trail: list[str], *, names: Sequence[str],
                    noun: str, verb: str, conflict: Callable[[ShardCover], ResolutionError],
                    list_shards: bool = False) -> Resolution | None:
        """The exclusion step of skip / ignore lists: an entry matching one of ``names`` (the prefix
        first), else a fused layer every present shard of which is matched; some but not all is the
        error ``conflict(cover)``. ``noun`` / ``verb`` word the trail ("ignore entry" / "ignored");
        ``list_shards`` puts the excluded shards in the answer."""
        for name in names:
            hit = entries.match(name, kind)
            if hit is not None:
                trail.append(f"excluded: {noun} {hit[0].original!r} matches {name} ({hit[1]})")
                return Resolution(prefix, kind, None, "excluded", hit[0], tuple(trail))
        cover = self.shard_cover(prefix, kind, entries)
        if cover is not None and cover.partial:
            raise conflict(cover)
        if cover is not None and cover.complete:
            ref = cover.first()
            trail.append(f"excluded: every shard is {verb} (first: {ref.original!r})")
            shards = tuple((s, None, "excluded") for s in sorted(cover.covered)) if list_shards else ()
            return Resolution(prefix, kind, None, "excluded", ref, tuple(trail), shards)
        trail.append(f"excluded: no {noun} matches")
        return None

    def expert_projections(self, container: str) -> list[str]:
        """The real per-expert projections under ``container`` (from the checkpoint when known).

        Without a checkpoint, expert ``0`` with the profile's declared
        projections stands for all experts (said so in the trail by callers).
        """
        if self.namespace.knows_checkpoint:
            return [n for n in self.namespace.descendants(container)
                    if (hit := self.profile.expert_of(n)) is not None and hit[0] == container]
        return [f"{container}.0.{p}" for p in self.profile.expert_projections]


def agree(prefix: str, kind: str, parts: Sequence[Resolution], *, rule: str, experts: bool = False,
          trail: Iterable[str] = ()) -> Resolution:
    """Combine the resolutions of shards / experts: all must have the same scheme, else a loud error.

    The reported source is the first part's (sorted by name), so the answer is order-independent.
    """
    schemes = {p.scheme for p in parts}
    if len(schemes) > 1:
        detail = "; ".join(f"{p.prefix} → {p.algo or 'unquantized'} ({p.rule})" for p in sorted(parts, key=lambda p: p.prefix))
        what = "experts of MoE container" if experts else "shards of fused layer"
        err = ConflictingExpertsError if experts else ConflictingShardsError
        raise err(f"{what} {prefix!r} disagree: {detail}")
    first = sorted(parts, key=lambda p: p.prefix)[0]
    scheme: QuantScheme | None = next(iter(schemes))
    rules = {p.rule for p in parts}
    chosen_rule = rule
    if scheme is None and len(rules) == 1:
        chosen_rule = next(iter(rules))  # e.g. every shard excluded, or every shard unlisted (default)
    source: ConfigRef | None = first.source
    return Resolution(prefix=prefix, kind=kind, scheme=scheme, rule=chosen_rule, source=source,
                      trail=tuple(trail), shards=tuple((p.prefix, p.algo, p.rule) for p in sorted(parts, key=lambda p: p.prefix)))
