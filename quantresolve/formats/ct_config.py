"""compressed-tensors' ``quantization_config`` schema, mirrored in pydantic without torch.

Why a mirror and not the library: compressed-tensors' own ``QuantizationConfig`` imports torch
(its dtype fields are ``torch.dtype``; the package pulls transformers too), so parsing the format
most quantized checkpoints use cost ≈ 2 s of imports and made ``inspect`` / ``resolve`` / ``audit``
need the heavy install. These models accept and refuse exactly what compressed-tensors 0.20's
``QuantizationConfig.model_validate`` does (same field types, so the same pydantic coercions; the
same before/after validators; preset group names expanded from :mod:`.ct_presets`), and keep dtype
fields as torch's dtype *names* (``"float8_e4m3fn"``; aliases such as ``"float"`` become the
canonical ``"float32"``, as ``str(torch.float)`` does).

How conformance is checked: ``tests/formats/test_ct_conformance.py`` parses every preset, every
compressed-tensors config of ``../shared/corpus`` and every compressed-tensors fixture with both this
mirror and the library, compares them field by field (:meth:`QuantizationConfig.plain` against the
same view of the library's objects), and feeds both a list of invalid inputs that each must refuse.
When compressed-tensors changes its schema, that test says where.

Values the schema lets through but no compressed-tensors compressor can store (``num_bits: 99``,
a ``1e30`` group size) are refused one step later, by :mod:`.ct_values`.

    >>> cfg = QuantizationConfig.model_validate({"format": "pack-quantized", "config_groups": {"W4A16": ["Linear"]}})
    >>> w = cfg.config_groups["W4A16"].weights
    >>> w.num_bits, w.strategy, w.group_size, w.zp_dtype
    (4, 'group', 128, 'int8')
    >>> QuantizationArgs.model_validate({"num_bits": 8, "type": "float", "strategy": "token"})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for QuantizationArgs
    ...
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from quantresolve.formats.ct_presets import PRESET_SCHEMES, preset_names

QuantType = Literal["int", "float"]
CTStrategy = Literal["tensor", "channel", "group", "block", "token", "tensor_group", "attn_head"]
ActOrder = Literal["weight", "static", "group", "dynamic"]
CompressionFormat = Literal[
    "dense", "sparse-bitmask", "sparse-24-bitmask", "int-quantized", "float-quantized", "naive-quantized",
    "pack-quantized", "marlin-24", "mixed-precision", "nvfp4-pack-quantized", "mxfp4-pack-quantized",
    "mxfp6-pack-quantized", "mxfp8-quantized",
]
QuantizationStatus = Literal["initialized", "calibration", "frozen", "compressed", "decompressed"]

#: ``CompressionFormat`` values (the per-group ``format`` must be one).
COMPRESSION_FORMATS: frozenset[str] = frozenset(CompressionFormat.__args__)  # type: ignore[attr-defined]
#: Strategies compressed-tensors accepts for input activations.
ACTIVATION_STRATEGIES = ("token", "tensor", "group", "tensor_group", "attn_head")
#: Strategies that may be dynamic.
DYNAMIC_STRATEGIES = ("token", "tensor", "tensor_group", "group")

#: Every dtype name torch 2.x exposes as ``torch.<name>``, with the canonical name ``str(dtype)`` gives.
TORCH_DTYPES: dict[str, str] = {
    **{name: name for name in (
        "bfloat16", "bits16", "bits1x8", "bits2x4", "bits4x2", "bits8", "bool", "complex128", "complex32",
        "complex64", "float16", "float32", "float4_e2m1fn_x2", "float64", "float8_e4m3fn", "float8_e4m3fnuz",
        "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "int1", "int16", "int2", "int3", "int32", "int4",
        "int5", "int6", "int64", "int7", "int8", "qint32", "qint8", "quint2x4", "quint4x2", "quint8", "uint1",
        "uint16", "uint2", "uint3", "uint32", "uint4", "uint5", "uint6", "uint64", "uint7", "uint8")},
    "bit": "uint1", "cdouble": "complex128", "cfloat": "complex64", "chalf": "complex32", "double": "float64",
    "float": "float32", "half": "float16", "int": "int32", "long": "int64", "short": "int16",
}


def _dtype_name(value: Any) -> Any:
    """``"torch.float8_e4m3fn"`` / ``"float8_e4m3fn"`` → ``"float8_e4m3fn"``; anything else is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a torch dtype name, got {type(value).__name__}")
    name = value.removeprefix("torch.")
    if name not in TORCH_DTYPES:
        raise ValueError(f"No such torch dtype `torch.{name}`")
    return TORCH_DTYPES[name]


