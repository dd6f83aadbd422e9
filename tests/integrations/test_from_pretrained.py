"""transformers' ``from_pretrained`` through quantresolve's quantizer builds ``load_quantized``'s model, bit for bit.

Every Llama fixture, two MoE (compressed-tensors, ModelOpt) and two multimodal fixtures load both ways:
ModelOpt checkpoints with plain ``AutoModel*.from_pretrained(path)`` (``quant_method: modelopt``
routed by :func:`register`), the others through ``config=`` (:func:`from_pretrained`). The logits on
the fixture's reference prompt are equal bit for bit, and greedy generation as ``quantresolve run``
does it gives the same tokens. Then the ways it must refuse, each in one error naming what is wrong.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, PreTrainedModel
from transformers.quantizers import auto
from transformers.quantizers.base import HfQuantizer
from transformers.utils.quantization_config import QuantizationConfigMixin

from quantresolve.errors import ConfigError, LoadError
from quantresolve.integrations.transformers import (
    QuantresolveConfig,
    QuantresolveModelOptConfig,
    from_pretrained,
    pretrained_config,
    register,
)
from quantresolve.integrations.transformers.inbox import INBOX

from ..conftest import REPO, checkpoint_dir
from .loaded import LLAMA_FIXTURES, loaded, reference
from .tampered import Tensors, tampered, without

pytestmark = pytest.mark.filterwarnings("ignore")

#: Fixture → the auto class a transformers user loads it with (the class its ``architectures`` names).
FIXTURES = {**dict.fromkeys(LLAMA_FIXTURES, AutoModelForCausalLM),
            "ct-qwen3-moe-w4a16": AutoModelForCausalLM, "modelopt-qwen3-moe-nvfp4": AutoModelForCausalLM,
            "ct-gemma3-mm": AutoModelForImageTextToText, "modelopt-qwen3-vl-nvfp4": AutoModelForImageTextToText}


def _hf_load(name: str, auto_class: Any = AutoModelForCausalLM, **kwargs: Any) -> PreTrainedModel:
    """What a transformers user writes: plain ``from_pretrained`` for ModelOpt, ``config=`` for the rest."""
    path = checkpoint_dir(name)
    register()
    if name.startswith("modelopt"):
        return auto_class.from_pretrained(path, **kwargs)  # type: ignore[no-any-return]
    return from_pretrained(path, auto_class=auto_class, **kwargs)


def _greedy(model: PreTrainedModel, ids: torch.Tensor) -> list[int]:
    """``quantresolve run``'s generation: 8 new tokens, greedy."""
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False, attention_mask=torch.ones_like(ids),
                             pad_token_id=model.generation_config.eos_token_id)
    return out[0].tolist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_from_pretrained_matches_load_quantized(name: str) -> None:
    ours, theirs = loaded(name), _hf_load(name, FIXTURES[name])
    assert type(theirs) is type(ours)
    ids = reference(name)["input_ids"][:1]
    with torch.no_grad():
        assert torch.equal(theirs(ids).logits, ours(ids).logits)
    assert _greedy(theirs, ids) == _greedy(ours, ids)
    a, b = ours.quantresolve_report, theirs.quantresolve_report
    assert (b.producer, b.quant_algo, b.profile, b.counts()) == (a.producer, a.quant_algo, a.profile, a.counts())
    assert not hasattr(theirs, INBOX) and theirs.hf_quantizer.session is None


def test_transformers_sees_every_tensor_loaded() -> None:
    """No key missing, unexpected or mismatched in transformers' own loading report; options reach the layers."""
    path = checkpoint_dir("ct-w4a16")
    model, info = AutoModelForCausalLM.from_pretrained(
        path, config=pretrained_config(path, QuantresolveConfig(backend="dense_dequant")), output_loading_info=True)
    assert {k: len(v) for k, v in info.items()} == {"missing_keys": 0, "unexpected_keys": 0, "mismatched_keys": 0,
                                                     "error_msgs": 0}
    assert model.model.layers[0].mlp.down_proj.backend == "dense_dequant"
    assert model.config.quantization_config.quant_method == "quantresolve"


def test_a_passed_config_is_used_when_transformers_does_not_know_the_checkpoints_method(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before ``modelopt`` is routed, a ModelOpt checkpoint's method is unknown to transformers: the passed config wins."""
    register()
    monkeypatch.delitem(auto.AUTO_QUANTIZER_MAPPING, "modelopt")
    monkeypatch.delitem(auto.AUTO_QUANTIZATION_CONFIG_MAPPING, "modelopt")
    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir("modelopt-fp8"),
                                                 quantization_config=QuantresolveConfig(backend="dense_dequant"))
    ids = reference("modelopt-fp8")["input_ids"][:1]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded("modelopt-fp8")(ids).logits)


# --------------------------------------------------------------------------- registration

class _OtherConfig(QuantizationConfigMixin):
    quant_method = "modelopt"


class _OtherQuantizer(HfQuantizer):
    def is_serializable(self) -> bool:
        return False

    @property
    def is_trainable(self) -> bool:
        return False


