"""Tensor parallelism on torch.distributed: 2 processes on CPU over gloo (``tp_worker``), layer 0 of the
fixture checkpoints, the producers' own tensors.

Tolerances, as max |difference| / max |TP=1 output|:

- column-parallel (gate/up, fused q/k/v) gathered: **bit-identical** to TP=1, both paths;
- row-parallel MLP, float32 reference path: ≤ 1e-6 (the same sum in another order);
- row-parallel MLP, backend path (bf16 out): ≤ 2⁻⁷, two bf16 steps (each rank's partial sum is rounded
  to bf16 before the float32 all-reduce, TP=1 rounds once);
- schemes whose activations get a *dynamic per-token* scale (W8A8, FP8 dynamic, FP8 per-channel-per-token,
  LLM.int8): each rank computes the scale on its K slice, as TP engines do — ≤ 5e-2 against TP=1, and
  bit-identical to a single-process emulation of the ranks.

The distributed result equals that emulation bit for bit for every scheme (the communication adds
nothing), and both ranks hold the same output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .tp_fixture_layers import available, layer_schemes
from .tp_worker import NAMES, SKIP

REPO = Path(__file__).resolve().parents[2]
WORLD = 2
#: Fixtures whose down_proj quantizes its input with a dynamic per-token scale.
LOCAL_SCALES = {"ct-w8a8", "ct-fp8-dynamic", "modelopt-fp8-pc-pt", "bnb-int8"}
ROW_REFERENCE_TOL, ROW_FORWARD_TOL, LOCAL_SCALE_TOL = 1e-6, 2.0 ** -7, 5e-2


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, object]]]:
    """Both ranks' results (one launch for the whole module: a few seconds)."""
    directory = tmp_path_factory.mktemp("tp")
    # Resolved here, so the ranks need not import compressed-tensors (and transformers) to resolve.
    schemes = {n: {k: s.model_dump(mode="json") for k, s in layer_schemes(n).items()} for n in NAMES if available(n)}
    (directory / "schemes.json").write_text(json.dumps(schemes))
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
                        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.dispatch.tp_worker", str(rank), str(WORLD),
                               str(directory)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for rank in range(WORLD)]
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        outputs.append(out.decode(errors="replace"))
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-4000:] for o in outputs)
    return [torch.load(directory / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def _cases(layer: str) -> list[str]:
    return [n for n in NAMES if (n, layer) not in SKIP]


def _need(name: str) -> None:
    if not available(name):
        pytest.skip(f"fixture {name} not generated")


def test_both_ranks_hold_the_same_outputs(runs: list[dict[str, dict[str, object]]]) -> None:
    keys = [k for k in runs[0] if k.startswith(f"tp{WORLD}/")]
    assert keys, "no fixture was run"
    for key in keys:
        for layer, value in runs[0][key].items():
            other = runs[1][key][layer]
            if isinstance(value, tuple):
                assert all(torch.equal(a, b) for a, b in zip(value, other, strict=True)), (key, layer)


@pytest.mark.parametrize(("name", "layer"), [(n, layer) for layer in ("gate_up", "qkv") for n in _cases(layer)])
def test_column_parallel_gathers_to_tp1_exactly(runs: list[dict[str, dict[str, object]]], name: str,
                                                layer: str) -> None:
    _need(name)
    forward, reference = runs[0][f"tp{WORLD}/{name}"][layer]
    forward1, reference1 = runs[0][f"tp1/{name}"][layer]
    assert torch.equal(forward, forward1)
    assert torch.equal(reference, reference1)
    assert forward.shape == (4, {"gate_up": 512, "qkv": 256}[layer])


@pytest.mark.parametrize("name", _cases("mlp"))
def test_row_parallel_mlp_matches_tp1(runs: list[dict[str, dict[str, object]]], name: str) -> None:
    _need(name)
    result = runs[0][f"tp{WORLD}/{name}"]
    forward, reference = result["mlp"]
    forward1, reference1 = runs[0][f"tp1/{name}"]["mlp"]
    assert result["local_activation_scales"] == (name in LOCAL_SCALES)
    assert torch.isfinite(forward).all() and forward.dtype == torch.bfloat16 and forward.shape == (4, 128)
    if name in LOCAL_SCALES:
        assert _rel(reference, reference1) <= LOCAL_SCALE_TOL
        assert _rel(forward, forward1) <= LOCAL_SCALE_TOL
    else:
        assert _rel(reference, reference1) <= ROW_REFERENCE_TOL
        assert _rel(forward, forward1) <= ROW_FORWARD_TOL


@pytest.mark.parametrize("name", _cases("mlp"))
def test_distributed_equals_the_single_process_emulation(runs: list[dict[str, dict[str, object]]],
                                                         name: str) -> None:
    _need(name)
    result, emulated = runs[0][f"tp{WORLD}/{name}"], runs[WORLD - 1][f"emulated/{name}"]
    for layer in ("gate_up", "mlp", "qkv"):
        if (name, layer) in SKIP:
            continue
        assert all(torch.equal(a, b) for a, b in zip(result[layer], emulated[layer], strict=True)), layer
    # The row layer splitting a gathered input itself gives the same result as the parallel input.
    assert all(torch.equal(a, b) for a, b in zip(result["mlp"], result["mlp_gathered"], strict=True))
