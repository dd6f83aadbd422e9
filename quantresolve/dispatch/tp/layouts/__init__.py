"""Per-codec tensor-parallel layouts (importing this package registers them all)."""

from quantresolve.dispatch.tp.layouts import bitsandbytes, compressed_tensors, dense, modelopt  # noqa: F401
from quantresolve.dispatch.tp.layouts.registry import LAYOUTS, Layout, layout_for, register_layout

__all__ = ["LAYOUTS", "Layout", "layout_for", "register_layout"]