def test_register_is_idempotent_and_leaves_another_modelopt_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    first = register()
    assert first.routed == ("quantresolve", "modelopt") and register() == first
    assert register(modelopt=False).routed == ("quantresolve",)
    # a transformers that registers ModelOpt itself keeps the name
    monkeypatch.setitem(auto.AUTO_QUANTIZER_MAPPING, "modelopt", _OtherQuantizer)
    monkeypatch.setitem(auto.AUTO_QUANTIZATION_CONFIG_MAPPING, "modelopt", _OtherConfig)
    again = register()
    assert (again.routed, again.deferred) == (("quantresolve",), ("modelopt",))
    assert auto.AUTO_QUANTIZER_MAPPING["modelopt"] is _OtherQuantizer
    # ... and ModelOpt checkpoints still reach quantresolve through config=
    model = from_pretrained(checkpoint_dir("modelopt-nvfp4"))
    assert model.quantresolve_report.producer == "modelopt"


def test_importing_quantresolve_registers_nothing() -> None:
    code = ("import quantresolve, quantresolve.integrations.transformers\n"
            "from transformers.quantizers.auto import AUTO_QUANTIZER_MAPPING as m\n"
            "assert 'quantresolve' not in m and 'modelopt' not in m, sorted(m)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# --------------------------------------------------------------------------- refusals

def test_unknown_producer_is_named(tmp_path: Path) -> None:
    def cfg(data: dict[str, Any]) -> None:
        data["quantization_config"]["quant_method"] = "fancyquant"

    path = tampered("ct-w4a16", tmp_path, config=cfg)
    register()
    with pytest.raises(ConfigError, match="fancyquant"):  # transformers knows no such method: ours is used
        AutoModelForCausalLM.from_pretrained(path, quantization_config=QuantresolveConfig())
    with pytest.raises(ConfigError, match="fancyquant"):
        from_pretrained(path)


def test_conflicting_configs_are_refused() -> None:
    register()
    with pytest.raises(LoadError, match=r"quantized by compressed-tensors.*expects modelopt") as err:
        from_pretrained(checkpoint_dir("ct-w4a16"), QuantresolveConfig(expect_producer="modelopt"))
    assert err.value.field == "quantization_config.expect_producer"
    # transformers itself refuses a second config class beside a checkpoint's method it routes
    with pytest.raises(ValueError, match="CompressedTensorsConfig but you are passing a QuantresolveConfig"):
        AutoModelForCausalLM.from_pretrained(checkpoint_dir("ct-w4a16"), quantization_config=QuantresolveConfig())
    with pytest.raises(ValueError, match="QuantresolveModelOptConfig but you are passing a QuantresolveConfig"):
        AutoModelForCausalLM.from_pretrained(checkpoint_dir("modelopt-fp8"), quantization_config=QuantresolveConfig())
    # options that a ModelOpt checkpoint's config would silently drop in transformers' merge
    with pytest.raises(ConfigError, match="backend"):
        QuantresolveModelOptConfig(backend="dense_dequant")
    with pytest.raises(ConfigError, match="quantization_config"):
        from_pretrained(checkpoint_dir("ct-w4a16"), quantization_config=QuantresolveConfig())
    with pytest.raises(ConfigError, match="unknown option"):
        QuantresolveConfig(bits=4)
    with pytest.raises(ConfigError, match="profile=") as cfg:  # routes planned without it: not silently ignored
        from_pretrained(checkpoint_dir("ct-w4a16"), key_mapping={r"^model\.": "model."})
    assert cfg.value.field == "key_mapping"


@pytest.mark.parametrize("device_map", ["cuda", "auto", {"": "cuda:0"}, {"model": "cpu", "lm_head": "disk"}])
def test_device_maps_off_the_cpu_are_refused(device_map: Any) -> None:
    register()
    with pytest.raises(LoadError, match="CPU only") as err:
        AutoModelForCausalLM.from_pretrained(checkpoint_dir("modelopt-fp8"), device_map=device_map)
    assert err.value.field == "device_map"


def test_cpu_device_map_loads() -> None:
    model = _hf_load("modelopt-fp8", device_map="cpu")
    assert model.quantresolve_report.counts() == loaded("modelopt-fp8").quantresolve_report.counts()


@pytest.mark.parametrize(("fixture", "drop", "named"), [
    ("modelopt-nvfp4", "model.layers.1.self_attn.v_proj.weight_scale_2", "model.layers.1.self_attn.v_proj.weight_scale_2"),
    ("ct-w4a16", "model.norm.weight", "model.norm.weight"),
])
def test_missing_tensors_are_named(tmp_path: Path, fixture: str, drop: str, named: str) -> None:
    path = tampered(fixture, tmp_path, tensors=without(drop))
    register()
    with pytest.raises(LoadError, match=rf"does not provide: {named.replace('.', '[.]')}"):
        from_pretrained(path)


def test_extra_and_misshapen_tensors_are_named_before_reading(tmp_path: Path) -> None:
    def extra(t: Tensors) -> Tensors:
        return {**t, "model.layers.0.mlp.down_proj.bogus": torch.ones(1)}

    register()
    with pytest.raises(LoadError, match=r"nothing in the model consumes: model\.layers\.0\.mlp\.down_proj\.bogus"):
        from_pretrained(tampered("ct-w4a16", tmp_path / "a", tensors=extra))

    def shape(t: Tensors) -> Tensors:
        t["model.layers.0.post_attention_layernorm.weight"] = torch.ones(64, dtype=torch.bfloat16)
        return t

    with pytest.raises(LoadError, match=r"shape \[64\]") as err:
        from_pretrained(tampered("ct-w4a16", tmp_path / "b", tensors=shape))
    assert err.value.field == "model.layers.0.post_attention_layernorm.weight"
