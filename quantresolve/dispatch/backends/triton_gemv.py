"""``triton_gemv_cuda``: our Triton GEMV streaming the packed 4/8-bit weight (integer, NVFP4, MXFP4).

For decoding-sized batches on CUDA: at ``finalize()`` the weight is repacked once into the
striped int32 layout of :mod:`~quantresolve.dispatch.kernels.gemv_layout` (codes, scales kept
narrow: E4M3/E8M0 as bytes), and every call streams it once — ≈ 0.53 bytes per weight (int4 group
128, NVFP4) instead of the 2 bytes of a dequantized bf16 copy — through the CUDA-core GEMV
(:mod:`~quantresolve.dispatch.kernels.triton_gemv`, one row of x) or the tensor-core kernel
(:mod:`~quantresolve.dispatch.kernels.triton_dot`, 2 … 64 rows), as
:func:`~quantresolve.dispatch.kernels.gemv_configs.choose_config` says. The registry offers it for
``batch`` hints ≤ 8; a layer built without a hint that meets a long prefill (> 64 rows)
dequantizes 4096 rows at a time with the same decode and uses the dense matmul.

Schemes: integer weights with an integer view (compressed-tensors pack-/int-quantized W4A16,
W4A16 asymmetric, W8A16, ModelOpt INT4 AWQ and W8A16) of ≤ 8 bits, channel-wise or with groups
that are a multiple of a packed chunk (32 elements for ≤ 4-bit codes, 16 for 8-bit) or divide it;
NVFP4 and MXFP4 weights. Pre-quant scales and activation quantization (W4A8, NVFP4 W4A4, W8A8)
are applied by emulation before the weight-only GEMV, as on every weight-only backend. Any N
and K (padded at repack). Triton is imported in ``prepare()`` only; without it, or without CUDA,
``supports()`` says so.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> format_guard(modelopt_scheme("W4A16_AWQ", group_size=128), Shapes(64, 256)) is None
    True
    >>> format_guard(modelopt_scheme("W4A16_AWQ", group_size=48), Shapes(64, 256)).reason
    'needs a group size that is a multiple of 32 or 16 (packed chunks of 32 elements), got 48'
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask, Backend
from quantresolve.dispatch.backends.inputs import int_kernel_input, row_major
from quantresolve.dispatch.backends.int_weights import (
    group_int_view,
    rebuild_from_codes,
    scales_only,
)
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.chunked import CHUNK_ELEMENTS
from quantresolve.dispatch.codecs.registry import codec_overrides
from quantresolve.dispatch.kernels.gemv_configs import PACKED_MAX_M, GemvConfig, choose_config
from quantresolve.dispatch.kernels.gemv_formats import FORMATS, int_format
from quantresolve.dispatch.kernels.gemv_layout import (
    DEFAULT_STRIPE,
    GemvWeights,
    exact_float,
    pack_codes,
    pad_matrix,
    padded_rows,
    padded_words,
    unpack_codes,
    values_per_word,
)
from quantresolve.dispatch.numerics import unpack_nibbles
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Shapes, Verdict
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import QuantScheme

__all__ = ["format_guard", "triton_installed"]

#: Compute capability the kernels need (bf16 loads, the float16 → float32 widening they use).
MIN_CAPABILITY = (8, 0)
#: FP4 schemes whose E2M1 block scale is E4M3 (NVFP4) or E8M0 (MXFP4), by the scale's group.
FP4_GROUPS = {"nvfp4": 16, "mxfp4": 32}


def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def _chunk(bits: int) -> int:
    """Elements in one packed chunk (``DEFAULT_STRIPE`` words) of ``bits``-bit codes."""
    return DEFAULT_STRIPE * values_per_word(FORMATS[int_format(bits)].bits)


def group_fits(group: int, chunk: int) -> bool:
    """A chunk lies in one scale group, or its halves do (NVFP4's 16 in chunks of 32; both kernels
    read at most two scales per chunk)."""
    return group % chunk == 0 or 2 * group == chunk


def format_guard(scheme: QuantScheme | None, shapes: Shapes) -> Verdict | None:
    """``None`` when the kernel decodes the scheme's weights, else the reason."""
    w = scheme.weights if scheme is not None else None
    if scheme is None or w is None:
        return Verdict.no("handles quantized weights only (layer is dense)")
    if codec_overrides(scheme, "fp4_weights"):
        return None  # NVFP4 (group 16) and MXFP4 (group 32): chunks of 32 split into whole groups
    if w.type != "int" or not needs.has_int_view(scheme):
        return Verdict.no(f"handles integer, NVFP4 and MXFP4 weights only ({scheme.algo} is {w.type})")
    if w.strategy not in ("group", "channel"):
        return Verdict.no(f"needs group or channel weight scales, got {w.strategy}")
    if not 1 <= w.num_bits <= 8:
        return Verdict.no(f"needs 1..8-bit integer weights, got {w.num_bits}")
    chunk = _chunk(w.num_bits)
    if w.strategy == "group" and (w.group_size or 0) < shapes.k and not group_fits(int(w.group_size or 0), chunk):
        return Verdict.no(f"needs a group size that is a multiple of {chunk} or {chunk // 2} "
                          f"(packed chunks of {chunk} elements), got {w.group_size}")
    return None


