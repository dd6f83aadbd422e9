"""Every real-producer Llama fixture: load_quantized's logits and greedy tokens against the producer's own.

Tolerances are per fixture, measured on the 2-core CPU box with the auto backends (bf16 compute) and
set at ~1.5x the measured max |Δlogit| (logits reach |0.72|; one bf16 step there is 0.004). Two groups:

* **weight-only and bitsandbytes** (W4A16, W8A16, NVFP4A16, MXFP4A16, W4A16_NVFP4, INT4_AWQ, NF4, INT8):
  dequantization is bit-exact, the only difference is float rounding — ≤ 0.014 measured (NF4: 0.0,
  the reference is transformers running the same bitsandbytes kernel).
* **activation-quantized** (FP8 static/dynamic/block, W8A8, INT8 SQ, NVFP4 W4A4, MXFP4 W4A4, W4A8):
  the producers' references round differently from their own exports, so the floor is the size of
  the quantization error itself. Measured causes (per layer, against the producer's fake-quant model):
  ModelOpt FP8 export divides the bf16 weight by its scale in bf16 (3–7 % of FP8 weight codes are
  one step away from the fake-quant weights the reference ran with); ModelOpt W4A8_AWQ's reference
  also rounds the int4-dequantized weight to FP8 with ``weight_scale_2``; ModelOpt MXFP4 activations
  use a different shared-exponent rule (≈ 9.5 % of activation elements differ); NVFP4 activations
  differ in ≈ 0.1 % of elements. Each of these tolerances is still below the distance between the
  reference and the unquantized model (``DENSE_REL`` below is asserted too, so an unquantized load fails).

Greedy tokens: exact for the fixtures in ``EXACT_GREEDY``. The others diverge at a near-tie (the tiny
random model's bf16 logits often tie exactly); for them every generated reference token must be within
``2·atol`` of our model's best logit at that position (teacher-forced), which a wrong model fails.
"""

from __future__ import annotations

import pytest
import torch

from .loaded import LLAMA_FIXTURES, loaded, logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")

#: fixture → max |Δlogit| allowed against reference.safetensors (measured value in the comment).
ATOL: dict[str, float] = {
    "bnb-int8": 0.02,               # 0.0122 (LLM.int8 outlier split in the reference, int8pack here)
    "bnb-nf4": 0.004,               # 0.0
    "ct-fp8": 0.055,                # 0.0361
    "ct-fp8-block": 0.075,          # 0.0503
    "ct-fp8-dynamic": 0.06,         # 0.0391
    "ct-from-modelopt-nvfp4": 0.15,  # 0.0996 (reference copied from modelopt-nvfp4)
    "ct-mixed": 0.055,              # 0.0376
    "ct-mxfp4a16": 0.008,           # 0.0039
    "ct-nvfp4": 0.1,                # 0.0684
    "ct-nvfp4a16": 0.008,           # 0.0054
    "ct-w4a16": 0.009,              # 0.0059
    "ct-w4a16-asym": 0.01,          # 0.0068
    "ct-w8a16": 0.009,              # 0.0059
    "ct-w8a8": 0.02,                # 0.0137
    "modelopt-fp8": 0.065,          # 0.0449
    "modelopt-fp8-pc-pt": 0.035,    # 0.0234
    "modelopt-int4-awq": 0.02,      # 0.0137
    "modelopt-int8-sq": 0.02,       # 0.0127
    "modelopt-mixed": 0.065,        # 0.0449
    "modelopt-mxfp4": 0.25,         # 0.1777
    "modelopt-nvfp4": 0.15,         # 0.0996
    "modelopt-w4a16-nvfp4": 0.008,  # 0.0039
    "modelopt-w4a16-nvfp4-fp8kv": 0.012,  # 0.0078 (0.0244 if the FP8 KV rounding were not applied)
    "modelopt-w4a8-awq": 0.09,      # 0.0586
}

#: Fixtures whose greedy continuation is reproduced token for token.
EXACT_GREEDY = frozenset({
    "bnb-int8", "bnb-nf4", "ct-fp8", "ct-fp8-block", "ct-fp8-dynamic", "ct-mxfp4a16", "ct-nvfp4a16",
    "ct-w4a16", "ct-w4a16-asym", "ct-w8a16", "ct-w8a8", "modelopt-fp8-pc-pt", "modelopt-int4-awq",
    "modelopt-int8-sq", "modelopt-w4a16-nvfp4", "modelopt-w4a16-nvfp4-fp8kv",
})

#: Relative L2 distance of the *unquantized* base model's logits from each reference (measured);
#: ours must be clearly closer, so a load that silently skipped quantization would fail.
DENSE_REL: dict[str, float] = {
    "bnb-int8": 0.0153, "bnb-nf4": 0.1476, "ct-fp8": 0.0738, "ct-fp8-block": 0.0650,
    "ct-fp8-dynamic": 0.0601, "ct-from-modelopt-nvfp4": 0.2020, "ct-mixed": 0.0769, "ct-mxfp4a16": 0.2159,
    "ct-nvfp4": 0.1997, "ct-nvfp4a16": 0.1465, "ct-w4a16": 0.2223, "ct-w4a16-asym": 0.1717,
    "ct-w8a16": 0.0155, "ct-w8a8": 0.0215, "modelopt-fp8": 0.0689, "modelopt-fp8-pc-pt": 0.0641,
    "modelopt-int4-awq": 0.2212, "modelopt-int8-sq": 0.0528, "modelopt-mixed": 0.0788,
    "modelopt-mxfp4": 0.2835, "modelopt-nvfp4": 0.2020, "modelopt-w4a16-nvfp4": 0.1457,
    "modelopt-w4a16-nvfp4-fp8kv": 0.1484,
    "modelopt-w4a8-awq": 0.2394,
}


def test_every_fixture_has_a_tolerance() -> None:
    assert set(ATOL) == set(LLAMA_FIXTURES) == set(DENSE_REL)
    assert set(LLAMA_FIXTURES) >= EXACT_GREEDY


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
    if name in EXACT_GREEDY:
        assert generated.tolist() == expected.tolist()
        return
    assert generated.shape == expected.shape
    with torch.no_grad():
        forced = model(expected).logits[0].float()
    for t in range(prompt.shape[1], expected.shape[1]):
        row = forced[t - 1]
        gap = float(row.max() - row[expected[0, t]])
        assert gap <= 2 * ATOL[name], f"{name}: reference token at {t} is {gap:.4f} below our best"
