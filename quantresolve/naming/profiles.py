"""Naming profiles: one model family's mapper + packed modules + MoE expert containers.

A profile file (JSON; YAML when PyYAML is installed) — every key optional::

    {"name": "qwen3.5",
     "description": "...", "architectures": ["Qwen3_5MoeForConditionalGeneration"],
     "mapper": {"orig_to_new_prefix": {"model.language_model.": "language_model.model."}},
     "packed_modules_mapping": {"qkv_proj": ["q_proj", "k_proj", "v_proj"]},
     "expert_containers": ["^(?P<container>.*\\\\.mlp\\\\.experts)\\\\.(?P<expert>\\\\d+)\\\\.(?P<proj>\\\\w+)$"]}

Built-in profiles live in ``quantresolve/naming/profiles/*.json``;
:func:`load_profile` takes a built-in name or a file path;
:func:`profile_for_architectures` picks one from ``config.json``
``architectures`` (falling back to unfused transformers naming).

    >>> p = load_profile("transformers")
    >>> p.mapper.is_identity, p.packed_modules_mapping
    (True, {})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from quantresolve.errors import ConfigError, ProfileError
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.util.containment import Confinement
from quantresolve.util.jsonfile import parse_json_text, read_json_in
from quantresolve.util.patterns import BoundedRegex

BUILTIN_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE = "transformers"
_KEYS = {"name", "description", "architectures", "mapper", "packed_modules_mapping", "expert_containers",
         "expert_projections", "unquantized_modules", "notes", "sources"}


#: A compiled pattern: :class:`~quantresolve.util.patterns.BoundedRegex` for patterns read from a profile
#: file (time-bounded), or an ``re.Pattern`` built by code.
Pattern = Any

#: An expert index written the plain way inside a regex: ``\.\d+`` or ``\.[0-9]+``.
_PLAIN_INDEX = re.compile(r"\\\.(?:\\d\+|\[0-9\]\+)")


def _patterns(data: Mapping[str, Any], key: str, file: str | None) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ProfileError("expected a list of regular expressions (strings)", file=file, field=key)
    return value


def expert_container_pattern(pattern: str, *, file: str | None, field: str) -> Pattern:
    r"""An ``expert_containers`` regex with the named groups ``container`` and ``expert`` (``proj`` optional).

    Written without named groups, as one first writes it (``.*\.mlp\.experts\.\d+\.\w+``), the
    container is the part before the expert index — the last ``\.\d+`` — and what follows it the
    projection; the named groups are put in those places:

        >>> print(expert_container_pattern(r".*\.mlp\.experts\.\d+\.\w+", file=None, field="e[0]").pattern)
        ^(?P<container>.*\.mlp\.experts)\.(?P<expert>\d+)\.(?P<proj>\w+)$

    Anything else without both groups is refused with the form to write.
    """
    plain = BoundedRegex(pattern, file=file, field=field, error=ProfileError)
    names = set(plain.groupindex)
    if {"container", "expert"} <= names:
        return plain
    index = list(_PLAIN_INDEX.finditer(pattern))
    if not names and index:
        last = index[-1]
        container = pattern[:last.start()].removeprefix("^")
        rest = pattern[last.end():].removesuffix("$")
        proj = rf"\.(?P<proj>{rest[2:]})" if rest.startswith("\\.") and len(rest) > 2 else rest
        return BoundedRegex(rf"^(?P<container>{container})\.(?P<expert>\d+){proj}$", file=file, field=field,
                            error=ProfileError)
    raise ProfileError(f"expert-container regex {pattern!r} needs the named groups 'container' and 'expert' "
                       r"(and optionally 'proj'), e.g. ^(?P<container>.*\.mlp\.experts)\.(?P<expert>\d+)\."
                       r"(?P<proj>\w+)$ — or write the expert index as \.\d+ and they are added",
                       file=file, field=field)


@dataclass(frozen=True)
class Profile:
    """A model family's naming: how checkpoint names become the model's names."""

    name: str
    mapper: WeightsMapper = field(default_factory=WeightsMapper)
    packed_modules_mapping: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    expert_containers: tuple[Pattern, ...] = ()
    expert_projections: tuple[str, ...] = ("gate_proj", "up_proj", "down_proj")
    architectures: tuple[str, ...] = ()
    description: str = ""
    #: model-space regexes (full match) of modules the model builds without quantization whatever the
    #: config says — e.g. vLLM's DeepSeek router ``mlp.gate`` (``quant_config=None``).
    unquantized_modules: tuple[Pattern, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str | None = None, default_name: str = "custom") -> Profile:
        """Validate and build a profile from the file layout."""
        if not isinstance(data, Mapping):
            raise ProfileError(f"expected a JSON object, got {type(data).__name__}", file=file)
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ProfileError(f"unknown keys {unknown}; known: {sorted(_KEYS)}", file=file)
        packed_raw = data.get("packed_modules_mapping") or {}
        if not isinstance(packed_raw, Mapping):
            raise ProfileError("expected an object", file=file, field="packed_modules_mapping")
        packed: dict[str, tuple[str, ...]] = {}
        for fused, shards in packed_raw.items():
            if not isinstance(shards, list) or not shards or not all(isinstance(s, str) and s for s in shards):
                raise ProfileError("expected a non-empty list of shard names", file=file,
                                   field=f"packed_modules_mapping[{json.dumps(fused)}]")
            packed[fused] = tuple(shards)
        containers = [expert_container_pattern(pattern, file=file, field=f"expert_containers[{i}]")
                      for i, pattern in enumerate(_patterns(data, "expert_containers", file))]
        unquantized = [BoundedRegex(pattern, file=file, field=f"unquantized_modules[{i}]", error=ProfileError)
                       for i, pattern in enumerate(_patterns(data, "unquantized_modules", file))]
        projections = data.get("expert_projections") or ("gate_proj", "up_proj", "down_proj")
        archs = data.get("architectures") or ()
        if not all(isinstance(a, str) for a in archs):
            raise ProfileError("expected a list of strings", file=file, field="architectures")
        return cls(name=str(data.get("name") or default_name), mapper=WeightsMapper.from_dict(data.get("mapper"), file=file),
                   packed_modules_mapping=packed, expert_containers=tuple(containers),
                   expert_projections=tuple(projections), architectures=tuple(archs),
                   description=str(data.get("description") or ""), unquantized_modules=tuple(unquantized))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "architectures": list(self.architectures),
                "mapper": self.mapper.to_dict(),
                "packed_modules_mapping": {k: list(v) for k, v in self.packed_modules_mapping.items()},
                "expert_containers": [rx.pattern for rx in self.expert_containers],
                "expert_projections": list(self.expert_projections),
                "unquantized_modules": [rx.pattern for rx in self.unquantized_modules]}

    def builds_unquantized(self, name: str) -> tuple[int, str] | None:
        """``(index, pattern)`` of the ``unquantized_modules`` entry matching ``name``, else ``None``."""
        for i, rx in enumerate(self.unquantized_modules):
            if rx.fullmatch(name):
                return i, rx.pattern
        return None

    def expert_of(self, name: str) -> tuple[str, str, str | None] | None:
        """``(container, expert, projection)`` when ``name`` is a per-expert module, else ``None``."""
        for rx in self.expert_containers:
            m = rx.match(name)
            if m:
                gd = m.groupdict()
                return gd["container"], gd["expert"], gd.get("proj")
        return None


def builtin_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.json"))


@lru_cache(maxsize=64)
def _load_builtin(name: str) -> Profile:
    path = BUILTIN_DIR / f"{name}.json"
    return Profile.from_dict(json.loads(path.read_text(encoding="utf-8")), file=path.name, default_name=name)


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"cannot read: {err}", file=str(path)) from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ProfileError("YAML profiles need PyYAML: install quantresolve[yaml] (pip install 'quantresolve[yaml]')", file=str(path)) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ProfileError(f"invalid YAML: {err}".splitlines()[0], file=str(path)) from None
    try:
        return parse_json_text(text, file=str(path))
    except ConfigError as err:
        raise ProfileError(err.detail, file=str(path)) from None


def load_profile(name_or_path: str | Path | Profile | None = None) -> Profile:
    """A built-in profile by name, a profile file (JSON/YAML), or the default (``transformers``)."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    if name_or_path is None:
        return _load_builtin(DEFAULT_PROFILE)
    text = str(name_or_path)
    if text in builtin_profiles():
        return _load_builtin(text)
    path = Path(text)
    if path.suffix in (".json", ".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ProfileError("no such profile file", file=str(path))
        return Profile.from_dict(_read_file(path), file=str(path), default_name=path.stem)
    raise ProfileError(f"unknown profile {text!r}; built-in: {', '.join(builtin_profiles())}")


def profile_for_architectures(architectures: Sequence[str] | None) -> Profile:
    """The built-in profile declaring one of ``architectures`` (sorted by name for determinism), else the default."""
    wanted = set(architectures or ())
    for name in builtin_profiles():
        profile = _load_builtin(name)
        if wanted & set(profile.architectures):
            return profile
    return _load_builtin(DEFAULT_PROFILE)


def profile_for_config_dir(root: Path) -> Profile:
    """The profile ``root/config.json`` ``architectures`` names, else the default (no or another config).

    The one place the resolver (:meth:`Resolver.from_checkpoint`) and the audit pick a checkpoint's
    naming when none is given; ``config.json`` is read strictly and only inside ``root``.

        >>> profile_for_config_dir(Path("fixtures/checkpoints/modelopt-mixed")).name   # doctest: +SKIP
        'transformers'
    """
    box = Confinement.of(root, error=ConfigError)
    if not box.present("config.json"):
        return load_profile(None)
    data = read_json_in(box, "config.json")
    if not isinstance(data, dict):
        raise ConfigError(f"expected a JSON object at the top level, got {type(data).__name__}", file="config.json")
    archs = data.get("architectures")
    if archs is None:
        return load_profile(None)
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise ConfigError(f"expected a list of class names, got {archs!r:.80}", file="config.json",
                          field="architectures")
    return profile_for_architectures(archs)
