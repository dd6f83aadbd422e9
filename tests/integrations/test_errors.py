"""Loud failures: tensors nothing consumes, parameters nothing fills, unknown or unimplemented schemes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from quantresolve.errors import DispatchError, LoadError, QuantResolveError, UnknownAlgorithmError
from quantresolve.integrations.transformers import load_quantized

from ..conftest import checkpoint_dir, write_json
from .tampered import Tensors, tampered
from .tampered import without as _without

pytestmark = pytest.mark.filterwarnings("ignore")


def _with(extra: dict[str, torch.Tensor]) -> Any:
    return lambda t: {**t, **extra}


def test_extra_tensor_on_a_quantized_layer_is_named(tmp_path: Path) -> None:
    path = tampered("ct-w4a16", tmp_path, tensors=_with({"model.layers.0.mlp.down_proj.bogus": torch.ones(1)}))
    with pytest.raises(LoadError, match=r"nothing in the model consumes: model\.layers\.0\.mlp\.down_proj\.bogus"):
        load_quantized(path)


def test_tensor_for_a_module_the_model_lacks_is_named(tmp_path: Path) -> None:
    path = tampered("ct-w4a16", tmp_path, tensors=_with({"model.layers.7.mlp.up_proj.weight": torch.ones(2, 2)}))
    with pytest.raises(LoadError, match=r"model\.layers\.7\.mlp\.up_proj\.weight"):
        load_quantized(path)


def test_missing_quantized_tensor_is_named(tmp_path: Path) -> None:
    path = tampered("modelopt-nvfp4", tmp_path, tensors=_without("model.layers.1.self_attn.v_proj.weight_scale_2"))
    with pytest.raises(LoadError, match=r"does not provide: model\.layers\.1\.self_attn\.v_proj\.weight_scale_2"):
        load_quantized(path)


def test_missing_dense_parameter_is_named(tmp_path: Path) -> None:
    path = tampered("ct-w4a16", tmp_path, tensors=_without("model.norm.weight", "lm_head.weight"))
    with pytest.raises(LoadError, match=r"does not provide: lm_head\.weight, model\.norm\.weight"):
        load_quantized(path)


def test_wrong_shape_names_the_tensor(tmp_path: Path) -> None:
    def edit(t: Tensors) -> Tensors:
        t["model.layers.0.post_attention_layernorm.weight"] = torch.ones(64, dtype=torch.bfloat16)
        return t
    path = tampered("ct-w4a16", tmp_path, tensors=edit)
    with pytest.raises(LoadError) as err:
        load_quantized(path)
    assert err.value.field == "model.layers.0.post_attention_layernorm.weight"
    assert "shape [64]" in str(err.value)


def test_quantized_tensors_on_a_layer_the_config_leaves_dense(tmp_path: Path) -> None:
    """The config no longer lists k_proj, but the checkpoint stores it FP8: never silently dense."""
    def drop(layers: dict[str, Any]) -> None:
        del layers["model.layers.0.self_attn.k_proj"]

    def hf(data: dict[str, Any]) -> None:
        drop(data["quantization"]["quantized_layers"])

    def cfg(data: dict[str, Any]) -> None:
        data["quantization_config"]["quantized_layers"].pop("model.layers.0.self_attn.k_proj", None)
        for group in data["quantization_config"].get("config_groups", {}).values():
            group["targets"] = [t for t in group["targets"] if t != "model.layers.0.self_attn.k_proj"]

    path = tampered("modelopt-mixed", tmp_path, hf_quant=hf, config=cfg)
    with pytest.raises(LoadError, match=r"model\.layers\.0\.self_attn\.k_proj\.weight_scale"):
        load_quantized(path)


def _modelopt_algo(name: str, algo: str, tmp_path: Path) -> Path:
    """ModelOpt fixture ``name`` claiming ``quant_algo: algo`` in both of its files (the flat config's
    ``config_groups``, which describe the real scheme, dropped)."""
    def hf(data: dict[str, Any]) -> None:
        data["quantization"]["quant_algo"] = algo

    def cfg(data: dict[str, Any]) -> None:
        data["quantization_config"]["quant_algo"] = algo
        data["quantization_config"].pop("config_groups", None)

    return tampered(name, tmp_path, hf_quant=hf, config=cfg)


def test_unknown_algo_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownAlgorithmError, match="FP9"):
        load_quantized(_modelopt_algo("modelopt-fp8", "FP9", tmp_path))


def test_scheme_without_a_linear_method_names_the_layer(tmp_path: Path) -> None:
    with pytest.raises(DispatchError, match="NVFP4_SVD") as err:
        load_quantized(_modelopt_algo("modelopt-nvfp4", "NVFP4_SVD", tmp_path))
    assert err.value.field is not None and err.value.field.startswith("model.layers.")


def test_forcing_a_backend_that_cannot_run_the_scheme(tmp_path: Path) -> None:
    with pytest.raises(DispatchError, match="int4pack_cpu"):
        load_quantized(checkpoint_dir("modelopt-fp8"), backend="int4pack_cpu")


@pytest.mark.parametrize("what", ["no directory", "no config.json"])
def test_bad_paths(tmp_path: Path, what: str) -> None:
    path = tmp_path / "nope"
    if what == "no config.json":
        path.mkdir()
    with pytest.raises(QuantResolveError):
        load_quantized(path)


def test_profile_that_drops_a_module_records_it(tmp_path: Path) -> None:
    """A profile whose mapper drops ``mtp.*`` (the model builds no MTP head): dropped by a nameable rule."""
    extra = {"mtp.layers.0.proj.weight": torch.ones(2, 2)}
    path = tampered("ct-w4a16", tmp_path, tensors=_with(extra))
    profile = write_json(tmp_path / "drop-mtp.json", {"name": "drop-mtp", "mapper": {"orig_to_new_prefix": {"mtp.": None}}})
    model = load_quantized(path, profile=profile)
    assert model.quantresolve_report.dropped == ["mtp.layers.0.proj.weight"]
    with pytest.raises(LoadError, match=r"mtp\.layers\.0\.proj\.weight"):
        load_quantized(path)
