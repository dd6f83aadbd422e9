"""The DeepSeek-V3-scale sparse checkpoint: written, read, inventoried, classified.

How fast is benchmarks/audit_scale.py's job (docs/benchmarks.md), not a timed unit test's.
"""

from __future__ import annotations

import runpy
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "audit_scale_data.py"


def test_deepseek_scale_checkpoint(tmp_path: Path) -> None:
    bench = runpy.run_path(str(BENCHMARK))
    count = bench["write_synthetic_deepseek_checkpoint"](tmp_path, shards=163)
    assert count > 150_000
    # Sparse: ~400 GB of logical data on (almost) no disk.
    shards = sorted(tmp_path.glob("*.safetensors"))
    assert len(shards) == 163
    logical = sum(p.stat().st_size for p in shards)
    on_disk = sum(p.stat().st_blocks * 512 for p in shards)
    assert logical > 300e9 and on_disk < 200e6

    from quantresolve.checkpoint import build_inventory, classify_inventory, read_checkpoint

    catalog = read_checkpoint(tmp_path)
    evidence = classify_inventory(build_inventory(catalog))
    assert len(catalog.tensors) == count
    header_bytes = 0
    for shard in shards:
        with open(shard, "rb") as handle:
            header_bytes += 8 + int.from_bytes(handle.read(8), "little")
    assert catalog.total_bytes == logical - header_bytes
    assert evidence["model.layers.3.mlp.experts.255.down_proj"].kind == "nvfp4"
    assert evidence["model.layers.3.mlp.experts.255.down_proj"].logical_shape == (7168, 2048)
    assert evidence["model.layers.3.self_attn.q_a_proj"].kind == "dense"  # excluded: BF16
    assert evidence["model.layers.3.self_attn.o_proj"].kind == "nvfp4"
    assert evidence["model.layers.61.mlp.experts.0.up_proj"].kind == "dense"  # MTP layer excluded
    assert evidence["model.layers.3.self_attn"].has_kv_scales
    assert evidence["lm_head"].kind == "dense"
