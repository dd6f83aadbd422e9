"""Stream checkpoint tensors shard by shard: one open shard, one tensor in flight.

Each tensor is read from its safetensors shard only when its turn comes and is
handed straight to its target, which keeps it in the checkpoint's own
(quantized) format; nothing holds the dense model or the whole checkpoint, so
peak memory stays near the quantized size (``benchmarks/load_memory.py``).

    >>> import tempfile, torch
    >>> from pathlib import Path
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
from safetensors import SafetensorError, safe_open

from quantresolve.errors import CheckpointError
from quantresolve.integrations.transformers.route import Route


def stream_tensors(root: str | Path, routes: Iterable[Route], device: str | torch.device = "cpu"
                   ) -> Iterator[tuple[Route, torch.Tensor]]:
    """Yield ``(route, tensor)`` for every route, reading shards one at a time in file order."""
    ordered = sorted(routes, key=lambda r: (r.file, r.tensor))
    for file, group in groupby(ordered, key=lambda r: r.file):
        try:
            with safe_open(str(Path(root) / file), framework="pt", device=str(device)) as handle:
                for route in group:
                    yield route, handle.get_tensor(route.tensor)
        except SafetensorError as err:
            raise CheckpointError(f"cannot read tensor data: {err}", file=file) from None
