"""The normalized description of how one layer is quantized.

A :class:`QuantScheme` is what the resolver answers and what the dispatcher
consumes. It is producer-neutral in shape (weight / activation arguments in
compressed-tensors' vocabulary) but keeps the producer and the tensor format,
because the same arithmetic is stored differently by each producer (ModelOpt
NVFP4 stores ``weight_scale_2``; compressed-tensors stores its reciprocal as
``weight_global_scale``).

    >>> s = modelopt_scheme("NVFP4", group_size=16)
    >>> (s.algo, s.producer, s.format, s.weights.num_bits, s.weights.group_size)
    ('NVFP4', 'modelopt', 'modelopt', 4, 16)
    >>> s.input_activations.dynamic
    'local'

This module is torch-free; compressed-tensors schemes are converted in
:mod:`quantresolve.formats.compressed_tensors`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantresolve.formats.algos import Producer

Strategy = Literal["tensor", "channel", "group", "block", "token", "tensor_group", "attn_head"]
ValueType = Literal["int", "float", "nf4", "bnb_fp4"]


class QuantArgs(BaseModel):
    """How one tensor (weights or activations) is quantized.

    Fields follow compressed-tensors' ``QuantizationArgs`` so the two compare
    directly; ``type`` adds ``nf4`` and ``bnb_fp4`` for bitsandbytes codes.
    ``scale_dtype`` is a dtype name without the ``torch.`` prefix
    (``float8_e4m3fn`` for NVFP4, ``uint8`` for E8M0 microscaling scales).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_bits: int
    type: ValueType
    strategy: Strategy
    group_size: int | None = None
    block_structure: tuple[int, int] | None = None
    symmetric: bool = True
    dynamic: bool | Literal["local"] = False
    scale_dtype: str | None = None
    actorder: str | None = None


