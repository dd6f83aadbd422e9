"""Dequantization is bit-exact against the producers' own code, on tensors they make here.

compressed-tensors: every preset compressed and decompressed by its own
compressor classes; ModelOpt: NVFP4QTensor quantize/dequantize, the export's
int4/int8/FP8 packers; bitsandbytes: quantize_4bit / dequantize_4bit and the
int8 vector-wise quant/dequant ops.
"""

from __future__ import annotations

import math

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.presets import ct_preset_scheme
from quantresolve.formats.compressed_tensors import ct_scheme
from quantresolve.formats.scheme import bnb_scheme, modelopt_scheme

pytestmark = pytest.mark.filterwarnings("ignore")

CT_PRESETS = ["W4A16", "W4A16_ASYM", "W8A16", "W8A8", "W4A8", "FP8", "FP8_DYNAMIC", "FP8_BLOCK",
              "NVFP4A16", "NVFP4", "MXFP4A16", "MXFP4"]


def _weight(n: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, k, generator=g) * 0.05).to(torch.bfloat16)


def ct_compress(ct, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, str]:
    """compressed-tensors' own qparams + compressor → (checkpoint tensors, its decompressed weight, format)."""
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.compressors.format import infer_module_format
    from compressed_tensors.quantization.utils import calculate_qparams, generate_gparam

    a, (n, k) = ct.weights, w.shape
    gs = None
    if a.strategy in ("group", "tensor_group"):
        wg = w.reshape(n, k // a.group_size, a.group_size)
        mn, mx = wg.amin(-1), wg.amax(-1)
    elif a.strategy == "channel":
        mn, mx = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
    elif a.strategy == "tensor":
        mn, mx = w.amin().reshape(1), w.amax().reshape(1)
    else:  # block, padded to whole blocks
        bn, bk = a.block_structure
        pn, pk = math.ceil(n / bn) * bn, math.ceil(k / bk) * bk
        wp = torch.nn.functional.pad(w.float(), (0, pk - k, 0, pn - n)).to(w.dtype)
        wb = wp.reshape(pn // bn, bn, pk // bk, bk)
        mn, mx = wb.amin((1, 3)), wb.amax((1, 3))
    if a.strategy == "tensor_group":
        gs = generate_gparam(w.amin(), w.amax())
    scale, zp = calculate_qparams(mn, mx, a, global_scale=gs)
    sd = {"weight": w, "weight_scale": scale}
    if zp is not None:
        sd["weight_zero_point"] = zp
    if gs is not None:
        sd["weight_global_scale"] = gs
    fmt = infer_module_format(torch.nn.Linear, ct).value
    compressor = BaseCompressor.get_value_from_registry(fmt)
    packed = compressor.compress(sd, ct)
    return packed, compressor.decompress(packed, ct)["weight"], fmt


def _load_all(layer, tensors: dict[str, torch.Tensor], shard: str | None = None) -> None:
    wanted = {s for (sh, s) in layer.expected_tensors() if sh == shard}
    for name, t in tensors.items():
        if name in wanted:
            layer.load(name, t, shard=shard)


@pytest.mark.parametrize("preset", CT_PRESETS)
@pytest.mark.parametrize("shape", [(64, 256), (48, 384)])
def test_ct_presets_bit_exact(preset: str, shape: tuple[int, int]) -> None:
    from compressed_tensors.quantization import preset_name_to_scheme

    ct = preset_name_to_scheme(preset, ["Linear"])
    w = _weight(*shape)
    tensors, ref, fmt = ct_compress(ct, w)
    scheme = ct_scheme(ct, fmt=fmt, version="0.20.0")
    assert scheme == ct_preset_scheme(preset, version="0.20.0")
    if scheme.input_activations is not None and not scheme.input_activations.dynamic:
        tensors["input_scale"] = torch.tensor([0.01], dtype=torch.bfloat16)
    if preset == "NVFP4":
        tensors["input_global_scale"] = torch.tensor([448.0 * 6 / 4.0])
    layer = make_linear(scheme, shape[1], shape[0])
    _load_all(layer, tensors)
    layer.finalize()
    out = layer.dequantize()
    assert out.dtype == torch.bfloat16 and out.shape == (shape[0], shape[1])
    assert torch.equal(out, ref.to(torch.bfloat16)), preset


@pytest.mark.parametrize("bits", [2, 3, 5, 6, 7])
def test_ct_post_017_dense_packing_bit_exact(bits: int) -> None:
    """Odd bit widths use the 0.17+ dense bitstream (compressed-tensors' own pack/unpack)."""
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    ct = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=bits, type="int", strategy="group", group_size=32, symmetric=True))
    w = _weight(32, 96, seed=bits)
    tensors, ref, fmt = ct_compress(ct, w)
    layer = make_linear(ct_scheme(ct, fmt=fmt, version="0.17.0"), 96, 32)
    _load_all(layer, tensors)
    layer.finalize()
    assert torch.equal(layer.dequantize(), ref.to(torch.bfloat16))