def _storage_dtype(args: QuantizationArgs) -> str:
    """The dtype compressed-tensors stores zero points in when none is given (its ``pytorch_dtype``)."""
    if args.type == "float":
        if args.num_bits in (4, 6, 8):  # FP4 / FP6 zero points and FP8 values: e4m3
            return "float8_e4m3fn"
        raise ValueError(f"float quantization supports num_bits 4, 6 or 8, got {args.num_bits}")
    if args.num_bits <= 8:
        return "int8"
    return "int16" if args.num_bits <= 16 else "int32"


class QuantizationArgs(BaseModel):
    """How one tensor is quantized (compressed-tensors ``QuantizationArgs``)."""

    model_config = ConfigDict(extra="forbid")

    num_bits: int = 8
    type: QuantType = "int"
    symmetric: bool = True
    group_size: int | None = None
    strategy: CTStrategy | None = None
    block_structure: list[int] | None = None
    dynamic: Literal["local"] | bool = False
    actorder: ActOrder | bool | None = None
    scale_dtype: str | None = None
    zp_dtype: str | None = None
    observer: str | None = None
    observer_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type", "strategy", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("group_size", mode="before")
    @classmethod
    def _group(cls, value: Any) -> Any:
        if value is None:
            return value
        try:
            below = value < -1
        except TypeError:
            raise ValueError(f"group_size must be a number, got {type(value).__name__}") from None
        if below:
            raise ValueError(f"Invalid group size {value}. Use group_size > 0 for strategy='group' and "
                             "group_size = -1 for 'channel'")
        return value

    @field_validator("block_structure", mode="before")
    @classmethod
    def _block(cls, value: Any) -> Any:
        if value is None:
            return value
        message = f"Invalid block_structure {value!r}. Must be a list of positive ints [rows, cols]."
        if isinstance(value, str):  # the old "128x128" spelling
            try:
                value = [int(x) for x in value.split("x")]
            except ValueError:
                raise ValueError(message) from None
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
                raise ValueError(message)
            return list(value)
        raise ValueError(message)

    @field_validator("dynamic", mode="before")
    @classmethod
    def _dynamic(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() != "local":
                raise ValueError(f"dynamic must be true, false or 'local', got {value!r}")
            return "local"
        return value

    @field_validator("actorder", mode="before")
    @classmethod
    def _actorder(cls, value: Any) -> Any:
        if isinstance(value, bool):
            if value:
                raise ValueError("actorder=True (group activation ordering) has been removed; use 'weight' or null")
            return None
        if isinstance(value, str) and value.lower() in ("group", "dynamic"):
            raise ValueError(f"actorder={value!r} has been removed; use 'weight' or null")
        return value

    @field_validator("scale_dtype", "zp_dtype", mode="before")
    @classmethod
    def _dtypes(cls, value: Any) -> Any:
        return _dtype_name(value)

    @model_validator(mode="after")
    def _consistent(self) -> QuantizationArgs:
        strategy, group = self.strategy, self.group_size
        if strategy is None:
            if group is None:
                strategy = "tensor"
            elif group > 0:
                strategy = "group"
            elif group == -1:
                strategy = "channel"
            else:
                raise ValueError(f"Invalid group size {group}. Use group_size > 0 for strategy='group' and "
                                 "group_size = -1 for 'channel'")
        if strategy == "token" and not self.dynamic:
            raise ValueError("static token quantization is not possible: use dynamic=true")
        if strategy in ("group", "tensor_group") and (group is None or group <= 0):
            raise ValueError(f"strategy {strategy} requires a positive group_size")
        if group is not None and group > 0 and strategy not in ("group", "tensor_group"):
            raise ValueError("group_size requires strategy 'group' (or 'tensor_group')")
        if (strategy == "block") != (self.block_structure is not None):
            raise ValueError("strategy 'block' and block_structure go together")
        if self.dynamic:
            if strategy not in DYNAMIC_STRATEGIES:
                raise ValueError(f"dynamic quantization needs one of the strategies {', '.join(DYNAMIC_STRATEGIES)}")
            if self.dynamic == "local" and strategy != "tensor_group":
                raise ValueError("dynamic 'local' is only supported for strategy tensor_group")
        zp = self.zp_dtype if self.zp_dtype is not None else _storage_dtype(self)
        object.__setattr__(self, "strategy", strategy)
        object.__setattr__(self, "zp_dtype", zp)
        return self

    def plain(self) -> dict[str, Any]:
        """Every field as plain JSON values (the conformance test's common view)."""
        return self.model_dump()


class QuantizationScheme(BaseModel):
    """One config group: targets and the arguments of its weights and activations."""

    model_config = ConfigDict(extra="forbid")

    targets: list[str]
    weights: QuantizationArgs | None = None
    input_activations: QuantizationArgs | None = None
    output_activations: QuantizationArgs | None = None
    format: CompressionFormat | None = None

    @model_validator(mode="after")
    def _consistent(self) -> QuantizationScheme:
        acts, outs = self.input_activations, self.output_activations
        if acts is not None:
            if acts.strategy not in ACTIVATION_STRATEGIES:
                raise ValueError(f"strategy {acts.strategy!r} is not supported for activation quantization; "
                                 f"supported: {', '.join(ACTIVATION_STRATEGIES)}")
            if acts.actorder is not None:
                raise ValueError("actorder cannot apply to input activations")
        if outs is not None and outs.actorder is not None:
            raise ValueError("actorder cannot apply to output activations")
        if self.format == "mixed-precision":
            raise ValueError("mixed-precision cannot be the format of one group")
        return self

    def plain(self) -> dict[str, Any]:
        return self.model_dump()


class ExpertSparsityConfig(BaseModel):
    """Per-layer MoE expert counts after pruning (``moe_sparsity_config``)."""

    method: Literal["prune", "novice"]
    num_experts: list[StrictInt | None]


def preset_scheme(name: str, targets: list[str]) -> QuantizationScheme:
    """The scheme a preset-named group (``"W4A16": ["Linear"]``) stands for; an unknown name is refused."""
    args = PRESET_SCHEMES.get(name.upper())
    if args is None:
        raise ValueError(f"unknown preset scheme name {name!r}; known: {', '.join(preset_names())}")
    return QuantizationScheme.model_validate({"targets": targets, **args})


class QuantizationConfig(BaseModel):
    """compressed-tensors' ``quantization_config`` (unknown keys ignored, as the library does)."""

    model_config = ConfigDict(extra="ignore")

    config_groups: dict[str, QuantizationScheme | list[str]]
    quant_method: str = "compressed-tensors"
    kv_cache_scheme: QuantizationArgs | None = None
    format: str = "fakequant"
    quantization_status: QuantizationStatus = "initialized"
    global_compression_ratio: float | None = None
    ignore: list[str] | None = Field(default_factory=list)
    moe_sparsity_config: ExpertSparsityConfig | None = None

    @field_validator("config_groups", mode="after")
    @classmethod
    def _expand_presets(cls, groups: dict[str, QuantizationScheme | list[str]]
                        ) -> dict[str, QuantizationScheme | list[str]]:
        return {name: value if isinstance(value, QuantizationScheme) else preset_scheme(name, value)
                for name, value in groups.items()}

    def schemes(self) -> dict[str, QuantizationScheme]:
        """``config_groups`` after preset expansion (every value is a scheme)."""
        return {k: v for k, v in self.config_groups.items() if isinstance(v, QuantizationScheme)}

    def plain(self) -> dict[str, Any]:
        """Every field as plain JSON values (the conformance test's common view)."""
        return self.model_dump()


__all__ = ["COMPRESSION_FORMATS", "TORCH_DTYPES", "ExpertSparsityConfig", "QuantizationArgs", "QuantizationConfig",
           "QuantizationScheme", "preset_scheme"]
