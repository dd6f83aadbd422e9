"""Every real-producer Llama fixture: load_quantized's logits and greedy tokens against the producer's own.

Each reference is the producer's own quantized model running exactly the checkpoint's weights
(``fixtures/README.md``): compressed-tensors' fake-quant model before compression, ModelOpt's fake-quant
model handed the exported codes back (``fixtures/modelopt_reload.py``), compressed-tensors' own model of
the converted ``ct-from-modelopt-nvfp4`` (``fixtures/ct_reload.py``), transformers' reload for
bitsandbytes. All are built like ``from_pretrained`` (float32 RoPE ``inv_freq``).

Tolerances are per fixture, measured on the 2-core CPU box with the auto backends (bf16 compute) and
set at ~1.5x the measured max |Δlogit| (logits reach |0.72|; one bf16 step there is 0.004), and at one
bf16 step where the load is bit-exact. Activations are quantized with each producer's own arithmetic
(:mod:`quantresolve.dispatch.activations`). What is left, measured:

* **bit-exact** (0.0), 16 fixtures: compressed-tensors FP8, FP8_DYNAMIC, FP8_BLOCK, NVFP4, NVFP4A16,
  MXFP4A16 and the converted ``ct-from-modelopt-nvfp4``; ModelOpt FP8, FP8_PER_CHANNEL_PER_TOKEN, NVFP4,
  W4A16_NVFP4 (also with its FP8 KV cache), MXFP4, MIXED and W4A8_AWQ; bitsandbytes NF4. ModelOpt's
  FP8 quantizer — weights, activations, KV cache — dequantizes by ``1 / (448 / amax)``, not by the
  exported ``amax / 448``; multiplying by the exported scale instead left FP8_PER_CHANNEL_PER_TOKEN
  0.0195 away (0.17 % of its weights one bf16 step off) and the FP8 KV cache 0.0044.
* **CPU integer kernels** (W4A16, W8A16, W8A8, INT4_AWQ, INT8_SQ, ``ct-mixed``'s W4A16 half, LLM.int8):
  dequantization is bit-exact — with ``backend="dense_dequant"`` all of these but ``bnb-int8`` are 0.0 —
  and ``avx512_gemv_cpu``'s int4 path multiplies that bf16 weight itself: the int4 fixtures are 0.0 on
  it. The int8 kernels and ``int4pack_cpu`` (the int4 fallback without AVX-512 BF16, which also takes
  float32 scales in bf16) accumulate in another order: ≤ 0.019; the int4 tolerances keep room for it. ``bnb-int8`` is 0.0098 even dense: its reference runs bitsandbytes' LLM.int8 outlier split.

Each tolerance is below the distance between the reference and the unquantized model (``DENSE_REL``
below is asserted too, so an unquantized load fails). Greedy tokens are reproduced exactly for every
fixture.
"""

from __future__ import annotations

import pytest
import torch

from .loaded import LLAMA_FIXTURES, loaded, logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")

#: One bf16 step at the logits' magnitude: the tolerance of a bit-exact load.
BF16_STEP = 0.004

