"""Parameters and bytes of each module: from the shard headers, else from the model's shapes.

Three cases, one per evidence level of the audit:

- **headers**: the stored tensors say it — bytes are their sizes, parameters the logical weight
  (unpacked for packed int4, ×2 for bitsandbytes 4-bit);
- **index names or config only, with shapes** (:class:`~quantresolve.checkpoint.shapes.ModelShapes`,
  the dense model ``config.json`` describes): parameters are the weight's numel, bytes the estimate
  of :func:`~quantresolve.audit.estimate.weight_bytes` under the module's resolved scheme plus the
  module's other parameters (biases) at the model's dtype;
- **no shapes**: unknown (0, and the report says why).

    >>> from quantresolve.checkpoint import Evidence, Module, TensorInfo
    >>> from quantresolve.checkpoint.shapes import ModelShapes
    >>> shapes = ModelShapes({"m.fc.weight": ("BF16", (8, 4)), "m.fc.bias": ("BF16", (8,))}, source="x")
    >>> module = Module("m.fc", {"weight": TensorInfo("m.fc.weight", None, None, "a", None)})
    >>> Sizer(False, shapes).size("m.fc", module, Evidence("dense", confidence="names-only"), None)
    (32, 80, 'config')
"""

from __future__ import annotations

from quantresolve.audit.estimate import weight_bytes
from quantresolve.checkpoint import Evidence, Module, packed_logical_shape
from quantresolve.checkpoint.dtypes import DTYPE_BITS
from quantresolve.checkpoint.shapes import ModelShapes, dense_bytes
from quantresolve.formats.scheme import QuantScheme

#: Where a module's parameter and byte counts came from.
SHAPES_FROM_HEADERS = "headers"
SHAPES_FROM_CONFIG = "config"


def header_params(evidence: Evidence, module: Module, scheme: QuantScheme | None) -> int:
    """Logical parameter count of a module's weight from its headers (0 when unknown or weightless)."""
    if evidence.param_count is not None:
        return evidence.param_count
    if evidence.kind == "int4-packed":
        bits = scheme.weights.num_bits if scheme is not None and scheme.weights is not None else None
        shape = packed_logical_shape(evidence, bits) if bits else None
        return shape[0] * shape[1] if shape else 0
    if evidence.logical_shape is not None:
        return evidence.logical_shape[0] * evidence.logical_shape[1]
    weight = module.params.get("weight")
    if weight is None or weight.numel is None:
        return 0
    return weight.numel * 2 if evidence.kind == "bnb-4bit" else weight.numel


class Sizer:
    """Sizes modules for one audit: ``has_headers`` (the catalog's), ``shapes`` (or ``None``)."""

    def __init__(self, has_headers: bool, shapes: ModelShapes | None) -> None:
        self.has_headers = has_headers
        self.params = shapes.module_params() if shapes is not None and not has_headers else None
        #: Checkpoint modules with a weight the shapes did not cover (one grouped `unsized-modules` finding).
        self.unsized: list[str] = []

    @property
    def source(self) -> str | None:
        """``"headers"``, ``"config"`` or ``None`` (unknown)."""
        if self.has_headers:
            return SHAPES_FROM_HEADERS
        return SHAPES_FROM_CONFIG if self.params is not None else None

    def size(self, name: str, module: Module, evidence: Evidence,
             scheme: QuantScheme | None) -> tuple[int, int, str | None]:
        """``(params, bytes, source)`` of checkpoint module ``name``; source ``None`` when unknown."""
        if self.has_headers:
            return (header_params(evidence, module, scheme), sum(t.nbytes or 0 for t in module.params.values()),
                    SHAPES_FROM_HEADERS)
        if self.params is None:
            return 0, 0, None
        spec = self.params.get(name)
        if evidence.fused_experts:  # one checkpoint module for the experts transformers' model builds one by one
            parts = [spec or {}] + [p for child, p in self.params.items() if child.startswith(name + ".")]
            if any("weight" in p for p in parts):
                return *map(sum, zip(*(self._spec_size(p, scheme) for p in parts), strict=True)), SHAPES_FROM_CONFIG
        if spec is None:
            if evidence.kind != "no-weight":
                self.unsized.append(name)
            return 0, 0, None
        return *self._spec_size(spec, scheme), SHAPES_FROM_CONFIG

    @staticmethod
    def _spec_size(spec: dict[str, tuple[str, tuple[int, ...]]], scheme: QuantScheme | None) -> tuple[int, int]:
        """``(params, bytes)`` of one module's parameters: its weight at the scheme's width, the rest dense."""
        params = nbytes = 0
        for param, (dtype, shape) in spec.items():
            if param == "weight":
                params = 1
                for d in shape:
                    params *= d
                nbytes += weight_bytes(scheme, shape, dense_bits=DTYPE_BITS[dtype])
            else:
                nbytes += dense_bytes(dtype, shape)
        return params, nbytes


__all__ = ["SHAPES_FROM_CONFIG", "SHAPES_FROM_HEADERS", "Sizer", "header_params"]
