"""Comparing a load with a fixture's stored reference, strictly where that is reproducible.

``fixtures/checkpoints/<name>/reference.safetensors`` holds what the producer's own model computed
on the machine that ran ``fixtures/generate.py``, together with that machine's arithmetic
fingerprint (``fixtures/arith_fingerprint.py``). Two modes follow from it:

* **strict** — this process's fingerprint equals the recorded one: the reference is reproducible
  here bit for bit, so the per-fixture tolerances are the tight ones measured on that machine
  (0.0 for the bit-exact loads, one bf16 step allowed) and the greedy tokens must be the
  reference's;
* **cross-machine** — the fingerprint differs (another CPU's bf16 GEMM kernels, another torch) or
  none is recorded: bf16 matmuls round differently and FP8 activation quantization turns one ulp
  into a whole FP8 step, so each fixture has a looser *cross-machine* bound, measured as AVX-512
  references against loads on an AVX2 machine (the test modules list the values).

In both modes a greedy divergence is accepted only at a near-tie of the reference (:func:`check_greedy`),
and the tests keep their mode-independent checks (e.g. a relative error clearly below the
unquantized model's), so a load that skipped quantization fails on every machine.

Example::

    >>> tol = Tolerance(strict=0.004, cross_machine=0.02)
    >>> mode_for("v1-aaaa", current="v1-aaaa"), mode_for("v1-aaaa", current="v1-bbbb"), mode_for(None)
    ('strict', 'cross-machine', 'cross-machine')
    >>> tol.for_mode(STRICT), tol.for_mode(CROSS_MACHINE)
    (0.004, 0.02)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from .conftest import fixtures_module

STRICT = "strict"
CROSS_MACHINE = "cross-machine"


@dataclass(frozen=True)
class Tolerance:
    """Max |Δlogit| allowed against a reference, per mode; also the near-tie width for greedy tokens."""

    strict: float
    cross_machine: float

    def __post_init__(self) -> None:
        if not 0 <= self.strict <= self.cross_machine:
            raise ValueError(f"need 0 <= strict <= cross_machine, got {self}")

    def for_mode(self, mode: str) -> float:
        return {STRICT: self.strict, CROSS_MACHINE: self.cross_machine}[mode]


def current_fingerprint() -> str:
    """This process's arithmetic fingerprint (the generator's own function)."""
    return fixtures_module("arith_fingerprint").arithmetic_fingerprint()


def recorded_fingerprint(directory: Path) -> str | None:
    """The fingerprint ``reference.safetensors`` was written with (None for references older than it)."""
    key = fixtures_module("arith_fingerprint").METADATA_KEY
    with safe_open(str(directory / "reference.safetensors"), "pt") as handle:
        return (handle.metadata() or {}).get(key)


def mode_for(recorded: str | None, current: str | None = None) -> str:
    """``strict`` when ``recorded`` is this machine's fingerprint (or ``current``), else ``cross-machine``."""
    if recorded is None:
        return CROSS_MACHINE
    return STRICT if recorded == (current or current_fingerprint()) else CROSS_MACHINE


@functools.cache
def reference_mode(directory: Path) -> str:
    """The mode the tests of the fixture in ``directory`` run in."""
    return mode_for(recorded_fingerprint(directory))


def check_logits(
    ours: torch.Tensor, ref: torch.Tensor, atol: float, *, dense_rel: float | None = None, label: str = ""
) -> float:
    """Assert max |ours − ref| ≤ ``atol`` and, given the unquantized model's relative distance from
    ``ref`` (``dense_rel``), a relative error below 0.9 of it; return the max |Δ|.

    >>> ref = torch.tensor([1.0, -0.5])
    >>> check_logits(ref + 0.002, ref, 0.004, dense_rel=0.05)
    0.002...
    """
    assert ours.shape == ref.shape, f"{label}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    diff = float((ours.float() - ref.float()).abs().max())
    assert diff <= atol, f"{label}: max |Δlogit| {diff:.4f} > {atol}"
    if dense_rel is not None:
        rel = float((ours.float() - ref.float()).norm() / ref.float().norm())
        assert rel < 0.9 * dense_rel, (
            f"{label}: relative error {rel:.4f} not clearly below the unquantized model's {dense_rel}"
        )
    return diff


def check_greedy(
    generated: torch.Tensor, expected: torch.Tensor, step_logits: torch.Tensor, prompt: int, tie: float
) -> int:
    """Our greedy continuation against the reference's, up to its first near-tie; returns the steps compared.

    ``generated`` / ``expected`` are ``[1, prompt + new]`` token ids; ``step_logits`` ``[1, new, vocab]``
    are the logits the reference chose each token from. Tokens must be equal step by step. Where ours
    differs, the step must be a near-tie of the reference: the reference's logit of *our* token lies
    within ``tie`` of the one it chose (so its top-2 margin is ≤ ``tie``: logits that agree to within
    ``tie`` may order those tokens either way). From there on the two continuations condition on
    different tokens and nothing further is compared. The first token is always compared (equal, or
    one of the reference's tied tokens), so the check never passes vacuously.

    >>> logits = torch.tensor([[[0.0, 1.0, 0.998], [2.0, 0.0, 0.0]]])
    >>> check_greedy(torch.tensor([[7, 1, 0]]), torch.tensor([[7, 1, 0]]), logits, 1, tie=0.004)
    2
    >>> check_greedy(torch.tensor([[7, 2, 1]]), torch.tensor([[7, 1, 0]]), logits, 1, tie=0.004)
    1
    """
    ours, ref = generated[0, prompt:].tolist(), expected[0, prompt:].tolist()
    assert ref, "the reference generated no token"
    assert step_logits.shape[1] == len(ref), "one step of logits per reference token"
    for step, (got, want) in enumerate(zip(ours, ref)):  # noqa: B905 -- lengths checked below
        if got == want:
            continue
        logits = step_logits[0, step].float()
        top2 = logits.topk(2).values.tolist()
        assert logits[want] == top2[0], f"step {step}: the reference's token is not its argmax"
        gap = float(logits[want] - logits[got])
        assert gap <= tie, (
            f"greedy step {step}: token {got} instead of {want}; the reference's top-2 margin there is "
            f"{top2[0] - top2[1]:.4f} and its logit of {got} is {gap:.4f} below, more than the tie width {tie}"
        )
        return step + 1
    assert len(ours) == len(ref), f"{len(ours)} new tokens instead of the reference's {len(ref)}"
    return len(ref)


def check_generation(model: torch.nn.Module, ref: dict[str, torch.Tensor], tie: float) -> int:
    """Generate greedily from the reference's prompt for as many tokens as it did, then :func:`check_greedy`."""
    prompt, expected = ref["input_ids"], ref["greedy_ids"]
    with torch.no_grad():
        generated = model.generate(prompt, max_new_tokens=expected.shape[1] - prompt.shape[1], do_sample=False,
                                   pad_token_id=model.config.eos_token_id)
    return check_greedy(generated, expected, ref["greedy_logits"], prompt.shape[1], tie)
