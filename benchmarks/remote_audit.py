"""Remote audit of a 163-shard DeepSeek-V3.1-NVFP4-shaped repository served with an emulated round trip.

The repository is the synthetic ModelOpt NVFP4 export of :mod:`audit_scale_data` (180,669 tensors;
config and ``hf_quant_config.json`` from ``../shared/corpus/nvidia__DeepSeek-V3.1-NVFP4`` when present,
else the built-in copies of the same shape), kept in memory as headers only: each shard is served
as its header followed by zeros up to its full size (~2.4 GB each), never stored. The server is
``tests/hub_server.py`` on loopback with ``--rtt`` seconds (default 0.05) added to every request.

Three clients, each a fresh process with ``HF_ENDPOINT`` pointing at the server and an empty
``HF_HUB_CACHE``, run one after the other against the same server (their order rotates per repeat):

- ``quantresolve``: ``quantresolve audit nvidia/DeepSeek-V3.1-NVFP4 --format json`` — the whole
  command (interpreter, imports, metadata files, 163 shard headers by range requests, the audit, JSON);
  its header-fetch phase is also timed in-process (``locate`` + ``read_checkpoint``);
- ``sequential``: a loop of ``HfApi().parse_safetensors_file_metadata`` over the index's shards, one
  after the other (what a plain per-shard loop costs);
- ``hub-threaded``: ``HfApi().get_safetensors_metadata`` itself (its thread pool: ``min(32, cpus + 4)``);
- ``local``: ``quantresolve audit DIR`` of the same checkpoint written as sparse files (what the
  remote audit costs beyond a local one, on the same machine at the same time).

Printed per client: wall seconds (median of ``--repeats``), requests, bytes; the last line reads::

    remote_audit: shards=163 rtt_ms=50 quantresolve_s=X headers_s=Y sequential_s=Z hub_threaded_s=W requests=N mib=M

Usage::

    python benchmarks/remote_audit.py [--rtt 0.05] [--repeats 3] [--skip-sequential]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from audit_scale_data import (  # noqa: E402
    load_config,
    load_quant_config,
    shard_header,
    synthetic_checkpoint,
    write_synthetic_deepseek_checkpoint,
)

from tests.hub_server import Body, HubServer  # noqa: E402

REPO_ID = "nvidia/DeepSeek-V3.1-NVFP4"

_HEADERS_ONLY = """
import json, sys, time
t0 = time.perf_counter()
from quantresolve.checkpoint import locate, read_checkpoint
from quantresolve.formats.loader import metadata_files
t1 = time.perf_counter()
with locate(sys.argv[1], files=metadata_files()) as where:
    catalog = read_checkpoint(where.path, shards=where.shards)
t2 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "headers_s": t2 - t1, "tensors": len(catalog.tensors),
                  "requests": where.shards.requests, "bytes": where.shards.bytes_read}))
"""

_SEQUENTIAL = """
import json, sys, time
from huggingface_hub import HfApi, hf_hub_download
t0 = time.perf_counter()
api = HfApi()
index = json.load(open(hf_hub_download(sys.argv[1], "model.safetensors.index.json")))
tensors = 0
for shard in sorted(set(index["weight_map"].values())):
    tensors += len(api.parse_safetensors_file_metadata(sys.argv[1], shard).tensors)
print(json.dumps({"s": time.perf_counter() - t0, "tensors": tensors}))
"""

_HUB_THREADED = """
import json, sys, time
from huggingface_hub import HfApi
from huggingface_hub.utils import disable_progress_bars
disable_progress_bars()
t0 = time.perf_counter()
meta = HfApi().get_safetensors_metadata(sys.argv[1])
print(json.dumps({"s": time.perf_counter() - t0,
                  "tensors": sum(len(f.tensors) for f in meta.files_metadata.values())}))
