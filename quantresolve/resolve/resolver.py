"""``Resolver``: for each layer prefix a model constructor builds, how is it quantized, and why?

Built from a loaded config plus a naming profile (mapper + packed modules +
MoE expert containers), optionally with the checkpoint's module list so it
knows which shards really exist. Each producer's rules live in their own
module and are chosen through the rules registry (:mod:`quantresolve.resolve.rules_registry`).

    >>> from quantresolve import load_config
    >>> cfg = load_config({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION",
    ...     "quantized_layers": {"model.language_model.layers.0.self_attn.q_proj": {"quant_algo": "FP8"},
    ...                          "model.language_model.layers.0.self_attn.k_proj": {"quant_algo": "FP8"},
    ...                          "model.language_model.layers.0.self_attn.v_proj": {"quant_algo": "FP8"}}})
    >>> r = Resolver(cfg, "vllm-decoder").resolve("language_model.model.layers.0.self_attn.qkv_proj")
    >>> r.algo, r.rule
    ('FP8', 'packed-shards')
    >>> Resolver(cfg).resolve("model.language_model.layers.0.mlp.down_proj").rule
    'default'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import quantresolve.resolve.producers  # noqa: F401  (registers the built-in rules)
from quantresolve.errors import InvalidPrefixError
from quantresolve.formats.normalized import Finding, NormalizedConfig
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.naming.profiles import Profile, load_profile, profile_for_config_dir
from quantresolve.resolve.context import Context
from quantresolve.resolve.namespace import Namespace
from quantresolve.resolve.resolution import KINDS, ConfigRef, Resolution
from quantresolve.resolve.rules_registry import rules_for

_DOTTED_PATH = re.compile(r"[^\s.]+(?:\.[^\s.]+)*")


def check_prefix(prefix: object) -> str:
    """A prefix must be a non-empty dotted path without empty components or white space."""
    if not isinstance(prefix, str) or not prefix:
        raise InvalidPrefixError(f"empty layer prefix {prefix!r}: a layer built with prefix='' can never match "
                                 "a config entry")
    if not _DOTTED_PATH.fullmatch(prefix):
        raise InvalidPrefixError(f"malformed layer prefix {prefix!r}: empty component or white space")
    return prefix


class Resolver:
    """Resolves model-space layer prefixes against one checkpoint's quantization config."""

    def __init__(self, config: NormalizedConfig, profile: Profile | str | Path | None = None, *,
                 mapper: WeightsMapper | None = None,
                 packed_modules_mapping: Mapping[str, Sequence[str]] | None = None,
                 expert_containers: Sequence[str] | None = None,
                 checkpoint_modules: Iterable[str] | None = None) -> None:
        base = load_profile(profile)
        if mapper is not None or packed_modules_mapping is not None or expert_containers is not None:
            overrides: dict[str, Any] = base.to_dict()
            if mapper is not None:
                overrides["mapper"] = mapper.to_dict()
            if packed_modules_mapping is not None:
                overrides["packed_modules_mapping"] = {k: list(v) for k, v in packed_modules_mapping.items()}
            if expert_containers is not None:
                overrides["expert_containers"] = list(expert_containers)
            base = Profile.from_dict(overrides, default_name=base.name)
        self.config = config
        self.profile = base
        self.namespace = Namespace(base.mapper, checkpoint_modules)
        self.ctx = Context(config=config, profile=base, namespace=self.namespace)
        self._rules = rules_for(config.producer)(self.ctx)

    @classmethod
    def from_checkpoint(cls, path: str | Path, profile: Profile | str | Path | None = None) -> Resolver:
        """Load the config of ``path``, choose the profile from ``architectures`` when not given, and read
        the checkpoint's module names (index or safetensors headers) when present."""
        from quantresolve.formats.loader import load_config

        config = load_config(path)
        root = Path(path)
        chosen = profile if profile is not None else (
            profile_for_config_dir(root) if root.is_dir() else load_profile(None))
        modules = _checkpoint_modules(root) if root.is_dir() else None
        return cls(config, chosen, checkpoint_modules=modules)

    @property
    def findings(self) -> list[Finding]:
        return self.ctx.findings

    def resolve(self, prefix: str, kind: str = "linear") -> Resolution:
        """How the layer at ``prefix`` (model namespace) is quantized, with the deciding rule and entry."""
        check_prefix(prefix)
        if kind not in KINDS:
            raise InvalidPrefixError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
        answer = self._rules.resolve(prefix, kind)
        built = self.profile.builds_unquantized(prefix) if self.profile.unquantized_modules else None
        if built is None or answer.scheme is None:  # the config already agrees: its own rule is the answer
            return answer
        index, pattern = built
        source = ConfigRef(original=pattern, mapped=None, file=f"profile {self.profile.name}",
                           field=f"unquantized_modules[{index}]")
        trail = (f"model-unquantized: profile {self.profile.name!r} builds {prefix} without quantization "
                 f"(pattern {pattern!r})",
                 f"config alone: {answer.algo or 'unquantized'} by rule {answer.rule!r}")
        return Resolution(prefix, kind, None, "model-unquantized", source, trail, config_answer=answer)

    def resolve_many(self, prefixes: Iterable[str], kind: str = "linear") -> list[Resolution]:
        return [self.resolve(p, kind) for p in prefixes]


def _checkpoint_modules(root: Path) -> list[str] | None:
    """Checkpoint-space module names, when the directory has an index or safetensors files."""
    if not any(root.glob("*.safetensors")) and not os.path.lexists(root / "model.safetensors.index.json"):
        return None
    from quantresolve.checkpoint import build_inventory, read_checkpoint

    return sorted(build_inventory(read_checkpoint(root)).modules)
