"""Which naming profile ``load_quantized`` loads a checkpoint with, and why.

A caller's profile always wins. Without one, the profile is *derived*: the
checkpoint's own module names are put through transformers' renamings for the
class built here (:func:`~.naming.profile_for_model`, the conversion mapping
``from_pretrained`` applies), so a checkpoint stored in any layout transformers
loads — Gemma-3 as ``language_model.model.*`` / ``vision_tower.vision_model.*``
or as ``model.language_model.*`` / ``model.vision_tower.vision_model.*``,
Mixtral's ``block_sparse_moe``, Nemotron-H's ``backbone.*`` — lands on the
modules the model has. For a checkpoint already in the model's own names the
derived profile is the identity, the same names the ``transformers`` profile
gives.

The experts containers are handed over too: quantresolve loads experts one by
one into its stand-ins (:mod:`.expert_containers`), so transformers' merge of
per-expert tensors does not apply to them, only its renamings.

    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> p = Profile("transformers:Gemma3ForConditionalGeneration",
    ...             mapper=WeightsMapper(orig_to_new_prefix={"language_model.model.": "model.language_model.",
    ...                                                      "vision_tower.vision_model.": "model.vision_tower."}))
    >>> derived_reason(p, "Gemma3ForConditionalGeneration")
    "derived from transformers' renamings of Gemma3ForConditionalGeneration (2 prefix rules)"
    >>> derived_reason(Profile("transformers:LlamaForCausalLM"), "LlamaForCausalLM")
    "derived from transformers' renamings of LlamaForCausalLM (none apply: the checkpoint's names are the model's)"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from quantresolve.integrations.transformers.experts import QuantExperts
from quantresolve.integrations.transformers.naming import profile_for_model
from quantresolve.naming.profiles import DEFAULT_PROFILE, Profile, load_profile

#: The reason recorded when the caller named the profile.
GIVEN = "given by the caller"


@dataclass(frozen=True)
class ProfileChoice:
    """The profile a load uses and one line saying why."""

    profile: Profile
    reason: str


def derived_reason(profile: Profile, model_class: str) -> str:
    """``derived from transformers' renamings of <class> (<n> prefix rules)`` — or that none apply."""
    rules = len(profile.mapper.orig_to_new_prefix)
    what = (f"{rules} prefix rule{'s' if rules != 1 else ''}" if rules
            else "none apply: the checkpoint's names are the model's")
    return f"derived from transformers' renamings of {model_class} ({what})"


def choose_profile(given: str | Path | Profile | None, model: nn.Module, checkpoint_modules: Iterable[str],
                   containers: Mapping[str, QuantExperts]) -> ProfileChoice:
    """The caller's profile, else one derived from transformers' renamings of ``model``'s class.

    ``model`` is the built model with its experts already replaced by ``containers``. Raises
    :class:`~quantresolve.errors.ProfileError` when transformers would convert (not just rename) a
    checkpoint module's tensors, or its renamings cannot be written as prefix rules.
    """
    if given is not None:
        return ProfileChoice(load_profile(given), GIVEN)
    profile = profile_for_model(model, sorted(checkpoint_modules), base=DEFAULT_PROFILE,
                                expert_containers=list(containers))
    return ProfileChoice(profile, derived_reason(profile, type(model).__name__))


__all__ = ["GIVEN", "ProfileChoice", "choose_profile", "derived_reason"]
