"""Build a transformers model whose parameters live on the meta device (no memory, no init cost).

Buffers stay real: non-persistent ones such as rotary ``inv_freq`` are computed
in ``__init__`` and never appear in a checkpoint, so they must not be left on
meta. Parameters are filled later from the checkpoint, tensor by tensor.

The class is the one ``config.json`` ``architectures`` names when transformers
has it (the checkpoint's own head: causal LM, image-text-to-text, ...), else
the class transformers' auto mappings give the config's type — causal LM first,
then image-text-to-text (:data:`AUTO_CLASSES`). A published checkpoint may name
its remote-code class (``KimiK25ForConditionalGeneration``) where transformers
has its own (``Kimi_K25ForConditionalGeneration``); remote code is never run,
and an architecture transformers has no class for is refused naming it.

    >>> from transformers import LlamaConfig
    >>> model = build_empty_model(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=1, vocab_size=32), torch.bfloat16)
    >>> model.model.layers[0].mlp.up_proj.weight.device.type, model.model.rotary_emb.inv_freq.device.type
    ('meta', 'cpu')
    >>> model_class(LlamaConfig(architectures=["MyRemoteLlama"])).__name__
    'LlamaForCausalLM'
"""

from __future__ import annotations

import torch
import transformers
from accelerate import init_empty_weights
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.initialization import no_init_weights

from quantresolve.errors import LoadError

#: Auto classes whose mapping (config class → model class) picks the class when ``architectures`` names none
#: transformers has, in order.
AUTO_CLASSES = (AutoModelForCausalLM, AutoModelForImageTextToText)


def candidate_classes(config: PretrainedConfig) -> list[type[PreTrainedModel]]:
    """Every class transformers has for ``config``, best first: those ``architectures`` names, then the
    auto mappings' (causal LM, image-text-to-text); no duplicates, never remote code.

        >>> from transformers import LlamaConfig
        >>> [c.__name__ for c in candidate_classes(LlamaConfig(architectures=["LlamaForCausalLM"]))]
        ['LlamaForCausalLM']
    """
    names = [n for n in getattr(config, "architectures", None) or () if isinstance(n, str)]
    out: list[type[PreTrainedModel]] = []
    for name in names:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
            out.append(cls)
    for auto in AUTO_CLASSES:
        mapping = auto._model_mapping  # config class → model class, transformers' own table
        if type(config) in mapping:
            out.append(mapping[type(config)])
    return list(dict.fromkeys(out))


def model_class(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The class ``architectures`` names (first one transformers knows), else the auto mappings' class.

    Raises :class:`~quantresolve.errors.LoadError` naming the architectures when transformers has no class.
    """
    found = candidate_classes(config)
    if found:
        return found[0]
    names = [n for n in getattr(config, "architectures", None) or () if isinstance(n, str)]
    raise LoadError(f"transformers {transformers.__version__} has no class for architectures {names} "
                    f"(model_type {getattr(config, 'model_type', None)!r}): cannot build the model",
                    field="architectures")


def build_empty_model(config: PretrainedConfig, dtype: torch.dtype) -> PreTrainedModel:
    """The architecture of ``config`` in ``dtype`` with every parameter on the meta device."""
    cls = model_class(config)
    try:
        # Random init of meta parameters is wasted work: every parameter comes from the checkpoint.
        with init_empty_weights(include_buffers=False), no_init_weights():
            model = cls._from_config(config, dtype=dtype)
    except (ValueError, KeyError) as err:
        raise LoadError(f"transformers cannot build {cls.__name__}: {err}".splitlines()[0],
                        field="architectures") from None
    except (TypeError, AttributeError, IndexError, RuntimeError, ZeroDivisionError, OverflowError) as err:
        # A config.json value the model's constructor cannot use (a size of 0, a string for a number).
        raise LoadError(f"transformers cannot build {cls.__name__} from config.json: {type(err).__name__}: "
                        f"{err}".splitlines()[0], file="config.json") from None
    return model
