"""HF fine-grained FP8 and gpt-oss MXFP4 fixtures: dequantization against transformers' own loaders,
logits and greedy tokens against the references, and generation through ``quantresolve run``.

The fixtures (``fixtures/hf_formats.py``, ``fixtures/README.md``) are written by a committed script:
FP8 weights with 128-multiple dimensions by transformers' own ``Fp8Quantize`` op, MXFP4 from gpt-oss'
documented layout. The dequantization references are:

- **transformers 5.23's own loaders on CPU** where they load the checkpoint correctly — FP8's automatic
  dequantizing load (``fp8-block``, ``fp8-qwen3-moe-block``) and ``Mxfp4Config(dequantize=True)``
  (``mxfp4-gpt-oss``): every dequantized weight must equal ours bit for bit;
- **the documented formula, written here** (``float(q) · S[n // 128, k // 128]``, the grid cropped; per
  tensor ``float(q) · weight_scale``) where transformers cannot be one: it refuses ``fp8-block-ragged``
  (it infers the block from the grid: 320 rows / 3) and loads AutoFP8's ``weight_scale`` dialect without
  its scales (``fp8-autofp8-static``).

Logit bounds (:mod:`tests.references`): strict, measured on the 2-core AVX2 box — every fixture 0.0 (one
bf16 step allowed). Cross-machine bounds are *not measured* (no second machine ran these); they are set as
for the same arithmetic on the compressed-tensors fixtures (FP8 block with dynamic activation groups as
``ct-fp8-block``, static per-tensor as ``ct-fp8``, weight-only MXFP4 as ``ct-mxfp4a16``).
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from quantresolve import load_config
from quantresolve.cli.main import main
from quantresolve.dispatch.codecs import codec_for

from ..conftest import checkpoint_dir
from ..references import Tolerance, check_generation, check_logits, reference_mode
from .loaded import loaded, logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")

BF16_STEP = 0.004

#: fixture → (logit bound per mode, the unquantized model's relative distance from the reference, measured).
FIXTURES: dict[str, tuple[Tolerance, float]] = {
    # float_gemv_cpu sums in another order than the reference's bf16 GEMM (one bf16 step on a few outputs), and
    # the dynamic FP8 activation quantization turns such a step into an FP8 step: 0.0127 (0.0 on dense_dequant)
    "fp8-block": (Tolerance(0.019, 0.041), 0.0640),
    "fp8-block-ragged": (Tolerance(BF16_STEP, 0.041), 0.0720),
    "fp8-qwen3-moe-block": (Tolerance(BF16_STEP, 0.041), 0.0712),
    "fp8-autofp8-static": (Tolerance(BF16_STEP, 0.021), 0.0694),
    "mxfp4-gpt-oss": (Tolerance(BF16_STEP, 0.006), 0.1395),
}


def _transformers_load(name: str, **kwargs: object) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoModelForCausalLM.from_pretrained(str(checkpoint_dir(name)), dtype=torch.bfloat16,
                                                    device_map="cpu", **kwargs)


def _codec_and_tensors(name: str) -> tuple[object, dict[str, torch.Tensor]]:
    path = checkpoint_dir(name)
    return codec_for(load_config(path).default_scheme), load_file(str(path / "model.safetensors"))


def _fp8_modules(tensors: dict[str, torch.Tensor]) -> list[str]:
    return sorted(n.removesuffix(".weight") for n, t in tensors.items()
                  if n.endswith(".weight") and t.dtype == torch.float8_e4m3fn)


def _ours_fp8(codec: object, tensors: dict[str, torch.Tensor], module: str) -> torch.Tensor:
    q = tensors[f"{module}.weight"]
    t = {k.removeprefix(f"{module}."): v for k, v in tensors.items() if k.startswith(f"{module}.")}
    return codec.dequantize(t, *q.shape).to(torch.bfloat16)  # type: ignore[attr-defined]


def _theirs_fp8(params: dict[str, torch.Tensor], module: str) -> torch.Tensor:
    """A checkpoint module's weight in transformers' model: plain, or one expert's rows of the merged 3-D experts."""
    if f"{module}.weight" in params:
        return params[f"{module}.weight"]
    container, expert, proj = module.rsplit(".", 2)
    if proj == "down_proj":
        return params[f"{container}.down_proj"][int(expert)]
    merged = params[f"{container}.gate_up_proj"][int(expert)]
    half = merged.shape[0] // 2
    return merged[:half] if proj == "gate_proj" else merged[half:]


@pytest.mark.parametrize("name", ["fp8-block", "fp8-qwen3-moe-block"])
def test_fp8_dequant_bit_exact_against_transformers(name: str) -> None:
    """transformers 5.23 dequantizes FP8 on CPU when it loads: its weights are ours, every element."""
    codec, tensors = _codec_and_tensors(name)
    params = dict(_transformers_load(name).named_parameters())
    modules = _fp8_modules(tensors)
    assert len(modules) >= 14
    for module in modules:
        assert torch.equal(_ours_fp8(codec, tensors, module), _theirs_fp8(params, module)), module


