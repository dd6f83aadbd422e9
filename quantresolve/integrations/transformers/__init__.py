"""transformers integration: build a model, install the resolved linear methods, stream the checkpoint.

Two ways in, the same model bit for bit (both run :mod:`.session`):

- :func:`load_quantized` builds the architecture and reads the tensors itself;
- transformers' own ``from_pretrained`` after :func:`register` (:mod:`.hf_quantizer`): a ModelOpt
  checkpoint with no argument, any checkpoint with ``config=pretrained_config(path, QuantresolveConfig(...))``
  or through :func:`from_pretrained`.

    >>> from quantresolve.integrations.transformers import load_quantized
    >>> model = load_quantized("fixtures/checkpoints/modelopt-nvfp4")    # doctest: +SKIP

torch and transformers are imported here; the rest of quantresolve's core is torch-free. Nothing is
registered with transformers until :func:`register` is called.
"""

from quantresolve.integrations.transformers.api import load_quantized
from quantresolve.integrations.transformers.hf_config import (
           QuantresolveConfig,
           QuantresolveModelOptConfig,
)
from quantresolve.integrations.transformers.hf_quantizer import QuantresolveHfQuantizer
from quantresolve.integrations.transformers.pretrained import from_pretrained, pretrained_config
from quantresolve.integrations.transformers.registration import Registration, register
from quantresolve.integrations.transformers.report import KVRecord, LayerRecord, LoadReport

__all__ = ["KVRecord", "LayerRecord", "LoadReport", "QuantresolveConfig", "QuantresolveHfQuantizer",
           "QuantresolveModelOptConfig", "Registration", "from_pretrained", "load_quantized", "pretrained_config",
           "register"]
