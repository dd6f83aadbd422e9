"""compressed-tensors' preset scheme names, as data: what a ``config_groups`` entry like ``"W4A16": ["Linear"]`` means.

A group whose value is a bare target list is named after a preset; compressed-tensors expands the
(upper-cased) name into full weight / activation arguments. These are the presets of
compressed-tensors 0.20 (``quantization/quant_scheme.py``), written here as plain argument dicts
so that expanding one needs no torch (:mod:`quantresolve.formats.ct_config` validates them like any
other arguments). ``tests/formats/test_ct_conformance.py`` checks every name and every expansion
against the library's own ``PRESET_SCHEMES``.

    >>> sorted(PRESET_SCHEMES["W4A16"])
    ['weights']
    >>> PRESET_SCHEMES["FP8_DYNAMIC"]["input_activations"]["strategy"]
    'token'
"""

from __future__ import annotations

from typing import Any

Args = dict[str, Any]

_E4M3 = "float8_e4m3fn"


def _int_weights(bits: int, *, symmetric: bool = True) -> Args:
    return {"num_bits": bits, "type": "int", "strategy": "group", "group_size": 128, "symmetric": symmetric,
            "dynamic": False}


def _int_tokens(bits: int) -> Args:
    return {"num_bits": bits, "type": "int", "strategy": "token", "symmetric": True, "dynamic": True}


def _wxay(weight_bits: int, act_bits: int = 16) -> dict[str, Args]:
    """The generic integer WxAy family: group-128 weights, dynamic per-token int activations below 16 bits."""
    scheme = {"weights": _int_weights(weight_bits)}
    if act_bits < 16:
        scheme["input_activations"] = _int_tokens(act_bits)
    return scheme


def _nvfp4(**extra: Any) -> Args:
    return {"num_bits": 4, "type": "float", "strategy": "tensor_group", "symmetric": True, "dynamic": False,
            "group_size": 16, "scale_dtype": _E4M3, "zp_dtype": _E4M3, **extra}


def _mx(bits: int, *, dynamic: bool = False) -> Args:
    return {"num_bits": bits, "type": "float", "strategy": "group", "symmetric": True, "dynamic": dynamic,
            "group_size": 32, "scale_dtype": "uint8", "zp_dtype": "uint8"}


def _fp8(strategy: str, *, dynamic: bool = False, **extra: Any) -> Args:
    return {"num_bits": 8, "type": "float", "strategy": strategy, "symmetric": True, "dynamic": dynamic, **extra}


_INT8_W8A8 = {"weights": {"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True, "dynamic": False},
              "input_activations": _int_tokens(8)}

#: Preset name (upper case, as compressed-tensors looks it up) → the scheme's argument dicts.
PRESET_SCHEMES: dict[str, dict[str, Args]] = {
    "UNQUANTIZED": {},
    "W4A16_ASYM": {"weights": _int_weights(4, symmetric=False)},
    "W8A8": _INT8_W8A8,
    "INT8": _INT8_W8A8,
    "W4AFP8": {"weights": _int_weights(4), "input_activations": _fp8("token", dynamic=True, observer=None)},
    "FP8": {"weights": _fp8("tensor"), "input_activations": _fp8("tensor", observer="static_minmax")},
    "FP8_DYNAMIC": {"weights": _fp8("channel"), "input_activations": _fp8("token", dynamic=True)},
    "FP8_BLOCK": {"weights": _fp8("block", block_structure=[128, 128]),
                  "input_activations": _fp8("group", dynamic=True, group_size=128)},
    "NVFP4A16": {"weights": _nvfp4()},
    "NVFP4": {"weights": _nvfp4(), "input_activations": _nvfp4(dynamic="local", observer="static_minmax")},
    "MXFP4A16": {"weights": _mx(4)},
    "MXFP4": {"weights": _mx(4), "input_activations": _mx(4, dynamic=True)},
    "MXFP4XFP8": {"weights": _mx(4), "input_activations": _fp8("group", dynamic=True, group_size=128)},
    "MXFP6A16": {"weights": _mx(6)},
    "MXFP6A8": {"weights": _mx(6), "input_activations": _mx(8, dynamic=True)},
    "MXFP8A16": {"weights": _mx(8)},
    "MXFP8": {"weights": _mx(8), "input_activations": _mx(8, dynamic=True)},
    **{f"W{w}A{a}": _wxay(w, a) for w, a in ((2, 4), (2, 8), (2, 16), (3, 4), (3, 8), (3, 16), (4, 4), (4, 8),
                                            (4, 16), (5, 8), (5, 16), (6, 8), (6, 16), (7, 8), (7, 16), (8, 16))},
}


def preset_names() -> list[str]:
    """Every preset name, sorted (for error messages)."""
    return sorted(PRESET_SCHEMES)


__all__ = ["PRESET_SCHEMES", "preset_names"]