#: fixture → max |Δlogit| allowed against reference.safetensors (measured value in the comment).
ATOL: dict[str, float] = {
    "bnb-int8": 0.019,              # 0.0122 (LLM.int8 outlier split in the reference, int8pack here)
    "bnb-nf4": BF16_STEP,           # 0.0
    "ct-fp8": BF16_STEP,            # 0.0
    "ct-fp8-block": BF16_STEP,      # 0.0
    "ct-fp8-dynamic": BF16_STEP,    # 0.0
    "ct-from-modelopt-nvfp4": BF16_STEP,  # 0.0 (0.0930 against ModelOpt's model, its old reference)
    "ct-mixed": 0.029,              # 0.0 (avx512_gemv_cpu; 0.0189 int4pack, 0.0 with dense_dequant)
    "ct-mxfp4a16": BF16_STEP,       # 0.0
    "ct-nvfp4": BF16_STEP,          # 0.0
    "ct-nvfp4a16": BF16_STEP,       # 0.0
    "ct-w4a16": 0.009,              # 0.0 (avx512_gemv_cpu; 0.0059 int4pack, without AVX-512 BF16)
    "ct-w4a16-asym": 0.009,         # 0.0 (avx512_gemv_cpu; 0.0059 int4pack)
    "ct-w8a16": 0.012,              # 0.0078
    "ct-w8a8": 0.015,               # 0.0098
    "modelopt-fp8": BF16_STEP,      # 0.0 (0.0430 against the fake-quant weights before export)
    "modelopt-fp8-pc-pt": BF16_STEP,  # 0.0 (0.0195 with codes · weight_scale instead of ModelOpt's multiplier)
    "modelopt-int4-awq": 0.008,     # 0.0 (avx512_gemv_cpu; 0.0049 int4pack)
    "modelopt-int8-sq": 0.017,      # 0.0112
    "modelopt-mixed": BF16_STEP,    # 0.0 (0.0449 against the fake-quant weights before export)
    "modelopt-mxfp4": BF16_STEP,    # 0.0
    "modelopt-nvfp4": BF16_STEP,    # 0.0
    "modelopt-w4a16-nvfp4": BF16_STEP,  # 0.0
    "modelopt-w4a16-nvfp4-fp8kv": BF16_STEP,  # 0.0 (0.0044 with e4m3(kv / scale) · scale)
    "modelopt-w4a8-awq": BF16_STEP,  # 0.0 (0.0273 against the fake-quant weights before export)
}

#: Relative L2 distance of the *unquantized* base model's logits from each reference (measured);
#: ours must be clearly closer, so a load that silently skipped quantization would fail.
DENSE_REL: dict[str, float] = {
    "bnb-int8": 0.0155, "bnb-nf4": 0.1480, "ct-fp8": 0.0733, "ct-fp8-block": 0.0642,
    "ct-fp8-dynamic": 0.0612, "ct-from-modelopt-nvfp4": 0.2041, "ct-mixed": 0.0775, "ct-mxfp4a16": 0.2155,
    "ct-nvfp4": 0.1996, "ct-nvfp4a16": 0.1467, "ct-w4a16": 0.2223, "ct-w4a16-asym": 0.1713,
    "ct-w8a16": 0.0157, "ct-w8a8": 0.0218, "modelopt-fp8": 0.0665, "modelopt-fp8-pc-pt": 0.0685,
    "modelopt-int4-awq": 0.2229, "modelopt-int8-sq": 0.0531, "modelopt-mixed": 0.0732,
    "modelopt-mxfp4": 0.2840, "modelopt-nvfp4": 0.2025, "modelopt-w4a16-nvfp4": 0.1462,
    "modelopt-w4a16-nvfp4-fp8kv": 0.1484,
    "modelopt-w4a8-awq": 0.2401,
}


def test_every_fixture_has_a_tolerance() -> None:
    assert set(ATOL) == set(LLAMA_FIXTURES) == set(DENSE_REL)


@pytest.mark.parametrize("name", LLAMA_FIXTURES)
def test_logits_match_the_producer(name: str) -> None:
    ours, ref = logits(name), reference(name)["logits"]
    assert ours.shape == ref.shape
    diff = float((ours - ref).abs().max())
    assert diff <= ATOL[name], f"{name}: max |Δlogit| {diff:.4f} > {ATOL[name]}"
    rel = float((ours - ref).norm() / ref.norm())
    assert rel < 0.9 * DENSE_REL[name], f"{name}: relative error {rel:.4f} not below the dense model's"


@pytest.mark.parametrize("name", LLAMA_FIXTURES)
def test_greedy_generation(name: str) -> None:
    model, ref = loaded(name), reference(name)
    prompt, expected = ref["input_ids"], ref["greedy_ids"]
    new = expected.shape[1] - prompt.shape[1]
    with torch.no_grad():
        generated = model.generate(prompt, max_new_tokens=new, do_sample=False,
                                   pad_token_id=model.config.eos_token_id)
    assert generated.tolist() == expected.tolist()

