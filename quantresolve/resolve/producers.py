"""The built-in resolution rules: importing this module registers each producer's (one line per producer).

See :mod:`quantresolve.resolve.rules_registry`; the order of these lines does not matter.
"""

from quantresolve.resolve import (
    rules_awq,  # noqa: F401
    rules_bitsandbytes,  # noqa: F401
    rules_compressed_tensors,  # noqa: F401
    rules_fp8,  # noqa: F401
    rules_gptq,  # noqa: F401
    rules_modelopt,  # noqa: F401
    rules_mxfp4,  # noqa: F401
)