class QuantScheme(BaseModel):
    """A resolved quantization scheme.

    - ``algo``: the canonical label (:mod:`quantresolve.formats.algos`), e.g.
      ``NVFP4``, ``W4A16_AWQ``, ``W4A16``, ``FP8_DYNAMIC``, ``BNB_NF4``.
    - ``producer``: whose tensor layout the checkpoint uses.
    - ``format``: the tensor format. compressed-tensors: the per-group
      ``CompressionFormat`` value (``pack-quantized``, ``float-quantized``,
      ``nvfp4-pack-quantized``, ...); ModelOpt: ``modelopt``; bitsandbytes:
      ``bitsandbytes``.
    - ``weights`` / ``input_activations`` / ``output_activations``: arguments,
      ``None`` when that tensor is not quantized.
    - ``options``: producer-specific facts the arithmetic needs
      (``pre_quant_scale``, ``has_zero_point`` for ModelOpt AWQ; ``quant_type``,
      ``double_quant``, ``compute_dtype``, ``blocksize``, ``threshold`` for
      bitsandbytes; ``version`` for compressed-tensors packing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    algo: str
    producer: Producer
    format: str
    weights: QuantArgs | None = None
    input_activations: QuantArgs | None = None
    output_activations: QuantArgs | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def __hash__(self) -> int:  # frozen models with dict fields are not hashable by default
        return hash((self.algo, self.producer, self.format, self.weights, self.input_activations,
                     self.output_activations, tuple(sorted((k, repr(v)) for k, v in self.options.items()))))

    @property
    def weight_only(self) -> bool:
        """True when activations stay in the compute dtype."""
        return self.input_activations is None

    def summary(self) -> str:
        """Short human text, e.g. ``NVFP4 (modelopt, w4 tensor_group/16, a4 dynamic)``; block scales show
        their block (``w8 block/128x128``)."""
        parts = [self.producer if self.format in (self.producer, "modelopt") else f"{self.producer}:{self.format}"]
        if self.weights is not None:
            w = self.weights
            blocks = f"/{w.block_structure[0]}x{w.block_structure[1]}" if w.block_structure else ""
            g = f"/{w.group_size}" if w.group_size else blocks
            parts.append(f"w{w.num_bits} {w.strategy}{g}")
        if self.input_activations is not None:
            a = self.input_activations
            parts.append(f"a{a.num_bits} {'dynamic' if a.dynamic else 'static'}")
        return f"{self.algo} ({', '.join(parts)})"


# --- ModelOpt ------------------------------------------------------------------------------

def _fp8(strategy: Strategy, dynamic: bool | Literal["local"] = False, **kw: Any) -> QuantArgs:
    return QuantArgs(num_bits=8, type="float", strategy=strategy, dynamic=dynamic, **kw)


def _int(bits: int, strategy: Strategy, **kw: Any) -> QuantArgs:
    return QuantArgs(num_bits=bits, type="int", strategy=strategy, **kw)


def _nvfp4(dynamic: bool | Literal["local"] = False, group: int = 16) -> QuantArgs:
    return QuantArgs(num_bits=4, type="float", strategy="tensor_group", group_size=group,
                     dynamic=dynamic, scale_dtype="float8_e4m3fn")


def _mx(bits: int, dynamic: bool = False, group: int = 32) -> QuantArgs:
    return QuantArgs(num_bits=bits, type="float", strategy="group", group_size=group, dynamic=dynamic,
                     scale_dtype="uint8")


def _modelopt_args(label: str, group_size: int | None) -> tuple[QuantArgs, QuantArgs | None, dict[str, Any]]:
    """Weight args, activation args and options for each canonical ModelOpt label."""
    g = group_size
    table: dict[str, tuple[QuantArgs, QuantArgs | None, dict[str, Any]]] = {
        "FP8": (_fp8("tensor"), _fp8("tensor"), {}),
        "FP8_PER_CHANNEL_PER_TOKEN": (_fp8("channel"), _fp8("token", dynamic=True), {}),
        "FP8_PB_WO": (_fp8("block", block_structure=(128, 128)), None, {}),
        "FP8_PB_REAL": (_fp8("block", block_structure=(128, 128)),
                        _fp8("group", dynamic=True, group_size=128), {}),
        "W4A16_AWQ": (_int(4, "group", group_size=g or 128), None, {"pre_quant_scale": True}),
        "W4A8_AWQ": (_int(4, "group", group_size=g or 128), _fp8("tensor"), {"pre_quant_scale": True}),
        "W8A16": (_int(8, "channel"), None, {}),
        "W8A8_SQ_PER_CHANNEL": (_int(8, "channel"), _int(8, "tensor"), {}),
        "NVFP4": (_nvfp4(group=g or 16), _nvfp4("local", g or 16), {}),
        "W4A16_NVFP4": (_nvfp4(group=g or 16), None, {}),
        "NVFP4_AWQ": (_nvfp4(group=g or 16), _nvfp4("local", g or 16), {"pre_quant_scale": True}),
        "NVFP4_SVD": (_nvfp4(group=g or 16), _nvfp4("local", g or 16), {"pre_quant_scale": True}),
        "W4A8_NVFP4_FP8": (_nvfp4(group=g or 16), _fp8("tensor"), {}),
        "MXFP4": (_mx(4, group=g or 32), _mx(4, dynamic=True, group=g or 32), {}),
        "MXFP8": (_mx(8, group=g or 32), _mx(8, dynamic=True, group=g or 32), {}),
        "W4A8_MXFP4_FP8": (_mx(4, group=g or 32), _fp8("tensor"), {}),
    }
    return table[label]


@lru_cache(maxsize=256)
def modelopt_scheme(label: str, *, group_size: int | None = None, has_zero_point: bool | None = None,
                    pre_quant_scale: bool | None = None) -> QuantScheme:
    """The :class:`QuantScheme` of a canonical ModelOpt label.

    ``group_size`` overrides the label's default group (ModelOpt writes it per
    layer); ``has_zero_point`` / ``pre_quant_scale`` are recorded as options
    when the config states them.

        >>> modelopt_scheme("W4A16_AWQ", group_size=64).weights.group_size
        64
    """
    weights, acts, options = _modelopt_args(label, group_size)
    options = dict(options)
    if has_zero_point is not None:
        options["has_zero_point"] = has_zero_point
    if pre_quant_scale is not None:
        options["pre_quant_scale"] = pre_quant_scale
    return QuantScheme(algo=label, producer="modelopt", format="modelopt", weights=weights,
                       input_activations=acts, options=options)


@lru_cache(maxsize=16)
def modelopt_kv_scheme(label: str) -> QuantScheme:
    """The KV-cache scheme of a canonical ModelOpt KV label (``FP8``, ``INT8``, ``NVFP4``, ...)."""
    args = {
        "FP8": _fp8("tensor"),
        "INT8": _int(8, "tensor"),
        "NVFP4": _nvfp4(),
        "NVFP4_AFFINE": _nvfp4().model_copy(update={"symmetric": False}),
    }[label]
    return QuantScheme(algo=label, producer="modelopt", format="modelopt", output_activations=args)


# --- bitsandbytes --------------------------------------------------------------------------

#: bitsandbytes' default ``llm_int8_threshold``: input columns with any ``|x| ≥`` it run in 16 bits.
BNB_INT8_DEFAULT_THRESHOLD = 6.0


def bnb_scheme(label: str, **options: Any) -> QuantScheme:
    """The scheme of a bitsandbytes label; ``options`` carries the config's flags.

    ``BNB_INT8`` always carries ``threshold`` (the config's ``llm_int8_threshold``,
    bitsandbytes' default 6.0 when not given) because the LLM.int8 outlier
    decomposition at run time depends on it.

        >>> bnb_scheme("BNB_NF4", double_quant=True).weights.type
        'nf4'
        >>> bnb_scheme("BNB_INT8").options
        {'threshold': 6.0}
    """
    if label == "BNB_INT8":
        weights = _int(8, "channel")
        options.setdefault("threshold", BNB_INT8_DEFAULT_THRESHOLD)
    else:
        blocksize = int(options.get("blocksize", 64))
        weights = QuantArgs(num_bits=4, type="nf4" if label == "BNB_NF4" else "bnb_fp4",
                            strategy="group", group_size=blocksize, symmetric=True)
    return QuantScheme(algo=label, producer="bitsandbytes", format="bitsandbytes", weights=weights,
                       options=dict(sorted(options.items())))
