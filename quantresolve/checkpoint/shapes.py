"""Parameter shapes from a checkpoint's ``config.json`` alone: the interface the audit asks through.

Without shard headers (a folder with only ``config.json``, or its index too) the tensors cannot say
how large each module is. The model's architecture can: built on the meta device (no memory), its
parameters have their shapes. Building it needs torch and transformers, which the audit must not
import, so the audit takes a :data:`ShapeProvider` — a function ``root → ModelShapes`` — from its
caller; the transformers one lives in the integrations layer
(:func:`quantresolve.integrations.transformers.shapes.model_shapes`) and the CLI passes it in. A
provider that cannot help raises :class:`ShapesUnavailable` with the reason the report prints.

:class:`ModelShapes` holds what such a model would save, in the checkpoint's spelling (after
transformers' own reverse renaming, per-expert names included)::

    >>> shapes = ModelShapes({"model.layers.0.mlp.down_proj.weight": ("BF16", (64, 128)),
    ...                       "model.norm.weight": ("BF16", (64,))}, source="example")
    >>> shapes.module_params()["model.layers.0.mlp.down_proj"]
    {'weight': ('BF16', (64, 128))}
    >>> cat = shapes.catalog(Path("."))
    >>> cat.has_headers, cat.tensors["model.norm.weight"].shape
    (False, (64,))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .catalog import CheckpointCatalog, TensorInfo
from .dtypes import DTYPE_BITS
from .suffixes import split_parameter

Shape = tuple[int, ...]


class ShapesUnavailable(Exception):
    """A provider cannot give shapes; ``str(err)`` says why (``install quantresolve[run] ...``)."""


@dataclass(frozen=True)
class ModelShapes:
    """Tensor name (checkpoint spelling) → ``(safetensors dtype, shape)`` of the dense model ``config.json``
    describes; ``source`` says what built it (e.g. ``transformers 5.23.0 DeepseekV3ForCausalLM``)."""

    tensors: Mapping[str, tuple[str, Shape]]
    source: str
    _modules: dict[str, dict[str, tuple[str, Shape]]] = field(default_factory=dict, repr=False, compare=False)

    def module_params(self) -> dict[str, dict[str, tuple[str, Shape]]]:
        """Module name → parameter suffix → ``(dtype, shape)`` (suffixes split as the inventory splits them)."""
        if not self._modules and self.tensors:
            for name, spec in sorted(self.tensors.items()):
                module, param, _known = split_parameter(name)
                self._modules.setdefault(module, {})[param] = spec
        return self._modules

    def catalog(self, root: Path) -> CheckpointCatalog:
        """A names-and-shapes catalog of these tensors (``has_headers=False``: nothing was read from shards)."""
        tensors = {name: TensorInfo(name, dtype, shape, "", None) for name, (dtype, shape) in sorted(self.tensors.items())}
        return CheckpointCatalog(root, MappingProxyType(tensors), False, ())


def dense_bytes(dtype: str, shape: Shape) -> int:
    """Bytes of a dense tensor.

        >>> dense_bytes("BF16", (4, 8))
        64
    """
    return math.prod(shape) * DTYPE_BITS[dtype] // 8


#: ``root → ModelShapes``; raises :class:`ShapesUnavailable`.
ShapeProvider = Callable[[Path], ModelShapes]


__all__ = ["ModelShapes", "Shape", "ShapeProvider", "ShapesUnavailable", "dense_bytes"]
