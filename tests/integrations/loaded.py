"""Shared, cached loads of the fixture checkpoints: each (fixture, profile) is loaded once per test process."""

from __future__ import annotations

import functools
import warnings

import torch
from safetensors.torch import load_file
from transformers import PreTrainedModel

from quantresolve.integrations.transformers import load_quantized

from ..conftest import checkpoint_dir

#: The Llama fixtures made by fixtures/generate.py that load_quantized must run.
LLAMA_FIXTURES = (
    "bnb-int8", "bnb-nf4",
    "ct-fp8", "ct-fp8-block", "ct-fp8-dynamic", "ct-from-modelopt-nvfp4", "ct-mixed", "ct-mxfp4a16",
    "ct-nvfp4", "ct-nvfp4a16", "ct-w4a16", "ct-w4a16-asym", "ct-w8a16", "ct-w8a8",
    "modelopt-fp8", "modelopt-fp8-pc-pt", "modelopt-int4-awq", "modelopt-int8-sq", "modelopt-mixed",
    "modelopt-mxfp4", "modelopt-nvfp4", "modelopt-w4a16-nvfp4", "modelopt-w4a16-nvfp4-fp8kv",
    "modelopt-w4a8-awq",
)


@functools.cache
def loaded(name: str, profile: str | None = None) -> PreTrainedModel:
    """``load_quantized`` of fixture ``name`` (skips when the fixture is not generated)."""
    path = checkpoint_dir(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_quantized(path, profile=profile)


@functools.cache
def reference(name: str) -> dict[str, torch.Tensor]:
    """The producer's reference: ``input_ids``, ``logits`` (float32), ``greedy_ids``."""
    return load_file(str(checkpoint_dir(name) / "reference.safetensors"))


@functools.cache
def logits(name: str, profile: str | None = None) -> torch.Tensor:
    """Float32 logits of the loaded model on the reference prompt."""
    with torch.no_grad():
        return loaded(name, profile)(reference(name)["input_ids"]).logits.float()
