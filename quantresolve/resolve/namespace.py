"""The two namespaces and the bridge between them.

Config entries are spelled in **checkpoint space**; prefixes asked by a model
constructor are in **model space**. :class:`Namespace` maps checkpoint → model
through the profile's mapper (once per name, cached) and answers the inverse
question — which checkpoint names map to this model name — by inverting the
mapper's rules (verified forward) and, when the checkpoint's module list is
known, by an exact reverse index. Patterns (globs, ``re:``) are matched
against those checkpoint-space preimages, so they keep exactly the meaning
their author gave them.

    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> ns = Namespace(WeightsMapper(orig_to_new_prefix={"vision_tower.vision_model.": "vision_model."}),
    ...                checkpoint_modules=["vision_tower.vision_model.encoder.layers.0.mlp.fc1"])
    >>> ns.to_model("vision_tower.vision_model.encoder")
    'vision_model.encoder'
    >>> sorted(ns.preimages("vision_model.encoder.layers.0.mlp.fc1"))  # the checkpoint's own spelling only
    ['vision_tower.vision_model.encoder.layers.0.mlp.fc1']
    >>> sorted(ns.preimages("vision_model.encoder.layers.0.mlp.fc2"))  # absent: spelled like its parent
    ['vision_tower.vision_model.encoder.layers.0.mlp.fc2']
    >>> sorted(ns.preimages("text_model.fc"))  # no ancestor in the checkpoint either: rule inversion
    ['text_model.fc']
    >>> ns.exists("vision_model.encoder.layers.0.mlp.fc2")
    False
"""

from __future__ import annotations

from collections.abc import Iterable

from quantresolve.naming.mapper import WeightsMapper


class Namespace:
    """Checkpoint ↔ model names for one mapper and (optionally) one checkpoint's module list."""

    def __init__(self, mapper: WeightsMapper, checkpoint_modules: Iterable[str] | None = None) -> None:
        self.mapper = mapper
        self._reverse: dict[str, set[str]] = {}
        self._present: frozenset[str] | None = None
        self._ancestors: frozenset[str] | None = None
        self._children: dict[str, list[str]] = {}
        if checkpoint_modules is not None:
            present = set()
            for ckpt in checkpoint_modules:
                model = mapper.map_name(ckpt)
                if model is None:
                    continue
                present.add(model)
                self._reverse.setdefault(model, set()).add(ckpt)
            self._present = frozenset(present)
            ancestors = set()
            for name in present:
                parts = name.split(".")
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    ancestors.add(parent)
                    self._children.setdefault(parent, []).append(name)
            self._ancestors = frozenset(ancestors)
        self._preimage_cache: dict[str, frozenset[str]] = {}

    @property
    def knows_checkpoint(self) -> bool:
        """True when the checkpoint's module list was given (shard presence is then known)."""
        return self._present is not None

    def to_model(self, checkpoint_name: str) -> str | None:
        """Model-space name of a checkpoint-space name (``None``: the mapper drops it)."""
        return self.mapper.map_name(checkpoint_name)

    def preimages(self, model_name: str) -> frozenset[str]:
        """Checkpoint-space names that map to ``model_name``.

        When the checkpoint's module list names the module, exactly those spellings; otherwise the
        mapper's inverted rules (identity included when it maps to itself).
        """
        cached = self._preimage_cache.get(model_name)
        if cached is not None:
            return cached
        # When the checkpoint names this module, patterns see exactly its real spelling(s), never an
        # identity spelling the checkpoint does not have (``re:visual.*`` must not hit a module stored
        # as ``model.visual.*``; failure class 2, llm-compressor PR 2597). A module the checkpoint does
        # not store (a fused ``gate_up_proj``, an absent shard) is spelled the way the checkpoint
        # spells its nearest stored ancestor.
        real = self._reverse.get(model_name) or self._spelled_like_ancestor(model_name)
        names = set(real) if real else set(self.mapper.preimages(model_name))
        result = frozenset(names) if names else frozenset((model_name,))
        self._preimage_cache[model_name] = result
        return result

    def may_start_with(self, model_name: str, leads: tuple[str, ...]) -> bool:
        """False only when no checkpoint-space spelling of ``model_name`` (:meth:`preimages`) can start
        with any of ``leads`` — a cheap test that lets glob matching skip building the spellings.

            >>> from quantresolve.naming.mapper import WeightsMapper
            >>> ns = Namespace(WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."}))
            >>> ns.may_start_with("language_model.model.layers.0.mlp", ("mtp",))
            False
            >>> ns.may_start_with("language_model.model.layers.0.mlp", ("model.lang",))
            True
        """
        if self._present is not None or model_name in self._preimage_cache:
            return True  # spellings come from the checkpoint (or are built already): just match them
        split = self.mapper.preimage_parts(model_name)
        if split is None:
            return True
        heads, rest = split
        if not heads:  # no rule inverts: the name stands for itself (as in preimages())
            return model_name.startswith(leads)
        for head in heads:
            for lead in leads:
                if head.startswith(lead) if len(lead) <= len(head) else (
                        lead.startswith(head) and rest.startswith(lead[len(head):])):
                    return True
        return False

    def _spelled_like_ancestor(self, model_name: str) -> set[str]:
        """Checkpoint spellings of an absent module, derived from its nearest ancestor the checkpoint has.

        The ancestor's spelling is read off a stored descendant (``model.visual.blocks.0.mlp.gate_proj``
        ↔ ``visual.blocks.0.mlp.gate_proj`` spells ``visual.blocks.0.mlp`` as ``model.visual.blocks.0.mlp``);
        each candidate is verified by mapping it forward. Empty when no ancestor is stored.
        """
        if self._present is None:
            return set()
        pos = model_name.rfind(".")
        while pos > 0:
            ancestor, tail = model_name[:pos], model_name[pos:]
            found: set[str] = set()
            for child in self._children.get(ancestor, ()):
                rest = child[pos:]
                for spelling in self._reverse.get(child, ()):
                    if spelling.endswith(rest):
                        candidate = spelling[: len(spelling) - len(rest)] + tail
                        if self.mapper.map_name(candidate) == model_name:
                            found.add(candidate)
            if found:
                return found
            pos = ancestor.rfind(".")
        return set()

    def exists(self, model_name: str) -> bool | None:
        """Whether the checkpoint has this module (or modules under it); ``None`` when unknown."""
        if self._present is None:
            return None
        return model_name in self._present or model_name in self._ancestors  # type: ignore[operator]

    def descendants(self, model_name: str) -> list[str]:
        """Checkpoint modules (model space) under ``model_name``, sorted; empty when unknown."""
        return sorted(self._children.get(model_name, ()))
