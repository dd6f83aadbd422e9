"""Copies of fixture checkpoints with one thing changed, for the loader's error paths."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..conftest import checkpoint_dir

Tensors = dict[str, torch.Tensor]


def tampered(name: str, tmp: Path, *, tensors: Callable[[Tensors], Tensors] | None = None,
             config: Callable[[dict[str, Any]], None] | None = None,
             hf_quant: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Copy fixture ``name`` into ``tmp`` and apply the edits (in place on the parsed files)."""
    dst = tmp / name
    shutil.copytree(checkpoint_dir(name), dst)
    if tensors is not None:
        path = dst / "model.safetensors"
        save_file(tensors(load_file(str(path))), str(path), metadata={"format": "pt"})
    for file, edit in (("config.json", config), ("hf_quant_config.json", hf_quant)):
        if edit is not None:
            data = json.loads((dst / file).read_text())
            edit(data)
            (dst / file).write_text(json.dumps(data, indent=1))
    return dst


def without(*names: str) -> Callable[[Tensors], Tensors]:
    """A ``tensors`` edit for :func:`tampered` that deletes ``names``."""
    def edit(t: Tensors) -> Tensors:
        for n in names:
            del t[n]
        return t
    return edit
