"""Tied weights (``tie_word_embeddings``): share what the checkpoint did not store.

transformers lists tied parameters as ``{target: source}``
(``{"lm_head.weight": "model.embed_tokens.weight"}``) only when the config asks
for tying. A tied parameter the checkpoint omits is filled by sharing its
partner; one the checkpoint stores is kept as stored. A tied module the config
*quantizes* while the checkpoint stores nothing for it cannot be built from its
dense partner and is an error.

    >>> from torch import nn
    >>> head, emb = nn.Linear(2, 3, bias=False, device="meta"), nn.Embedding(3, 2)
    >>> from quantresolve.integrations.transformers.targets import ParamTarget
    >>> targets = {"lm_head": ParamTarget(head, "cpu"), "embed": ParamTarget(emb, "cpu")}
    >>> targets["embed"].filled.add("weight")
    >>> tie_parameters({"lm_head.weight": "embed.weight"}, targets, {"embed.weight": emb.weight})
    ['lm_head.weight']
    >>> head.weight is emb.weight
    True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from torch import nn
from transformers import PreTrainedModel

from quantresolve.errors import LoadError
from quantresolve.integrations.transformers.plan import LayerPlan
from quantresolve.integrations.transformers.targets import ParamTarget, Target


def tied_parameters(model: PreTrainedModel) -> dict[str, str]:
    """``{target: source}`` parameter names the model's config ties (empty when it ties nothing)."""
    return dict(model.get_expanded_tied_weights_keys(all_submodels=True))


def check_tied_layers(tied: Mapping[str, str], plans: list[LayerPlan], present: Collection[str]) -> None:
    """Refuse a quantized tied layer the checkpoint stores nothing for (it would have to be the embedding)."""
    modules = {name.rsplit(".", 1)[0] for pair in tied.items() for name in pair}
    for plan in plans:
        for member in plan.members:
            if member in modules and plan.quantized and member not in present:
                raise LoadError(f"config.json ties {member} to another weight, the quantization config resolves "
                                f"it to {plan.resolution.algo} (rule {plan.resolution.rule!r}), and the checkpoint "
                                "stores no tensors for it: a quantized layer cannot be tied to a dense weight",
                                field=member)


def _filled(targets: Mapping[str, Target], name: str) -> bool | None:
    module, _, param = name.rpartition(".")
    target = targets.get(module)
    if not isinstance(target, ParamTarget):
        return None
    return param in target.filled


def tie_parameters(tied: Mapping[str, str], targets: Mapping[str, Target],
                   params: Mapping[str, nn.Parameter]) -> list[str]:
    """Fill each tied parameter the checkpoint omitted from its partner; return the names filled this way."""
    done = []
    for target, source in tied.items():
        t_filled, s_filled = _filled(targets, target), _filled(targets, source)
        if t_filled is None or s_filled is None or t_filled == s_filled:
            continue  # both stored (kept as stored), both missing (reported missing), or not plain parameters
        missing, present = (target, source) if s_filled else (source, target)
        module, _, param = missing.rpartition(".")
        tgt = targets[module]
        assert isinstance(tgt, ParamTarget)
        tgt.tie(param, params[present])
        done.append(missing)
    return done
