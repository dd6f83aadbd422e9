"""The audit's shape provider: the model ``config.json`` describes, built on the meta device.

:func:`model_shapes` builds the architecture with every parameter *and buffer* on the meta device
(no memory, no initialisation), takes its state dict, drops tied aliases and undoes transformers'
load-time conversions (``revert_weight_conversion``, what ``save_pretrained`` does: fused 3-D
experts back to per-expert ``experts.E.gate_proj.weight``, renamed prefixes back to the checkpoint's
spelling), and returns every tensor's dtype and shape in checkpoint names
(:class:`~quantresolve.checkpoint.shapes.ModelShapes`). The audit (torch-free) receives it as a
:data:`~quantresolve.checkpoint.shapes.ShapeProvider` from the command line.

Experts transformers keeps as 3-D parameters with no checkpoint converter (Gemma-4's
``experts.gate_up_proj [E, 2I, H]``) are listed per expert, as a quantized export names them
(``experts.E.gate_proj.weight [I, H]``, ``up_proj``, ``down_proj``; :func:`per_expert`).

The class is chosen as ``run`` chooses it (:func:`~quantresolve.integrations.transformers.build.candidate_classes`:
the one ``architectures`` names when transformers has it, else the causal-LM, then the image-text-to-text
auto mapping's; the next is tried when one cannot be built). Custom code (``auto_map``) is never run. Measured on the corpus
configs (2-core EPYC, loaded): DeepSeek-V3 (61 layers × 256 experts, 45,395 tensors) 2–3 s,
GLM-5 (59,079 tensors) 4–5 s, Qwen3.5-397B (93,411 tensors) 4–5 s; the cost is the module
tree's Python objects and the per-expert split, not memory.

    >>> from pathlib import Path
    >>> shapes = model_shapes(Path("fixtures/checkpoints/modelopt-mixed"))     # doctest: +SKIP
    >>> shapes.tensors["model.layers.0.mlp.down_proj.weight"]                  # doctest: +SKIP
    ('BF16', (64, 128))
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import transformers
from accelerate import init_empty_weights
from transformers import PretrainedConfig, PreTrainedModel
from transformers.core_model_loading import revert_weight_conversion
from transformers.initialization import no_init_weights
from transformers.modeling_utils import remove_tied_weights_from_state_dict

from quantresolve.checkpoint.shapes import ModelShapes, ShapesUnavailable
from quantresolve.errors import QuantResolveError
from quantresolve.integrations.transformers.build import candidate_classes
from quantresolve.integrations.transformers.config import compute_dtype, model_config

#: torch dtype → safetensors dtype code.
SAFETENSORS_DTYPES: dict[torch.dtype, str] = {
    torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
    torch.int8: "I8", torch.uint8: "U8", torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
    torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
}


_FUSED_EXPERTS = re.compile(r"^(?P<container>.+\.experts)\.(?P<proj>gate_up_proj|gate_proj|up_proj|down_proj)$")


def per_expert(name: str, dtype: str, shape: tuple[int, ...],
               transposed: bool = False) -> dict[str, tuple[str, tuple[int, ...]]]:
    """A fused 3-D experts parameter as the per-expert weights a quantized checkpoint stores
    (``gate_up_proj`` rows: gate first, then up); any other tensor unchanged.

        >>> per_expert("m.experts.gate_up_proj", "BF16", (2, 8, 3))["m.experts.1.up_proj.weight"]
        ('BF16', (4, 3))
        >>> list(per_expert("m.norm.weight", "BF16", (3,)))
        ['m.norm.weight']
    """
    match = _FUSED_EXPERTS.match(name)
    if match is None or len(shape) != 3:
        return {name: (dtype, shape)}
    experts, rows, cols = shape
    if transposed:
        rows, cols = cols, rows
    container, proj = match["container"], match["proj"]
    if proj == "gate_up_proj":
        parts = {"gate_proj": (rows // 2, cols), "up_proj": (rows // 2, cols)}
    else:
        parts = {proj: (rows, cols)}
    return {f"{container}.{e}.{p}.weight": (dtype, s) for e in range(experts) for p, s in parts.items()}


def _transposed(model: PreTrainedModel, container: str) -> bool:
    try:
        return bool(getattr(model.get_submodule(container), "is_transposed", False))
    except AttributeError:
        return False


def _build(cls: type[PreTrainedModel], config: PretrainedConfig, dtype: torch.dtype) -> PreTrainedModel:
    # Buffers on meta too: some (DeepSeek-V4's) would take tens of GB as real tensors.
    with init_empty_weights(include_buffers=True), no_init_weights():
        return cls._from_config(config, dtype=dtype)


def build_meta_model(root: Path) -> PreTrainedModel:
    """The model of ``root/config.json`` with everything on the meta device; :class:`ShapesUnavailable` if none."""
    try:
        config = model_config(root)
        dtype = compute_dtype(config, None)
    except QuantResolveError as err:
        raise ShapesUnavailable(f"transformers cannot read config.json: {err.detail}") from None
    failures = []
    candidates = candidate_classes(config)
    if not candidates:
        raise ShapesUnavailable(f"transformers {transformers.__version__} has no class for "
                                f"{', '.join(getattr(config, 'architectures', None) or ['this model'])} "
                                f"(model_type {getattr(config, 'model_type', None)!r})")
    for cls in candidates:
        try:
            return _build(cls, config, dtype)
        except Exception as err:  # any construction failure: try the next class, report them all
            failures.append(f"{cls.__name__}: {str(err).splitlines()[0][:160]}")
    raise ShapesUnavailable(f"transformers {transformers.__version__} cannot build "
                            f"{', '.join(getattr(config, 'architectures', None) or ['this model'])} "
                            f"({'; '.join(failures)})")


def model_shapes(root: Path) -> ModelShapes:
    """Every tensor the dense model of ``root/config.json`` would save: checkpoint name → (dtype, shape)."""
    model = build_meta_model(root)
    state = remove_tied_weights_from_state_dict(model.state_dict(), model)
    try:
        state = revert_weight_conversion(model, state)
    except Exception as err:  # a converter that cannot run on meta tensors: keep the model's own names
        raise ShapesUnavailable(f"transformers cannot name {type(model).__name__}'s tensors as a checkpoint "
                                f"would ({str(err).splitlines()[0][:160]})") from None
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dtype not in SAFETENSORS_DTYPES:
            continue
        fused = _FUSED_EXPERTS.match(name)
        transposed = fused is not None and _transposed(model, fused["container"])
        tensors.update(per_expert(name, SAFETENSORS_DTYPES[tensor.dtype], tuple(tensor.shape), transposed))
    return ModelShapes(tensors, source=f"transformers {transformers.__version__} {type(model).__name__}")


__all__ = ["SAFETENSORS_DTYPES", "build_meta_model", "model_shapes"]