def _installed(ask: Ask) -> Verdict | None:
    if triton_installed():  # looked up at call time: tests switch it
        return None
    return Verdict.no("unavailable: Triton is not installed (pip install 'quantresolve[cuda]')")


def _decodes(ask: Ask) -> Verdict | None:
    return format_guard(ask.scheme, ask.shapes)


# -- repacking ------------------------------------------------------------------------------------

def _rows_per_chunk(k: int) -> int:
    """Rows whose one-byte codes fill :data:`~quantresolve.dispatch.chunked.CHUNK_ELEMENTS` (the
    unpacked codes and their int16 step stay one chunk's size, not the whole weight's)."""
    return max(1, CHUNK_ELEMENTS // max(1, k))


def _int_weights(group: ShardGroup) -> tuple[GemvWeights, Any]:
    view = group_int_view(group)
    fmt = FORMATS[int_format(view.bits)]
    n, k = group.n, group.k
    rows = padded_rows(n)
    words: torch.Tensor | None = None
    for row0 in range(0, n, _rows_per_chunk(k)):  # unsigned codes a row chunk at a time
        codes = (view.q[row0:row0 + _rows_per_chunk(k)].to(torch.int16) + fmt.offset).to(torch.uint8)
        words = pack_codes(codes, bits=fmt.bits, stripe=DEFAULT_STRIPE, fill=fmt.fill, rows=rows, out=words,
                           row0=row0)
    assert words is not None
    kernel_group = view.group if view.group < k else 0  # one scale column: channel-wise
    cols = -(-padded_words(k, fmt.bits) * values_per_word(fmt.bits) // kernel_group) if kernel_group else 1
    if kernel_group and not group_fits(kernel_group, DEFAULT_STRIPE * values_per_word(fmt.bits)):
        raise DispatchError(f"{group.codec.scheme.algo}: group {kernel_group} does not fit the packed chunks",
                            field="backend")
    scale = pad_matrix(exact_float(view.scale), rows, cols)
    zero = pad_matrix(view.zero.to(torch.float16), rows, cols) if view.zero is not None else None
    packed = GemvWeights(int_format(view.bits), n, k, words, scale, kernel_group, DEFAULT_STRIPE, zero=zero)
    return packed, scales_only(view)


def _fp4_weights(group: ShardGroup) -> tuple[GemvWeights, Any]:
    n, k = group.n, group.k
    rows = padded_rows(n)
    words: torch.Tensor | None = None
    scales, row_scales, originals = [], [], []
    kind, group_size, row = "", 0, 0
    for shard in group.shards:
        fp4 = group.codec.fp4_weights(shard.tensors, shard.n, k)
        if fp4 is None:
            raise DispatchError(f"{group.codec.scheme.algo}: no FP4 view of the weight", field="backend")
        kind, group_size = fp4.kind, fp4.group
        for r0 in range(0, shard.n, _rows_per_chunk(k)):  # E2M1 codes a row chunk at a time
            codes = unpack_nibbles(fp4.packed[r0:r0 + _rows_per_chunk(k)], low_first=True)[:, :k]
            words = pack_codes(codes, bits=4, stripe=DEFAULT_STRIPE, fill=FORMATS[kind].fill, rows=rows,
                               out=words, row0=row + r0)
        scales.append(fp4.scale.view(torch.uint8) if fp4.scale.dtype != torch.uint8 else fp4.scale)
        ts = fp4.tensor_scale if fp4.tensor_scale is not None else torch.ones(())
        row_scales.append(ts.float().reshape(1).expand(shard.n))
        # the packed codes' name in the shard, so a rebuild can put them back (see _fp4_rebuild)
        key = next((name for name, t in shard.tensors.items() if t is fp4.packed), None)
        originals.append((key, {name: t for name, t in shard.tensors.items() if name != key}))
        row += shard.n
    assert words is not None
    if not group_fits(group_size, DEFAULT_STRIPE * 8):
        raise DispatchError(f"{group.codec.scheme.algo}: FP4 group {group_size} does not fit the packed chunks",
                            field="backend")
    cols = -(-padded_words(k, 4) * 8 // group_size)
    scale = pad_matrix(torch.cat(scales), rows, cols)
    row_scale = None
    if kind == "nvfp4":
        row_scale = pad_matrix(torch.cat(row_scales).to(words.device)[:, None], rows, 1).reshape(-1)
    return GemvWeights(kind, n, k, words, scale, group_size, DEFAULT_STRIPE, row_scale=row_scale), originals


def kernel_launcher(cfg: GemvConfig) -> Callable[..., torch.Tensor]:
    """The launch function of ``cfg.kernel``: ``fma`` the CUDA-core GEMV, ``dot`` the tensor-core
    kernel (both take ``(x, packed, cfg, out_dtype)``; imported here, they import Triton)."""
    from quantresolve.dispatch.kernels import triton_dot, triton_gemv

    launchers = {"fma": triton_gemv.gemv, "dot": triton_dot.gemm_small}
    return launchers[cfg.kernel]


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of ``device`` (an H100's 132 for the CPU interpreter)."""
    if device.type != "cuda":
        return 132
    return _sm_count(device.index if device.index is not None else torch.cuda.current_device())


@register_backend
class TritonGemv(Backend):
    """Weight-only GEMV on the repacked 4/8-bit weight (see the module docstring)."""

    name = "triton_gemv_cuda"
    description = "Triton GEMV on the packed weight (int4/int8, NVFP4, MXFP4; batch ≤ 8)"

    guards = (needs.cuda, _installed, needs.capability(MIN_CAPABILITY), _decodes,
              needs.small_batch("the Triton GEMV"))

    def prepare(self, group: ShardGroup) -> Any:
        if codec_overrides(group.codec.scheme, "fp4_weights"):
            return _fp4_weights(group)
        return _int_weights(group)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        from quantresolve.dispatch.kernels import triton_gemv  # lazy: imports Triton

        packed: GemvWeights = state[0]
        xin = row_major(int_kernel_input(x, group))
        m = xin.shape[0]
        if m == 0:
            return torch.empty(0, packed.n, dtype=group.dtype, device=xin.device)
        if xin.is_cuda and xin.device.index not in (None, torch.cuda.current_device()):
            with torch.cuda.device(xin.device):  # Triton launches on the current device
                return self.apply(state, x, group)
        if m <= PACKED_MAX_M:
            cfg = choose_config(packed.fmt, packed.n, packed.k, m, sm_count(xin.device),
                                kw=packed.words.shape[1])
            return kernel_launcher(cfg)(xin, packed, cfg, group.dtype)
        out = torch.empty(m, packed.n, dtype=group.dtype, device=xin.device)
        xd = xin.to(group.dtype)
        for row0 in range(0, packed.n, triton_gemv.DEQUANT_ROWS):
            rows = min(triton_gemv.DEQUANT_ROWS, packed.n - row0)
            out[:, row0:row0 + rows] = xd @ triton_gemv.dequantize_rows(packed, row0, rows, group.dtype).t()
        return out

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        packed, kept = state
        if packed.fmt in FP4_GROUPS:
            return _fp4_rebuild(packed, kept, group)
        offset = FORMATS[packed.fmt].offset or 0
        bits = FORMATS[packed.fmt].bits
        return rebuild_from_codes(group, kept, lambda: (
            unpack_codes(packed.words, packed.n, packed.k, bits=bits, stripe=packed.stripe).to(torch.int16)
            - offset).to(torch.int8))


def _fp4_rebuild(packed: GemvWeights, originals: list[tuple[str | None, dict[str, torch.Tensor]]],
                 group: ShardGroup) -> Callable[[], torch.Tensor] | None:
    """The codec's own dequantization of each shard, its packed bytes rebuilt from the words (so the
    result is ``group.dense()`` bit for bit) — ``None`` when a shard's packed tensor was not found."""
    if any(key is None for key, _ in originals):
        return None
    shards = [(s.n, key, rest) for s, (key, rest) in zip(group.shards, originals, strict=True)]

    def dense() -> torch.Tensor:
        codes = unpack_codes(packed.words, packed.n, packed.k, bits=4, stripe=packed.stripe)
        if codes.shape[1] % 2:
            codes = torch.cat([codes, torch.zeros_like(codes[:, :1])], dim=1)
        packed_bytes = codes[:, 0::2] | (codes[:, 1::2] << 4)  # low nibble = even element
        parts, row = [], 0
        for n, key, rest in shards:
            parts.append(group.codec.dequantize({**rest, key: packed_bytes[row:row + n]}, n, group.k))
            row += n
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    return dense
