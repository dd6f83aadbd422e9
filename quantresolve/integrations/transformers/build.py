"""Build a transformers model whose parameters live on the meta device (no memory, no init cost).

Buffers stay real: non-persistent ones such as rotary ``inv_freq`` are computed
in ``__init__`` and never appear in a checkpoint, so they must not be left on
meta. Parameters are filled later from the checkpoint, tensor by tensor.

The class is the one ``config.json`` ``architectures`` names when transformers
has it (the checkpoint's own head: causal LM, image-text-to-text, ...), else
``AutoModelForCausalLM``.

    >>> from transformers import LlamaConfig
    >>> model = build_empty_model(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=1, vocab_size=32), torch.bfloat16)
    >>> model.model.layers[0].mlp.up_proj.weight.device.type, model.model.rotary_emb.inv_freq.device.type
    ('meta', 'cpu')
"""

from __future__ import annotations

import torch
import transformers
from accelerate import init_empty_weights
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.initialization import no_init_weights

from quantresolve.errors import LoadError


def model_class(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The class ``architectures`` names (first one transformers knows), else ``AutoModelForCausalLM``."""
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
            return cls
    return AutoModelForCausalLM  # type: ignore[return-value]


def build_empty_model(config: PretrainedConfig, dtype: torch.dtype) -> PreTrainedModel:
    """The architecture of ``config`` in ``dtype`` with every parameter on the meta device."""
    cls = model_class(config)
    try:
        # Random init of meta parameters is wasted work: every parameter comes from the checkpoint.
        with init_empty_weights(include_buffers=False), no_init_weights():
            if cls is AutoModelForCausalLM:
                # Never run a checkpoint's own code; False (not None) also keeps transformers from prompting.
                model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=False)
            else:
                model = cls._from_config(config, dtype=dtype)
    except (ValueError, KeyError) as err:
        raise LoadError(f"transformers cannot build {cls.__name__}: {err}".splitlines()[0],
                        field="architectures") from None
    return model
