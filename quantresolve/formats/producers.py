"""The built-in producers: importing this module registers each one (one line per producer).

Each imported module builds its :class:`~quantresolve.formats.registry.ProducerFormat` and
registers it; the order of these lines does not matter (detection follows ``precedence``, listings
follow :data:`~quantresolve.formats.algos.Producer`). A new producer adds its line here.
"""

from quantresolve.formats import (
    normalize_awq,  # noqa: F401
    normalize_bitsandbytes,  # noqa: F401
    normalize_compressed_tensors,  # noqa: F401
    normalize_fp8,  # noqa: F401
    normalize_gptq,  # noqa: F401
    normalize_modelopt,  # noqa: F401
    normalize_mxfp4,  # noqa: F401
)
