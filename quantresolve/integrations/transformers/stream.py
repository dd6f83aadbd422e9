"""Stream checkpoint tensors shard by shard: one open shard, one tensor in flight.

Each tensor is read from its safetensors shard only when its turn comes, into memory
of its own (:mod:`.shard_reader`: no memory map that kept every touched page of the
checkpoint resident for as long as any tensor of it lived), and handed straight to its
target, which keeps it in the checkpoint's own (quantized) format. Nothing holds the
dense model or the whole checkpoint twice, so peak memory stays near the quantized size
(``benchmarks/load_memory.py``). Within a shard tensors are read in file order, so the
file is read front to back once.

    >>> import tempfile, torch
    >>> from safetensors.torch import save_file
    >>> d = Path(tempfile.mkdtemp()); save_file({"a.weight": torch.ones(2)}, str(d / "m.safetensors"))
    >>> [(r.tensor, t.tolist()) for r, t in stream_tensors(d, [Route("a.weight", "m.safetensors", "a", "weight")])]
    [('a.weight', [1.0, 1.0])]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from pathlib import Path

import torch

from quantresolve.integrations.transformers.route import Route
from quantresolve.integrations.transformers.shard_reader import ShardReader
from quantresolve.util.containment import Confinement


def stream_tensors(root: str | Path, routes: Iterable[Route], device: str | torch.device = "cpu"
                   ) -> Iterator[tuple[Route, torch.Tensor]]:
    """Yield ``(route, tensor)`` for every route, reading shards one at a time, each in file order."""
    target = torch.device(device)
    box = Confinement.of(root)  # the same containment as the header reader: every shard inside the checkpoint
    ordered = sorted(routes, key=lambda r: (r.file, r.tensor))
    for file, group in groupby(ordered, key=lambda r: r.file):
        path = box.locate(file)
        assert path is not None
        with ShardReader(path, file) as shard:
            for route in sorted(group, key=lambda r: shard.offset(r.tensor)):
                tensor = shard.read(route.tensor)
                # Off the CPU the host buffer is transient: dropped as soon as the copy is made.
                yield route, tensor if target.type == "cpu" else tensor.to(target)
