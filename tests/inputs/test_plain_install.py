"""The install a user runs: ``pip install -c constraints.txt -e .`` (no extra) does the main job.

The README's main-job install has none of torch, transformers, accelerate, compressed-tensors,
nvidia-modelopt, bitsandbytes, triton or gemlite. This test runs the CLI in a fresh interpreter in
which importing any of them fails as it would there (a ``sys.meta_path`` blocker), and for every
fixture checkpoint (``fixtures/checkpoints/*`` and ``fixtures/families/*/checkpoint``) runs
``inspect``, ``resolve`` and ``audit``: each must end with exit 0 or 1 (findings), never 2 or a
traceback, and torch must still be absent from ``sys.modules`` afterwards. ``run`` and ``kernels``
must say which extra to install, in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CHECKPOINTS, FIXTURES, REPO

#: What the plain install lacks (the extras' packages, by import name).
ABSENT = ("torch", "transformers", "accelerate", "compressed_tensors", "modelopt", "bitsandbytes", "triton",
          "gemlite", "yaml")

_DRIVER = r'''
import contextlib, io, json, sys
ABSENT = set(sys.argv[1].split(","))

class Absent:
    """Import finder of a machine where the extras are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from quantresolve.cli.main import main

results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except BaseException as exc:  # a traceback: the test reports it
            import traceback
            rc, err = "raised", io.StringIO(traceback.format_exc())
    results.append({"argv": argv, "rc": rc, "stderr": err.getvalue()})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ABSENT)
print(json.dumps({"results": results, "loaded": loaded}))
'''


def _fixtures() -> list[Path]:
    found = [p for p in sorted(CHECKPOINTS.iterdir()) if (p / "config.json").is_file()]
    found += [p for p in sorted((FIXTURES / "families").glob("*/checkpoint")) if (p / "config.json").is_file()]
    return found


def _drive(commands: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", _DRIVER, ",".join(ABSENT), json.dumps(commands)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_fixture_inspects_resolves_and_audits_without_the_extras() -> None:
    fixtures = _fixtures()
    assert len(fixtures) >= 40
    commands = []
    for path in fixtures:
        commands += [["inspect", str(path), "--json"], ["resolve", str(path), "lm_head", "model.layers.0.mlp.down_proj"],
                     ["audit", str(path), "--format", "json"]]
    report = _drive(commands)
    bad = [r for r in report["results"] if r["rc"] not in (0, 1)]
    assert not bad, "\n".join(f"{' '.join(r['argv'])}: {r['rc']}: {r['stderr'][-400:]}" for r in bad[:10])
    assert report["loaded"] == []


def test_commands_that_need_an_extra_say_which() -> None:
    ckpt = str(CHECKPOINTS / "ct-w4a16")
    report = _drive([["run", ckpt, "--prompt-ids", "1,2"], ["kernels", "--scheme", "W4A16", "--shape", "64x64"]])
    for result in report["results"]:
        lines = result["stderr"].strip().splitlines()
        assert result["rc"] == 2 and len(lines) == 1, result
        assert "install the 'run' extra" in lines[0] and "quantresolve[run]" in lines[0], lines[0]


def test_the_blocker_blocks() -> None:
    """The simulation must be able to fail: importing torch under it raises."""
    probe = ("import sys\nclass A:\n    def find_spec(self, n, p=None, t=None):\n"
             "        if n.split('.')[0] == 'torch': raise ModuleNotFoundError(n, name=n)\n"
             "sys.meta_path.insert(0, A())\ntry:\n    import torch\nexcept ModuleNotFoundError:\n    print('blocked')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "blocked"
