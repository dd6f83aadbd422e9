"""Mixed precision end to end: every installed layer's method is what the audit says for that layer.

``modelopt-mixed`` (``quantized_layers``: layer-0 attention FP8, every MLP projection NVFP4, the rest
unlisted → dense) and ``ct-mixed`` (two config groups: W4A16 MLP, FP8_DYNAMIC attention). Checked
under transformers naming (unfused, against ``audit_checkpoint(path, "transformers")``) and under
the fused ``llama`` profile (against the default audit, which picks ``llama`` from ``architectures``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quantresolve.audit import audit_checkpoint
from quantresolve.dispatch import QuantLinear
from quantresolve.integrations.transformers.fused import ShardView

from ..conftest import checkpoint_dir
from .loaded import loaded, logits

pytestmark = pytest.mark.filterwarnings("ignore")

MIXED = ("modelopt-mixed", "ct-mixed")


def _linear_units(name: str, profile: str | None) -> dict[str, tuple[str | None, str | None, int]]:
    report = audit_checkpoint(checkpoint_dir(name), profile)
    return {m.name: (m.algo, m.scheme, m.parts) for m in report.modules if m.kind in ("linear", "lm_head")}


@pytest.mark.parametrize("name", MIXED)
def test_unfused_layers_follow_the_audit(name: str) -> None:
    model = loaded(name)
    units = _linear_units(name, "transformers")
    linears = {n for n, m in model.named_modules() if isinstance(m, nn.Linear | QuantLinear)}
    assert set(units) == linears
    algos = set()
    for prefix, (algo, scheme, _) in units.items():
        module = model.get_submodule(prefix)
        if algo is None:
            assert type(module) is nn.Linear, prefix
            continue
        assert isinstance(module, QuantLinear), prefix
        assert module.scheme is not None and module.scheme.algo == algo, prefix
        assert module.scheme.summary() == scheme, prefix
        assert module.backend
        algos.add(algo)
    assert len(algos) == 2  # genuinely mixed
    report = model.quantresolve_report
    assert {r.prefix: r.algo for r in report.layers} == {p: u[0] for p, u in units.items()}


@pytest.mark.parametrize("name", MIXED)
def test_fused_layers_follow_the_default_audit(name: str) -> None:
    model = loaded(name, "llama")
    units = _linear_units(name, None)  # the audit picks the fused llama profile from architectures
    for prefix, (algo, scheme, parts) in units.items():
        record = model.quantresolve_report.layer(prefix)
        assert record.algo == algo and record.scheme == scheme, prefix
        assert len(record.members) == parts, prefix
        for member in record.members:
            module = model.get_submodule(member)
            if algo is None:
                assert type(module) is nn.Linear, member
            elif parts > 1:
                assert isinstance(module, ShardView) and module.fused is model.get_submodule(prefix), member
            else:
                assert isinstance(module, QuantLinear), member


@pytest.mark.parametrize("name", MIXED)
def test_fused_and_unfused_loads_compute_the_same(name: str) -> None:
    assert torch.equal(logits(name), logits(name, "llama"))
