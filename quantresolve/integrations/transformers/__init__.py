"""transformers integration: build a model, install the resolved linear methods, stream the checkpoint.

    >>> from quantresolve.integrations.transformers import load_quantized
    >>> model = load_quantized("fixtures/checkpoints/modelopt-nvfp4")    # doctest: +SKIP

torch and transformers are imported here; the rest of quantresolve's core is torch-free.
"""

from quantresolve.integrations.transformers.api import load_quantized
from quantresolve.integrations.transformers.report import KVRecord, LayerRecord, LoadReport

__all__ = ["KVRecord", "LayerRecord", "LoadReport", "load_quantized"]
