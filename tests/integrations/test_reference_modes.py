"""The two ways a load is held against a stored reference (:mod:`tests.references`) both bite.

The fixture tests pick *strict* or *cross-machine* bounds from the arithmetic fingerprint recorded
in ``reference.safetensors``; on any one machine only one mode runs for real. These tests run the
switch with fake fingerprints, and the checks of each mode on data that must pass or fail them.
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys

import pytest
import torch

from .. import references
from ..conftest import FIXTURES, checkpoint_dir, fixtures_module
from ..references import (
    CROSS_MACHINE,
    STRICT,
    Tolerance,
    check_greedy,
    mode_for,
    recorded_fingerprint,
)
from .loaded import logits, reference
from .test_fixture_logits import ATOL, DENSE_REL, check_fixture_logits

pytestmark = pytest.mark.filterwarnings("ignore")
FAKE = "v1-0123456789abcdef"


def test_doctests() -> None:
    for module in (references, fixtures_module("arith_fingerprint")):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted and not result.failed, module.__name__


def test_mode_switch_follows_the_recorded_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = recorded_fingerprint(checkpoint_dir("ct-fp8"))
    assert recorded is not None and recorded.startswith("v1-")
    assert mode_for(recorded, current=recorded) == STRICT
    assert mode_for(recorded, current=FAKE) == CROSS_MACHINE
    assert mode_for(None) == CROSS_MACHINE  # a reference written before fingerprints existed
    monkeypatch.setattr(references, "current_fingerprint", lambda: FAKE)
    assert mode_for(recorded) == CROSS_MACHINE
    assert mode_for(FAKE) == STRICT


def test_tolerance_is_never_looser_in_strict_mode() -> None:
    with pytest.raises(ValueError, match="strict <= cross_machine"):
        Tolerance(0.01, 0.004)
    assert all(t.strict <= t.cross_machine for t in ATOL.values())


def test_the_mode_decides_the_logit_bound() -> None:
    """0.01 off on one logit of ct-fp8: beyond one bf16 step (strict), inside the cross-machine 0.021."""
    name = "ct-fp8"
    ours = logits(name)
    moved = ours.clone()
    moved[0, 3, 17] += 0.01
    with pytest.raises(AssertionError, match=r"ct-fp8 \(strict\): max \|Δlogit\| 0\.0100 > 0\.004"):
        check_fixture_logits(name, ours, moved, mode_for(FAKE, current=FAKE))
    assert check_fixture_logits(name, ours, moved, mode_for(FAKE, current="v1-another")) == pytest.approx(0.01, abs=1e-6)


@pytest.mark.parametrize("mode", [STRICT, CROSS_MACHINE])
def test_a_load_as_far_off_as_the_dense_model_fails_in_both_modes(mode: str) -> None:
    """Every logit of ct-fp8 moved by ±0.0157, as far (relative) as the unquantized model is: beyond the
    strict bound, inside the cross-machine 0.021 — where the relative check alone has to catch it."""
    name = "ct-fp8"
    ref = reference(name)["logits"]
    signs = torch.where(torch.arange(ref.numel()).reshape(ref.shape) % 2 == 0, 1.0, -1.0)
    far = ref + signs * DENSE_REL[name] * ref.norm() / ref.numel() ** 0.5
    assert ATOL[name].strict < float((far - ref).abs().max()) < ATOL[name].cross_machine
    message = "max" if mode == STRICT else "not clearly below the unquantized model's"
    with pytest.raises(AssertionError, match=message):
        check_fixture_logits(name, far, ref, mode)


# --------------------------------------------------------------------------- greedy tokens

#: Three steps of a 4-token vocabulary: step 0 a near-tie (0.003) of tokens 1 and 2, step 1 and 2 clear.
STEPS = torch.tensor([[[0.0, 0.500, 0.497, 0.1], [0.9, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.3]]])
PROMPT = [5, 6]


def _ids(*new: int) -> torch.Tensor:
    return torch.tensor([[*PROMPT, *new]])


REF = _ids(1, 0, 3)


def test_greedy_identical_compares_every_step() -> None:
    assert check_greedy(_ids(1, 0, 3), REF, STEPS, len(PROMPT), tie=0.004) == 3


def test_greedy_divergence_at_a_near_tie_is_accepted_and_ends_the_comparison() -> None:
    # Token 2 is 0.003 below the reference's choice at step 0; what follows conditions on it.
    assert check_greedy(_ids(2, 3, 3), REF, STEPS, len(PROMPT), tie=0.004) == 1


def test_greedy_divergence_beyond_the_tie_width_fails() -> None:
    with pytest.raises(AssertionError, match="greedy step 0: token 2 instead of 1"):
        check_greedy(_ids(2, 0, 3), REF, STEPS, len(PROMPT), tie=0.002)
    with pytest.raises(AssertionError, match="greedy step 0: token 3 instead of 1"):  # not one of the tied
        check_greedy(_ids(3, 0, 3), REF, STEPS, len(PROMPT), tie=0.004)
    with pytest.raises(AssertionError, match="greedy step 2: token 0 instead of 3"):
        check_greedy(_ids(1, 0, 0), REF, STEPS, len(PROMPT), tie=0.004)


def test_greedy_length_and_reference_consistency_are_checked() -> None:
    with pytest.raises(AssertionError, match="2 new tokens instead of the reference's 3"):
        check_greedy(_ids(1, 0), REF, STEPS, len(PROMPT), tie=0.004)
    with pytest.raises(AssertionError, match="not its argmax"):
        check_greedy(_ids(2, 0, 3), _ids(3, 0, 3), STEPS, len(PROMPT), tie=1.0)
    with pytest.raises(AssertionError, match="generated no token"):
        check_greedy(torch.tensor([PROMPT]), torch.tensor([PROMPT]), STEPS[:, :0], len(PROMPT), tie=0.004)


# --------------------------------------------------------------------------- the fingerprint itself


def _fingerprint_in_subprocess(**env: str) -> str:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import arith_fingerprint as a; "
            "print(a.arithmetic_fingerprint())")
    out = subprocess.run([sys.executable, "-c", code, str(FIXTURES)], capture_output=True, text=True,
                         check=True, env=os.environ | env)
    return out.stdout.strip()


def test_fingerprint_is_stable_and_sees_another_kernel_choice() -> None:
    """The generator's import (bare module, fixtures/ on sys.path) computes the tests' fingerprint, with
    one thread as with several; forcing torch's generic CPU kernels changes it."""
    current = references.current_fingerprint()
    assert _fingerprint_in_subprocess(OMP_NUM_THREADS="1") == current
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU already runs torch's generic kernels")
    assert _fingerprint_in_subprocess(ATEN_CPU_CAPABILITY="default") != current
