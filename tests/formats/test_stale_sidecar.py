"""A stale ModelOpt hf_quant_config.json next to another producer's config.json: config.json wins, loudly.

The real case is ``ct-from-modelopt-nvfp4``: compressed-tensors' own ModelOpt
NVFP4 converter rewrites config.json and copies hf_quant_config.json along.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from quantresolve import load_config
from quantresolve.audit.codes import CODES
from quantresolve.errors import UnknownAlgorithmError
from quantresolve.formats.sidecar import SEVERITIES, STALE_SIDECAR, STALE_SIDECAR_MISMATCH
from quantresolve.resolve.resolver import Resolver

from ..conftest import checkpoint_dir

HF = "hf_quant_config.json"
CONVERTED = "ct-from-modelopt-nvfp4"


def _copy(tmp_path: Path, name: str = CONVERTED) -> Path:
    dst = tmp_path / name
    shutil.copytree(checkpoint_dir(name), dst)
    return dst


def _edit(path: Path, edit: Any) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _sidecar_findings(cfg: Any) -> list[Any]:
    return [f for f in cfg.findings if f.code.startswith("stale-sidecar")]


def test_converted_checkpoint_loads_config_json_with_a_warning() -> None:
    cfg = load_config(checkpoint_dir(CONVERTED))
    assert (cfg.producer, cfg.quant_algo, cfg.groups[0].scheme.format) == (
        "compressed-tensors", "NVFP4", "nvfp4-pack-quantized")
    assert cfg.sources == ("config.json", HF)
    (finding,) = cfg.findings
    assert (finding.code, finding.severity, finding.file, finding.subject) == (STALE_SIDECAR, "warning", HF, HF)
    assert "config.json" in finding.message and HF in finding.message
    assert "modelopt NVFP4" in finding.message and "compressed-tensors NVFP4" in finding.message
    assert "same quantization arguments" in finding.message


def test_resolver_answers_from_config_json() -> None:
    resolver = Resolver.from_checkpoint(checkpoint_dir(CONVERTED))
    r = resolver.resolve("model.layers.0.self_attn.q_proj")
    assert (r.algo, r.scheme.producer, r.scheme.format) == ("NVFP4", "compressed-tensors", "nvfp4-pack-quantized")
    assert resolver.resolve("lm_head").scheme is None


def test_different_algorithm_in_the_sidecar_is_an_error_finding(tmp_path: Path) -> None:
    ckpt = _copy(tmp_path)
    _edit(ckpt / HF, lambda d: d["quantization"].update(quant_algo="FP8", group_size=None))
    cfg = load_config(ckpt)
    assert cfg.producer == "compressed-tensors" and cfg.quant_algo == "NVFP4"  # still config.json
    (finding,) = _sidecar_findings(cfg)
    assert (finding.code, finding.severity) == (STALE_SIDECAR_MISMATCH, "error")
    assert "different schemes" in finding.message and "modelopt FP8" in finding.message


def test_different_group_size_alone_is_a_different_scheme(tmp_path: Path) -> None:
    ckpt = _copy(tmp_path)
    _edit(ckpt / HF, lambda d: d["quantization"].update(group_size=32))
    (finding,) = _sidecar_findings(load_config(ckpt))
    assert finding.code == STALE_SIDECAR_MISMATCH and "quantization arguments differ" in finding.message


def test_kv_cache_difference_is_a_different_scheme(tmp_path: Path) -> None:
    ckpt = _copy(tmp_path)
    _edit(ckpt / HF, lambda d: d["quantization"].update(kv_cache_quant_algo="FP8"))
    (finding,) = _sidecar_findings(load_config(ckpt))
    assert finding.code == STALE_SIDECAR_MISMATCH and "KV-cache algorithm differs" in finding.message


def test_exclude_spelling_difference_is_reported_without_escalating(tmp_path: Path) -> None:
    ckpt = _copy(tmp_path)
    _edit(ckpt / HF, lambda d: d["quantization"].update(exclude_modules=["lm_head*"]))
    (finding,) = _sidecar_findings(load_config(ckpt))
    assert finding.code == STALE_SIDECAR and "spelled differently" in finding.message
    assert "lm_head*" in finding.message


def test_bitsandbytes_config_json_next_to_a_modelopt_sidecar(tmp_path: Path) -> None:
    (tmp_path / HF).write_text(json.dumps({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8"}}))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "quantization_config": {
        "quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}}))
    cfg = load_config(tmp_path)
    assert cfg.quant_algo == "BNB_NF4"
    (finding,) = _sidecar_findings(cfg)
    assert finding.code == STALE_SIDECAR_MISMATCH and "bitsandbytes BNB_NF4" in finding.message


def test_a_broken_sidecar_is_still_an_error(tmp_path: Path) -> None:
    """Stale is not a licence to be unreadable: unknown spellings stay loud, naming the file."""
    ckpt = _copy(tmp_path)
    _edit(ckpt / HF, lambda d: d["quantization"].update(quant_algo="FP9"))
    with pytest.raises(UnknownAlgorithmError, match=r"hf_quant_config\.json: quantization\.quant_algo"):
        load_config(ckpt)


def test_modelopt_config_json_next_to_the_sidecar_is_not_stale() -> None:
    """Both ModelOpt: the two-file comparison applies, not the stale-sidecar rule."""
    cfg = load_config(checkpoint_dir("modelopt-nvfp4"))
    assert cfg.producer == "modelopt" and not _sidecar_findings(cfg)
    assert cfg.sources == (HF, "config.json")


@pytest.mark.parametrize("code", [STALE_SIDECAR, STALE_SIDECAR_MISMATCH])
def test_codes_are_registered_with_the_loader_severity(code: str) -> None:
    assert CODES[code].severity == SEVERITIES[code]