def _legacy_pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """compressed-tensors < 0.17 layout, written out here (that writer is no longer installable):
    ``32 // bits`` unsigned values per int32 word, value j at bit ``j * bits``."""
    per = 32 // bits
    rows, cols = codes.shape
    words = math.ceil(cols / per)
    padded = torch.nn.functional.pad(codes.to(torch.int64), (0, words * per - cols)).reshape(rows, words, per)
    shifts = torch.arange(per, dtype=torch.int64) * bits
    packed = (padded << shifts).sum(-1)
    return (packed - ((packed >= 2**31).long() << 32)).to(torch.int32)


@pytest.mark.parametrize("bits", [3, 5, 6])
def test_ct_pre_017_legacy_packing(bits: int) -> None:
    from quantresolve.formats.scheme import QuantArgs, QuantScheme

    n, k, g = 16, 64, 32
    gen = torch.Generator().manual_seed(bits)
    q = torch.randint(-(1 << (bits - 1)), 1 << (bits - 1), (n, k), generator=gen)
    scale = (torch.rand(n, k // g, generator=gen) * 0.01 + 0.001).to(torch.bfloat16)
    args = QuantArgs(num_bits=bits, type="int", strategy="group", group_size=g)
    old = QuantScheme(algo=f"W{bits}A16", producer="compressed-tensors", format="pack-quantized",
                      weights=args, options={"version": "0.16.1"})
    layer = make_linear(old, k, n)
    layer.load("weight_packed", _legacy_pack(q + (1 << (bits - 1)), bits))
    layer.load("weight_scale", scale)
    layer.load("weight_shape", torch.tensor([n, k]))
    layer.finalize()
    expect = q.to(torch.bfloat16) * scale.repeat_interleave(g, 1)
    assert torch.equal(layer.dequantize(), expect)
    new = make_linear(old.model_copy(update={"options": {"version": "0.17.0"}}), k, n)
    assert new.expected_tensors()[(None, "weight_packed")][0] != layer.expected_tensors()[(None, "weight_packed")][0]


@pytest.mark.parametrize("label", ["NVFP4", "W4A16_NVFP4"])
@pytest.mark.parametrize("shape", [(32, 64), (48, 160)])
def test_modelopt_nvfp4_bit_exact(label: str, shape: tuple[int, int]) -> None:
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor

    n, k = shape
    w = _weight(n, k, seed=3).float()
    qt, scale, scale_2 = NVFP4QTensor.quantize(w, 16)
    ref = qt.dequantize(dtype=torch.bfloat16, scale=scale, double_scale=scale_2, block_sizes={-1: 16})
    layer = make_linear(modelopt_scheme(label), k, n)
    layer.load("weight", qt._quantized_data)
    layer.load("weight_scale", scale)
    layer.load("weight_scale_2", scale_2)
    if label == "NVFP4":
        layer.load("input_scale", torch.tensor(0.01))
    layer.finalize()
    assert torch.equal(layer.dequantize(), ref)


def _awq_layer(label: str, w: torch.Tensor, g: int, extra: dict[str, torch.Tensor]):
    """A ModelOpt INT4 AWQ layer packed by the export's own packer; returns (layer, q, scale)."""
    from modelopt.torch.export.quant_utils import pack_int4_in_uint8

    n, k = w.shape
    scale = (w.reshape(n, k // g, g).abs().amax(-1) / 7).to(torch.bfloat16)
    packed = pack_int4_in_uint8(w, scale.float(), g)
    q = (w / scale.float().repeat_interleave(g, 1)).round().clamp(-8, 7)
    layer = make_linear(modelopt_scheme(label, group_size=g), k, n)
    layer.load("weight", packed)
    layer.load("weight_scale", scale)
    layer.load("pre_quant_scale", torch.rand(k).to(torch.bfloat16) + 0.5)
    for suffix, t in extra.items():
        layer.load(suffix, t)
    layer.finalize()
    return layer, q, scale


def test_modelopt_int4_awq_packing() -> None:
    """The export's own packer (two output rows per byte) round-trips to q · scale."""
    n, k, g = 64, 256, 128
    layer, q, scale = _awq_layer("W4A16_AWQ", _weight(n, k, seed=4).float(), g, {})
    assert torch.equal(layer.dequantize(), (q * scale.float().repeat_interleave(g, 1)).to(torch.bfloat16))
    x = torch.randn(3, k, dtype=torch.bfloat16)
    assert not torch.equal(layer.reference(x), (x.float() @ layer.dequantize().float().t()))  # pqs applied


@pytest.mark.parametrize("bf16_amax", [None, 0.07177734375], ids=["clipping-amax", "bf16-amax"])
def test_modelopt_w4a8_awq_is_int4_then_fp8(bf16_amax: float | None) -> None:
    """W4A8: ModelOpt's own FP8 weight quantizer (the second of its two) applied to the bf16 INT4
    product — with amax / 448 = weight_scale_2 — is the dense weight, element for element.

    ``bf16-amax``: an amax that is a bf16 value (as a calibrated one is), 147 · 2⁻¹¹, for which
    ``448 / amax`` is inexact: dividing by and multiplying with ``weight_scale_2`` instead of ModelOpt's
    ``· (448 / amax)`` and ``· 1 / (448 / amax)`` gave 965 of these 16,384 weights one bf16 step off."""
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    n, k, g = 64, 256, 128
    w = _weight(n, k, seed=4).float()
    if bf16_amax is not None:
        w = w / w.abs().max() * 0.0717  # the largest weight just below the amax
    scale = (w.reshape(n, k // g, g).abs().amax(-1) / 7).to(torch.bfloat16)
    q = (w / scale.float().repeat_interleave(g, 1)).round().clamp(-8, 7)
    w1 = (q * scale.float().repeat_interleave(g, 1)).to(torch.bfloat16)  # the first quantizer's output
    # clip, so that the FP8 step saturates some values too; or the bf16 amax
    amax2 = w1.abs().amax().float() * 0.8 if bf16_amax is None else torch.tensor(bf16_amax)
    fp8 = TensorQuantizer(QuantizerAttributeConfig(num_bits=(4, 3), axis=None))
    fp8.amax = amax2
    expect = fp8(w1)
    layer, _, _ = _awq_layer("W4A8_AWQ", w, g, {"weight_scale_2": amax2 / 448, "input_scale": torch.tensor(0.02)})
    got = layer.dequantize()
    assert torch.equal(got, expect)
    assert not torch.equal(got, w1)  # the FP8 step changed the weight (most elements, in fact)
    # not an integer weight: the int4 kernels decline it; its FP8 view runs on the packed FP8 kernel where it can
    assert layer.backend in ("float_gemv_cpu", "dense_dequant")


#: ModelOpt FP8 weight quantizer settings per label (its presets' ``*weight_quantizer``).
_MODELOPT_FP8_WEIGHTS = {"FP8": {"axis": None}, "FP8_PER_CHANNEL_PER_TOKEN": {"axis": 0},
                         "FP8_PB_WO": {"block_sizes": {-1: 128, -2: 128}}}


def _modelopt_fp8_weight_quantizer(label: str, w: torch.Tensor):
    """ModelOpt's FP8 weight quantizer for ``label``, max-calibrated on ``w`` as ``mtq.quantize`` does."""
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    quantizer = TensorQuantizer(QuantizerAttributeConfig(num_bits=(4, 3), **_MODELOPT_FP8_WEIGHTS[label]))
    quantizer.disable_quant()
    quantizer.enable_calib()
    quantizer(w)
    quantizer.load_calib_amax()
    quantizer.enable_quant()
    quantizer.disable_calib()
    return quantizer


@pytest.mark.parametrize("label", ["FP8", "FP8_PER_CHANNEL_PER_TOKEN", "W8A8_SQ_PER_CHANNEL", "W8A16", "FP8_PB_WO"])
def test_modelopt_export_quantizers(label: str) -> None:
    """The export's own packer writes the codes; the dense weight is what ModelOpt's model computes with.

    For FP8 that is its weight quantizer run on the decoded bf16 weight, as the fixtures' references
    run it (``fixtures/modelopt_reload.py``): codes times ``1 / (448 / amax)``, not times the exported
    ``amax / 448`` — with per-channel scales 194 of this weight's 65536 elements differ between the two."""
    from modelopt.torch.export.quant_utils import to_quantized_weight

    n, k = 256, 256
    w = _weight(n, k, seed=5).float()
    kind = {"FP8": "fp8", "FP8_PER_CHANNEL_PER_TOKEN": "fp8_pc_pt", "W8A8_SQ_PER_CHANNEL": "int8_sq",
            "W8A16": "int8_wo", "FP8_PB_WO": "fp8_pb_wo"}[label]
    if label == "FP8":
        scale = w.abs().amax() / 448
    elif label == "FP8_PB_WO":
        scale = w.reshape(2, 128, 2, 128).abs().amax((1, 3)) / 448
    else:
        scale = w.abs().amax(-1) / (448 if "FP8" in label else 127)
    try:
        q = to_quantized_weight(w, scale, kind, block_size=128)
    except Exception as err:  # pragma: no cover - producer API drift
        pytest.skip(f"modelopt packer unavailable for {kind}: {err}")
    layer = make_linear(modelopt_scheme(label), k, n)
    layer.load("weight", q)
    layer.load("weight_scale", scale)
    for suffix, _ in [(s, v) for (sh, s), v in layer.expected_tensors().items() if s == "input_scale"]:
        layer.load(suffix, torch.tensor(0.01))
    layer.finalize()
    if label == "FP8_PB_WO":
        plain = q.float() * scale.repeat_interleave(128, 0).repeat_interleave(128, 1)
    elif label == "FP8":
        plain = q.float() * scale
    else:
        plain = q.float() * scale.reshape(n, 1)
    plain = plain.to(torch.bfloat16)
    if label not in _MODELOPT_FP8_WEIGHTS:  # int8: ModelOpt's product is the plain one
        assert torch.equal(layer.dequantize(), plain)
        return
    quantizer = _modelopt_fp8_weight_quantizer(label, w.to(torch.bfloat16))
    assert torch.equal(quantizer.amax.float().reshape(scale.shape) / 448, scale)  # what the export divided
    expect = quantizer(plain)
    assert torch.equal(layer.dequantize(), expect)
    if label == "FP8_PER_CHANNEL_PER_TOKEN":
        assert int((expect != plain).sum()) > 0  # the data tells the two products apart


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("double_quant", [False, True])
@pytest.mark.parametrize("shape", [(64, 128), (40, 200)])
def test_bnb_4bit_bit_exact(quant_type: str, double_quant: bool, shape: tuple[int, int]) -> None:
    import bitsandbytes.functional as F

    n, k = shape
    w = _weight(n, k, seed=6)
    packed, qs = F.quantize_4bit(w, blocksize=64, compress_statistics=double_quant, quant_type=quant_type)
    qs.dtype = torch.float32  # bnb's own float32 dequantization (its bf16 kernel rounds from it)
    ref = F.dequantize_4bit(packed, qs)
    scheme = bnb_scheme(f"BNB_{quant_type.upper()}", double_quant=double_quant, quant_type=quant_type)
    layer = make_linear(scheme, k, n, dtype=torch.float32)
    layer.load("weight", packed)
    for name, t in qs.as_dict(packed=True).items():
        layer.load(f"weight.{name}", t)
    layer.finalize()
    assert torch.equal(layer.dequantize(), ref)


def test_bnb_int8_bit_exact() -> None:
    import bitsandbytes.functional as F

    w = _weight(48, 96, seed=7).half()
    cb, scb, _ = F.int8_vectorwise_quant(w)
    ref = F.int8_vectorwise_dequant(cb, scb)
    layer = make_linear(bnb_scheme("BNB_INT8"), 96, 48, dtype=torch.float32)
    layer.load("weight", cb)
    layer.load("SCB", scb)
    layer.finalize()
    assert torch.equal(layer.dequantize(), ref)
