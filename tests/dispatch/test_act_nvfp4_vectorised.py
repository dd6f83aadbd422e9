"""The vectorised NVFP4 activation quantisers equal the table look-up they replaced, bit for bit.

The oracle is the old code, kept verbatim in :mod:`tests.dispatch.act_nvfp4_oracle`. The E2M1
rounding is compared on every bf16 / float16 bit pattern and on float32 values around every grid
point and midpoint; the two producers' quantize-dequantize (ModelOpt ``NVFP4QTensor``,
compressed-tensors ``forward_quantize``) on random activations of several magnitudes and on the
edges: zero rows and blocks, negative zeros, exact ties at every rounding boundary, the largest
finite values, widths that are no multiple of 16, bf16 / float32 / float16 inputs. Agreement with
the producers' own libraries stays where it is checked (``test_act_arith.py``).
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.dispatch.numerics import E2M1_BOUNDS, E2M1_MAGNITUDES, round_e2m1_half_even
from tests.dispatch.act_nvfp4_oracle import OLD_NVFP4, old_round_e2m1_half_even

_INT = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
#: Every tie of the E2M1 grid with both signs, 6 (the block max) and a negative zero: 16 values.
_TIES = [6.0, *E2M1_BOUNDS, *(-b for b in E2M1_BOUNDS), -0.0]


def _assert_same_bits(new: torch.Tensor, old: torch.Tensor) -> None:
    """Equal dtype, shape and bit patterns (so +0 ≠ −0); NaN where the other is NaN, whatever its payload."""
    assert new.dtype == old.dtype and new.shape == old.shape
    nan = torch.isnan(old)
    assert torch.equal(torch.isnan(new), nan)
    assert torch.equal(new[~nan].view(_INT[new.dtype]), old[~nan].view(_INT[old.dtype]))


# --------------------------------------------------------------------------- the E2M1 rounding

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rounding_on_every_16_bit_pattern(dtype: torch.dtype) -> None:
    x = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16).view(dtype)
    _assert_same_bits(round_e2m1_half_even(x), old_round_e2m1_half_even(x))
    _assert_same_bits(round_e2m1_half_even(x.float()), old_round_e2m1_half_even(x.float()))


def test_rounding_float32_around_every_grid_point_and_midpoint() -> None:
    points = torch.tensor([*E2M1_MAGNITUDES, *E2M1_BOUNDS, 6.0, 8.0, 1e-30, 1.0e38], dtype=torch.float32)
    bits = points.view(torch.int32)
    near = (bits[:, None] + torch.arange(-4, 5, dtype=torch.int32)).clamp(min=0).view(torch.float32).flatten()
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1.4e-45,
                            torch.finfo(torch.float32).max], dtype=torch.float32)
    x = torch.cat([near, -near, special])
    _assert_same_bits(round_e2m1_half_even(x), old_round_e2m1_half_even(x))


def test_rounding_float32_random_bit_patterns() -> None:
    g = torch.Generator().manual_seed(1)
    bits = torch.randint(-(1 << 31), 1 << 31, (1 << 18,), generator=g, dtype=torch.int64).to(torch.int32)
    scaled = torch.rand(1 << 18, generator=g) * 16 - 8  # and values where the grid is
    x = torch.cat([bits.view(torch.float32), scaled])
    _assert_same_bits(round_e2m1_half_even(x), old_round_e2m1_half_even(x))


def test_rounding_leaves_its_input_alone() -> None:
    x = torch.tensor([0.3, -7.0, -0.0])
    before = x.clone()
    round_e2m1_half_even(x)
    assert torch.equal(x.view(torch.int32), before.view(torch.int32))


# --------------------------------------------------------------------------- the quantisers

def _act(arith: str, static: float | None) -> ActQuant:
    if arith == "modelopt":
        return ActQuant(kind="nvfp4", granularity="group", group=16, static_scale=static, arith="modelopt")
    g = 1.0 / static if static else 1.0
    return ActQuant(kind="nvfp4", granularity="group", group=16, static_scale=1.0 / g, global_scale=g,
                    arith="compressed-tensors")


def _check(act: ActQuant, x: torch.Tensor) -> None:
    old = OLD_NVFP4[act.arith](act, x)
    _assert_same_bits(act.fake(x), old.float())  # what every caller gets ...
    _assert_same_bits(act._arith.fake(act, x), old)  # type: ignore[attr-defined]  # ... and before the cast


def _random(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(*shape, generator=g) * torch.rand(*shape[:-1], 1, generator=g) * 4
    return (rows * torch.exp2(torch.randint(-12, 12, (*shape[:-1], 1), generator=g).float())).to(dtype)


@pytest.mark.parametrize("arith", ["modelopt", "compressed-tensors"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [(1, 4096), (16, 4096), (3, 5, 1000), (2, 37)])
def test_random_activations(arith: str, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    x = _random(dtype, shape, seed=sum(shape))
    amax = float(x.float().abs().amax())
    for s2 in (amax / (6 * 448), amax * 0.3 / (6 * 448), amax * 7.0 / (6 * 448)):  # calibrated, clipping, loose
        _check(_act(arith, s2), x)
    if arith == "modelopt":
        _check(_act(arith, None), x)  # dynamic second-level scale


@pytest.mark.parametrize("arith", ["modelopt", "compressed-tensors"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_edges(arith: str, dtype: torch.dtype) -> None:
    ties = torch.tensor(_TIES)
    x = torch.zeros(6, 64)
    x[0] = 0.0  # an all-zero row
    x[1] = -0.0  # an all-negative-zero row
    x[2, :16] = ties  # with a second-level scale of 1, x / block scale is x: every tie exactly
    x[2, 16:32] = -ties
    x[2, 32:48] = ties * 2.0 ** -6  # the same ties in a block whose scale is a smaller power of two
    x[3, :16] = ties * 2.0 ** 7
    x[3, 16:32] = torch.nextafter(ties, torch.tensor(float("inf")))  # one step either side of each tie
    x[3, 32:48] = torch.nextafter(ties, torch.tensor(-float("inf")))
    x[4] = torch.finfo(dtype).max * torch.linspace(-1, 1, 64)  # large, no inf
    x[5, ::2] = -0.0
    x[5, 1::2] = torch.tensor(1e-3)
    x = x.to(dtype)
    for s2 in (1.0, 2.0 ** -10, 1e-3, 37.5):
        _check(_act(arith, s2), x)
    _check(_act(arith, 1.0), x[2:4, :48])  # a width that is no multiple of the row's blocks
    if arith == "modelopt":
        _check(_act(arith, None), x[2:4])


def test_the_edges_reach_every_tie() -> None:
    """The tie row is what it claims: the old rounding sees exact midpoints there."""
    act = _act("modelopt", 1.0)
    y = act.fake(torch.tensor([_TIES]))
    assert y[0, 1:8].tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0]  # 0.25 0.75 1.25 1.75 2.5 3.5 5 → even codes
    assert y[0, 15].view(torch.int32) == 0  # −0 quantizes to +0