def test_fp8_ragged_dequant_is_the_documented_formula_transformers_refuses_it() -> None:
    """Partial edge blocks: ``W[n, k] = float(q[n, k]) · S[n // 128, k // 128]`` with the grid cropped (DeepSeek's
    ``weight_dequant``, vLLM's ``ceil(N/128) × ceil(K/128)`` scale grid), written here from that definition."""
    with pytest.raises((ValueError, RuntimeError)):
        _transformers_load("fp8-block-ragged")
    codec, tensors = _codec_and_tensors("fp8-block-ragged")
    for module in _fp8_modules(tensors):
        q, s = tensors[f"{module}.weight"].float(), tensors[f"{module}.weight_scale_inv"]
        n, k = q.shape
        assert tuple(s.shape) == (-(-n // 128), -(-k // 128))
        rows, cols = torch.arange(n) // 128, torch.arange(k) // 128
        want = (q * s[rows][:, cols]).to(torch.bfloat16)
        assert torch.equal(_ours_fp8(codec, tensors, module), want), module


def test_autofp8_dequant_is_the_documented_formula() -> None:
    """AutoFP8's dialect: ``float(q) · weight_scale`` per tensor; ``input_scale`` read as the static activation scale."""
    codec, tensors = _codec_and_tensors("fp8-autofp8-static")
    for module in _fp8_modules(tensors):
        want = (tensors[f"{module}.weight"].float() * tensors[f"{module}.weight_scale"]).to(torch.bfloat16)
        assert torch.equal(_ours_fp8(codec, tensors, module), want), module
        t = {"input_scale": tensors[f"{module}.input_scale"]}
        assert codec.static_input_scale(t) == float(tensors[f"{module}.input_scale"])  # type: ignore[attr-defined]


def test_mxfp4_dequant_bit_exact_against_transformers() -> None:
    """``Mxfp4Config(dequantize=True)``: transformers' ``[E, in, out]`` experts equal ours, transposed, per expert."""
    from transformers import Mxfp4Config

    codec, tensors = _codec_and_tensors("mxfp4-gpt-oss")
    params = dict(_transformers_load("mxfp4-gpt-oss", quantization_config=Mxfp4Config(dequantize=True))
                  .named_parameters())
    bases = sorted(n.removesuffix("_blocks") for n in tensors if n.endswith("_blocks"))
    assert len(bases) == 4
    for base in bases:
        blocks, scales = tensors[f"{base}_blocks"], tensors[f"{base}_scales"]
        experts, n, groups, _ = blocks.shape
        for e in range(experts):
            ours = codec.dequantize({"blocks": blocks[e], "scales": scales[e]}, n, groups * 32)  # type: ignore[attr-defined]
            assert torch.equal(ours.to(torch.bfloat16).T, params[base][e]), f"{base}[{e}]"


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_logits_match_the_reference(name: str) -> None:
    tol, dense_rel = FIXTURES[name]
    mode = reference_mode(checkpoint_dir(name))
    check_logits(logits(name), reference(name)["logits"], tol.for_mode(mode), dense_rel=dense_rel,
                 label=f"{name} ({mode})")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_greedy_generation(name: str) -> None:
    check_generation(loaded(name), reference(name), FIXTURES[name][0].for_mode(reference_mode(checkpoint_dir(name))))


@pytest.mark.parametrize(("name", "algo"), [("fp8-block", "fp8 FP8_BLOCK"), ("fp8-autofp8-static", "fp8 FP8"),
                                            ("fp8-qwen3-moe-block", "fp8 FP8_BLOCK"),
                                            ("mxfp4-gpt-oss", "mxfp4 MXFP4A16")])
def test_run_generates_without_a_profile(name: str, algo: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``quantresolve run``, no ``--profile``: the reference's greedy tokens (Llama, Qwen3-MoE, gpt-oss)."""
    ref = reference(name)
    prompt = ref["input_ids"][0].tolist()
    new = ref["greedy_ids"].shape[1] - len(prompt)
    rc = main(["run", str(checkpoint_dir(name)), "--prompt-ids", ",".join(map(str, prompt)),
               "--max-new-tokens", str(new), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    report = json.loads(out)
    assert report["generated_ids"] == ref["greedy_ids"][0, len(prompt):].tolist()
    assert f"{report['producer']} {report['quant_algo']}" == algo
    assert report["profile"].startswith("transformers:")
    assert sum(n for label, n in report["counts"].items() if label.startswith(f"{algo.split()[1]} /")) >= 14
