"""Our torch-free mirror of compressed-tensors' config schema against the library itself.

For every preset, every compressed-tensors config in ``../shared/corpus`` (skipped when absent),
every compressed-tensors fixture and a grid of hand-written configs, our
:class:`~quantresolve.formats.ct_config.QuantizationConfig` and compressed-tensors' own
``QuantizationConfig.model_validate`` must agree field by field; on a list of invalid inputs both
must refuse. Needs the ``dev`` extra (compressed-tensors, torch).
"""

from __future__ import annotations

import copy
import enum
import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from quantresolve.formats.ct_config import TORCH_DTYPES, QuantizationConfig
from quantresolve.formats.ct_presets import PRESET_SCHEMES
from quantresolve.formats.loader import find_quant_section
from tests.conftest import CHECKPOINTS, FIXTURES, corpus_folders

ct = pytest.importorskip("compressed_tensors.quantization")
torch = pytest.importorskip("torch")


def _plain(value: Any) -> Any:
    """compressed-tensors' objects as plain values: dtypes by name, enums by value."""
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _theirs(data: dict[str, Any]) -> dict[str, Any] | None:
    """The library's parse as plain values, or None when it refuses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cfg = ct.QuantizationConfig.model_validate(copy.deepcopy(data))
        except Exception:  # it refuses with ValidationError, ValueError, KeyError, TypeError, NotImplementedError
            return None
    groups = {}
    for name, scheme in cfg.config_groups.items():
        groups[name] = {"targets": list(scheme.targets), "format": _plain(scheme.format)}
        for role in ("weights", "input_activations", "output_activations"):
            args = getattr(scheme, role)
            groups[name][role] = _args(args) if args is not None else None
    out = {field: _plain(getattr(cfg, field)) for field in
           ("quant_method", "format", "quantization_status", "global_compression_ratio", "ignore")}
    out["config_groups"] = groups
    out["kv_cache_scheme"] = _args(cfg.kv_cache_scheme) if cfg.kv_cache_scheme is not None else None
    out["moe_sparsity_config"] = (_plain(cfg.moe_sparsity_config.model_dump())
                                  if cfg.moe_sparsity_config is not None else None)
    return out


def _args(args: Any) -> dict[str, Any]:
    return {field: _plain(getattr(args, field)) for field in (
        "num_bits", "type", "symmetric", "group_size", "strategy", "block_structure", "dynamic", "actorder",
        "scale_dtype", "zp_dtype", "observer", "observer_kwargs")}


def _ours(data: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return QuantizationConfig.model_validate(copy.deepcopy(data)).plain()
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None


def _agree(data: dict[str, Any]) -> dict[str, Any] | None:
    theirs, ours = _theirs(data), _ours(data)
    assert ours == theirs, json.dumps(data)[:300]
    return ours


# --- valid inputs ---------------------------------------------------------------------------------

def test_every_preset_name_is_mirrored() -> None:
    assert set(PRESET_SCHEMES) == set(ct.quant_scheme.PRESET_SCHEMES)


@pytest.mark.parametrize("name", sorted(ct.quant_scheme.PRESET_SCHEMES))
def test_every_preset(name: str) -> None:
    for spelling in (name, name.lower()):
        assert _agree({"format": "dense", "config_groups": {spelling: ["Linear", "re:.*mlp.*"]}}) is not None


def test_torch_dtype_names_are_torchs() -> None:
    names = {n: str(getattr(torch, n)).removeprefix("torch.") for n in dir(torch)
             if isinstance(getattr(torch, n, None), torch.dtype)}
    assert names == TORCH_DTYPES


def _ct_sections() -> list[tuple[str, dict[str, Any]]]:
    found = []
    dirs = [*corpus_folders(), *sorted(CHECKPOINTS.iterdir()), *sorted((FIXTURES / "families").glob("*/checkpoint"))]
    for folder in dirs:
        path = folder / "config.json"
        if not path.is_file():
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        hit = find_quant_section(config, file="config.json")
        if hit is not None and hit[1].get("quant_method") == "compressed-tensors":
            found.append((folder.name, hit[1]))
    return found


SECTIONS = _ct_sections()


def test_corpus_and_fixtures_hold_compressed_tensors_configs() -> None:
    assert len(SECTIONS) >= 10


@pytest.mark.parametrize(("name", "section"), SECTIONS, ids=[n for n, _ in SECTIONS])
def test_real_configs(name: str, section: dict[str, Any]) -> None:
    assert _agree(section) is not None, name


def _grid() -> list[dict[str, Any]]:
    """Argument combinations around every rule of the schema, valid and invalid alike."""
    cases = []
    for bits, typ, strategy, group, dynamic in itertools.product(
            (4, 8, 6), ("int", "float", "FLOAT"), (None, "tensor", "channel", "group", "token", "tensor_group",
                                                   "block", "attn_head", "CHANNEL"),
            (None, -1, 0, 16, 128), (False, True, "local")):
        args: dict[str, Any] = {"num_bits": bits, "type": typ, "dynamic": dynamic}
        if strategy is not None:
            args["strategy"] = strategy
        if group is not None:
            args["group_size"] = group
        if strategy == "block":
            args["block_structure"] = [128, 128]
        cases.append(args)
    return cases


def test_argument_grid_weights_and_activations() -> None:
    accepted = refused = 0
    for args in _grid():
        for role in ("weights", "input_activations", "output_activations"):
            section = {"config_groups": {"g": {"targets": ["Linear"], role: args}}}
            if _agree(section) is None:
                refused += 1
            else:
                accepted += 1
        if _agree({"config_groups": {"W4A16": ["Linear"]}, "kv_cache_scheme": args}) is None:
            refused += 1
    assert accepted > 100 and refused > 100


#: Inputs at pydantic's coercion edges: accepted or refused, the two parsers must say the same.
EDGES: list[tuple[str, dict[str, Any]]] = [
    ("bits-bool", {"num_bits": True}), ("bits-float-integral", {"num_bits": 4.0}), ("bits-string", {"num_bits": "4"}),
    ("bits-zero", {"num_bits": 0}), ("bits-negative", {"num_bits": -3}), ("bits-99", {"num_bits": 99}),
    ("group-huge-float", {"group_size": 1e30}), ("group-float", {"group_size": 128.0}),
    ("group-bool", {"group_size": True}), ("group-nan", {"group_size": float("nan")}),
    ("group-minus-one", {"group_size": -1}), ("group-list", {"group_size": [128]}),
    ("symmetric-yes", {"symmetric": "yes"}), ("symmetric-two", {"symmetric": 2}),
    ("dynamic-one", {"strategy": "token", "dynamic": 1}), ("dynamic-local-upper", {
        "type": "float", "num_bits": 4, "strategy": "tensor_group", "group_size": 16, "dynamic": "LOCAL"}),
    ("actorder-one", {"strategy": "group", "group_size": 128, "actorder": 1}),
    ("actorder-static", {"strategy": "group", "group_size": 128, "actorder": "static"}),
    ("actorder-false", {"strategy": "group", "group_size": 128, "actorder": False}),
    ("block-bools", {"strategy": "block", "block_structure": [True, 2]}),
    ("block-string", {"strategy": "block", "block_structure": "128x128"}),
    ("block-tuple-floats", {"strategy": "block", "block_structure": [128.0, 128]}),
    ("dtype-alias", {"scale_dtype": "torch.float"}), ("dtype-prefixed-twice", {"scale_dtype": "torch.torch.float32"}),
    ("zp-given-float5", {"type": "float", "num_bits": 5, "zp_dtype": "float8_e4m3fn"}),
    ("observer-kwargs-list", {"observer_kwargs": [1]}), ("int-bits-12", {"num_bits": 12}),
    ("int-bits-20", {"num_bits": 20}),
]


@pytest.mark.parametrize(("case", "args"), EDGES, ids=[c for c, _ in EDGES])
def test_coercion_edges_agree(case: str, args: dict[str, Any]) -> None:
    _agree({"config_groups": {"g": {"targets": ["Linear"], "weights": args}}})
    _agree({"config_groups": {"W4A16": ["Linear"]}, "kv_cache_scheme": args})


# --- invalid inputs: both refuse -------------------------------------------------------------------

def _w(**args: Any) -> dict[str, Any]:
    return {"format": "pack-quantized", "config_groups": {"g": {"targets": ["Linear"], "weights": args}}}


INVALID: list[tuple[str, dict[str, Any]]] = [
    ("no-config-groups", {"format": "dense"}),
    ("groups-not-object", {"config_groups": ["W4A16"]}),
    ("unknown-preset", {"config_groups": {"W9A9": ["Linear"]}}),
    ("preset-targets-not-list", {"config_groups": {"W4A16": "Linear"}}),
    ("targets-missing", {"config_groups": {"g": {"weights": {"num_bits": 4}}}}),
    ("targets-not-strings", {"config_groups": {"g": {"targets": [1]}}}),
    ("extra-scheme-key", {"config_groups": {"g": {"targets": ["Linear"], "weight": {"num_bits": 4}}}}),
    ("extra-args-key", _w(num_bits=4, bits=4)),
    ("bits-string-word", _w(num_bits="four")),
    ("bits-float-fraction", _w(num_bits=4.5)),
    ("type-unknown", _w(type="uint")),
    ("type-not-string", _w(type=4)),
    ("strategy-unknown", _w(strategy="row")),
    ("group-size-below-minus-one", _w(group_size=-2)),
    ("group-size-string", _w(group_size="128")),
    ("group-size-zero", _w(group_size=0)),
    ("group-without-size", _w(strategy="group")),
    ("group-size-on-channel", _w(strategy="channel", group_size=128)),
    ("tensor-group-without-size", _w(strategy="tensor_group", type="float", num_bits=4)),
    ("static-token", _w(strategy="token")),
    ("block-without-structure", _w(strategy="block")),
    ("structure-without-block", _w(strategy="channel", block_structure=[128, 128])),
    ("block-structure-three", _w(strategy="block", block_structure=[1, 2, 3])),
    ("block-structure-zero", _w(strategy="block", block_structure=[0, 128])),
    ("block-structure-bad-string", _w(strategy="block", block_structure="axb")),
    ("block-structure-number", _w(strategy="block", block_structure=128)),
    ("dynamic-channel", _w(strategy="channel", dynamic=True)),
    ("dynamic-string", _w(strategy="token", dynamic="true")),
    ("local-on-group", _w(strategy="group", group_size=16, dynamic="local")),
    ("actorder-true", _w(strategy="group", group_size=128, actorder=True)),
    ("actorder-group", _w(strategy="group", group_size=128, actorder="group")),
    ("actorder-upper", _w(strategy="group", group_size=128, actorder="WEIGHT")),
    ("float-five-bits", _w(type="float", num_bits=5)),
    ("float-sixteen-bits", _w(type="float", num_bits=16, strategy="channel")),
    ("scale-dtype-unknown", _w(scale_dtype="float7")),
    ("scale-dtype-number", _w(scale_dtype=8)),
    ("zp-dtype-attribute", _w(zp_dtype="nn")),
    ("activation-channel", {"config_groups": {"g": {"targets": ["Linear"],
                                                    "input_activations": {"strategy": "channel"}}}}),
    ("activation-actorder", {"config_groups": {"g": {"targets": ["Linear"], "input_activations": {
        "strategy": "group", "group_size": 128, "actorder": "weight"}}}}),
    ("output-actorder", {"config_groups": {"g": {"targets": ["Linear"], "output_activations": {
        "strategy": "group", "group_size": 128, "actorder": "weight"}}}}),
    ("group-format-mixed", {"config_groups": {"g": {"targets": ["Linear"], "format": "mixed-precision"}}}),
    ("group-format-fakequant", {"config_groups": {"g": {"targets": ["Linear"], "format": "fakequant"}}}),
    ("group-format-unknown", {"config_groups": {"g": {"targets": ["Linear"], "format": "zip"}}}),
    ("format-null", {"format": None, "config_groups": {"W4A16": ["Linear"]}}),
    ("status-unknown", {"quantization_status": "done", "config_groups": {"W4A16": ["Linear"]}}),
    ("ignore-not-list", {"ignore": "lm_head", "config_groups": {"W4A16": ["Linear"]}}),
    ("ignore-item-number", {"ignore": ["lm_head", 3], "config_groups": {"W4A16": ["Linear"]}}),
    ("kv-static-token", {"config_groups": {"W4A16": ["Linear"]}, "kv_cache_scheme": {"strategy": "token"}}),
    ("ratio-string", {"global_compression_ratio": "high", "config_groups": {"W4A16": ["Linear"]}}),
    ("moe-sparsity-bad-method", {"config_groups": {"W4A16": ["Linear"]},
                                 "moe_sparsity_config": {"method": "drop", "num_experts": [None, 8]}}),
    ("moe-sparsity-float-count", {"config_groups": {"W4A16": ["Linear"]},
                                  "moe_sparsity_config": {"method": "prune", "num_experts": [8.0]}}),
]


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 40


@pytest.mark.parametrize(("case", "section"), INVALID, ids=[c for c, _ in INVALID])
def test_both_refuse(case: str, section: dict[str, Any]) -> None:
    assert _theirs(section) is None, f"compressed-tensors accepts {case}: the list is wrong"
    assert _ours(section) is None, f"our mirror accepts {case}"


def test_fixture_configs_parse_without_torch(tmp_path: Path) -> None:
    """The mirror module itself imports no torch (the architecture test checks the whole core)."""
    import subprocess
    import sys

    code = ("import sys; import quantresolve.formats.ct_config as m; "
            "m.QuantizationConfig.model_validate({'config_groups': {'W4A16': ['Linear']}}); "
            "assert 'torch' not in sys.modules and 'compressed_tensors' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


# --- value checks: nothing compressed-tensors' compressors store is refused ------------------------

def test_value_checks_accept_whatever_a_compressor_accepts() -> None:
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.config import CompressionFormat
    from compressed_tensors.registry.registry import registered_names

    from quantresolve.errors import ConfigError
    from quantresolve.formats.ct_config import QuantizationScheme
    from quantresolve.formats.ct_values import check_args, check_weight_format

    schemes = [{"targets": ["Linear"], **args} for args in PRESET_SCHEMES.values() if args.get("weights")]
    schemes += [{"targets": ["Linear"], "weights": args} for args in _grid()]
    schemes += [{"targets": ["Linear"], "weights": {"num_bits": b, "type": "int", "strategy": "channel"}}
                for b in (*range(-1, 12), 16, 17, 31, 32, 33, 99)]
    checked = refused = 0
    for raw in schemes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theirs = ct.QuantizationScheme.model_validate(copy.deepcopy(raw))
            except Exception:
                continue
        ours = QuantizationScheme.model_validate(copy.deepcopy(raw))
        for fmt in CompressionFormat:
            if fmt.value not in registered_names(BaseCompressor):  # legacy sparse formats, mixed-precision
                continue
            compressor = BaseCompressor.get_value_from_registry(fmt.value)
            try:
                check_args(ours.weights, file="config.json", field="w")  # type: ignore[arg-type]
                check_weight_format(ours.weights, fmt.value, file="config.json", field="w")  # type: ignore[arg-type]
                ok = True
            except ConfigError:
                ok = False
                refused += 1
            # dense stores nothing quantized (always "can compress"); the naive formats would take
            # integers of no bits or wider than 32 bits (clamped into int32): documented refusals of ct_values.
            mangled = fmt.value == "dense" or (theirs.weights.type == "int" and not 1 <= theirs.weights.num_bits <= 32)
            if compressor.can_compress(torch.nn.Linear, theirs) and not mangled:
                assert ok, (fmt.value, raw)
            checked += 1
    assert checked > 500 and refused > 100
