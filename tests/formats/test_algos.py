"""Algorithm-name canonicalization: examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantresolve.errors import UnknownAlgorithmError
from quantresolve.formats.algos import (
    MODELOPT_ALGOS,
    MODELOPT_LABELS,
    canonical_modelopt_algo,
    canonical_modelopt_kv_algo,
)

# Every spelling field-notes §1.1 lists, with its canonical label.
FIELD_NOTES_SPELLINGS = {
    "fp8": "FP8", "int8_sq": "W8A8_SQ_PER_CHANNEL", "int8_wo": "W8A16", "int4_awq": "W4A16_AWQ",
    "w4a8_awq": "W4A8_AWQ", "nvfp4": "NVFP4", "nvfp4_svdquant": "NVFP4_SVD", "w4a8_nvfp4_fp8": "W4A8_NVFP4_FP8",
    "mxfp4": "MXFP4", "mxfp8": "MXFP8", "w4a8_mxfp4_fp8": "W4A8_MXFP4_FP8", "w4a16_nvfp4": "W4A16_NVFP4",
    "nvfp4_awq": "NVFP4_AWQ", "fp8_pb_real": "FP8_PB_REAL", "fp8_pb_wo": "FP8_PB_WO",
    "fp8_pc_pt": "FP8_PER_CHANNEL_PER_TOKEN", "MIXED_PRECISION": "MIXED_PRECISION",
    "FP8_PER_CHANNEL_PER_TOKEN": "FP8_PER_CHANNEL_PER_TOKEN", "W4A16_AWQ": "W4A16_AWQ",
    "W8A8_SQ_PER_CHANNEL": "W8A8_SQ_PER_CHANNEL", "W4A16_NVFP4": "W4A16_NVFP4", "FP8_PB_WO": "FP8_PB_WO",
}

ALL_SPELLINGS = sorted({s for spec in MODELOPT_ALGOS for s in (spec.label, *spec.aliases)})


@pytest.mark.parametrize(("spelling", "label"), sorted(FIELD_NOTES_SPELLINGS.items()))
def test_field_notes_spellings(spelling: str, label: str) -> None:
    assert canonical_modelopt_algo(spelling) == label


@pytest.mark.parametrize("spelling", [None, "", "none", "None", "NULL", "  null  "])
def test_no_value_spellings(spelling: object) -> None:
    assert canonical_modelopt_algo(spelling) is None
    assert canonical_modelopt_kv_algo(spelling) is None


def test_unknown_lists_known() -> None:
    with pytest.raises(UnknownAlgorithmError) as info:
        canonical_modelopt_algo("FP9")
    assert all(label in str(info.value) for label in MODELOPT_LABELS)


def _recase(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips + [False] * len(text), strict=False))


@given(st.sampled_from(ALL_SPELLINGS), st.lists(st.booleans(), max_size=40),
       st.text(alphabet=" \t", max_size=3), st.text(alphabet=" \t", max_size=3))
def test_case_and_whitespace_do_not_matter(spelling: str, flips: list[bool], left: str, right: str) -> None:
    assert canonical_modelopt_algo(left + _recase(spelling, flips) + right) == canonical_modelopt_algo(spelling)


@given(st.sampled_from(ALL_SPELLINGS))
def test_canonicalization_is_idempotent(spelling: str) -> None:
    label = canonical_modelopt_algo(spelling)
    assert canonical_modelopt_algo(label) == label


@given(st.text(max_size=30))
def test_anything_else_is_loud(text: str) -> None:
    known = {s.lower() for s in ALL_SPELLINGS} | {"mixed_precision", "", "none", "null"}
    if text.strip().lower() in known:
        assert canonical_modelopt_algo(text) is not None or text.strip().lower() in {"", "none", "null"}
    else:
        with pytest.raises(UnknownAlgorithmError):
            canonical_modelopt_algo(text)


@given(st.sampled_from(["fp8", "int8", "nvfp4", "nvfp4_affine"]), st.lists(st.booleans(), max_size=20))
def test_kv_algos(spelling: str, flips: list[bool]) -> None:
    assert canonical_modelopt_kv_algo(_recase(spelling, flips)) == spelling.upper()