"""


def serve(rtt: float) -> tuple[HubServer, int]:
    """The repository on a started server; returns it and the number of shards."""
    config = load_config()
    by_shard, index = synthetic_checkpoint(config, load_quant_config())
    files = {"config.json": Body.of(json.dumps(config, indent=2).encode()),
             "hf_quant_config.json": Body.of(json.dumps(load_quant_config(), indent=4).encode()),
             "model.safetensors.index.json": Body.of(json.dumps(index, indent=2).encode())}
    for name, entries in by_shard.items():
        head, data = shard_header(entries)
        files[name] = Body(head, len(head) + data)
    server = HubServer(delay=rtt).start()
    server.add_repo(REPO_ID, files)
    return server, len(by_shard)


def _client(server: HubServer, argv: list[str]) -> tuple[float, dict, int, int]:
    """Run one client process; (wall seconds, its JSON line or {}, requests, body bytes) — as the server saw them."""
    with tempfile.TemporaryDirectory(prefix="remote-audit-bench-") as tmp:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_CACHE": str(Path(tmp) / "cache"),
               "HF_HOME": str(Path(tmp) / "home"), "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(ROOT)}
        env.pop("HF_HUB_OFFLINE", None)
        server.reset()
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp, timeout=600)
        wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"client failed ({done.returncode}): {' '.join(argv)}\n{done.stderr}")
    hits = [h for h in server.hits if not h.path.startswith("/api/agent")]
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    parsed = json.loads(last) if last.startswith("{") else {}
    return wall, parsed, len(hits), sum(h.sent for h in hits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=float, default=0.05, help="seconds added to every request (default 0.05)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-sequential", action="store_true", help="skip the slow sequential loop")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    server, shards = serve(args.rtt)
    print(f"serving {shards} shards of {REPO_ID} at {server.url} (+{args.rtt * 1000:.0f} ms per request), "
          f"built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    py = sys.executable
    local_dir = tempfile.TemporaryDirectory(prefix="remote-audit-local-")
    write_synthetic_deepseek_checkpoint(local_dir.name)
    clients = {
        "local": [py, "-m", "quantresolve", "audit", local_dir.name, "--format", "json", "--output", os.devnull],
        "quantresolve": [py, "-m", "quantresolve", "audit", REPO_ID, "--format", "json", "--output", os.devnull],
        "headers": [py, "-c", _HEADERS_ONLY, REPO_ID],
        "hub-threaded": [py, "-c", _HUB_THREADED, REPO_ID],
        **({} if args.skip_sequential else {"sequential": [py, "-c", _SEQUENTIAL, REPO_ID]}),
    }
    runs: dict[str, list[tuple[float, dict, int, int]]] = {name: [] for name in clients}
    names = list(clients)
    for repeat in range(args.repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            if name == "sequential" and repeat > 0:
                continue  # ~10 s a run: once is enough to see the order of magnitude
            runs[name].append(_client(server, clients[name]))
    server.stop()
    local_dir.cleanup()
    print(f"{'client':14} {'wall s (median)':>16} {'runs':>5} {'requests':>9} {'MiB':>8}  notes")
    summary: dict[str, float] = {}
    for name, results in runs.items():
        wall = statistics.median(r[0] for r in results)
        _, info, requests, sent = results[-1]
        note = ""
        if name == "headers":
            wall = statistics.median(r[1]["headers_s"] for r in results)
            note = (f"in-process locate + read_checkpoint; {info['tensors']} tensors; client counted "
                    f"{info['requests']} range requests, {info['bytes'] / 2**20:.1f} MiB")
        elif info.get("tensors"):
            note = f"{info['tensors']} tensors (wall includes interpreter start and imports)"
        elif name == "local":
            note, requests, sent = "the same audit from sparse local files (no server)", 0, 0
        summary[name] = wall
        print(f"{name:14} {wall:16.2f} {len(results):5d} {requests:9d} {sent / 2**20:8.1f}  {note}")
    q = runs["quantresolve"][-1]
    print(f"remote_audit: shards={shards} rtt_ms={args.rtt * 1000:.0f} quantresolve_s={summary['quantresolve']:.2f} "
          f"local_s={summary['local']:.2f} "
          f"headers_s={summary['headers']:.2f} sequential_s={summary.get('sequential', float('nan')):.2f} "
          f"hub_threaded_s={summary['hub-threaded']:.2f} requests={q[2]} mib={q[3] / 2**20:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
