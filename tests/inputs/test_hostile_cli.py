"""Hostile inputs through the installed command line: one line on stderr, exit 2, no hang.

Each case builds its input from a real fixture (one edit each) and runs ``python -m quantresolve``
in a fresh process with a 10 s timeout — a hang guard, not a speed test. The first block is the
list of issue 14 ("hostile inputs that still slip through"); the rest are our own. Every message
must name where the problem is (``needles``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, checkpoint_dir

#: The hang guard: a refusal must come back well within this (import of torch included).
TIMEOUT_S = 10

Builder = Callable[[Path], list[str]]


def _copy(tmp: Path, name: str) -> Path:
    dst = tmp / name
    shutil.copytree(checkpoint_dir(name), dst, ignore=shutil.ignore_patterns("reference.safetensors"))
    return dst


def _edit(path: Path, edit: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _ct(tmp: Path, edit: Callable[[dict], object], name: str = "ct-w4a16") -> Path:
    """A copy of a compressed-tensors fixture with its quantization_config edited."""
    ckpt = _copy(tmp, name)
    _edit(ckpt / "config.json", lambda d: edit(d["quantization_config"]))
    return ckpt


def _w(tmp: Path, **weights: object) -> Path:
    return _ct(tmp, lambda q: q["config_groups"]["group_0"]["weights"].update(weights))


def _hf(tmp: Path, edit: Callable[[dict], object], name: str = "modelopt-mixed") -> Path:
    """A copy of a ModelOpt fixture with its hf_quant_config.json ``quantization`` edited."""
    ckpt = _copy(tmp, name)
    _edit(ckpt / "hf_quant_config.json", lambda d: edit(d["quantization"]))
    return ckpt


def _cfg(tmp: Path, edit: Callable[[dict], object], name: str = "ct-w4a16") -> Path:
    ckpt = _copy(tmp, name)
    _edit(ckpt / "config.json", edit)
    return ckpt


def _replace(ckpt: Path, name: str, make: Callable[[Path], object]) -> Path:
    (ckpt / name).unlink()
    make(ckpt / name)
    return ckpt


RUN = ["--prompt-ids", "1,2,3", "--max-new-tokens", "2"]
PREFIX = "model.layers.0.mlp.down_proj"
SLOW_NAME = "a" * 40 + "b"

# (case id, build(tmp) -> argv, substrings the one error line must contain)
CASES: list[tuple[str, Builder, list[str]]] = [
    # --- issue 14, part 4 ---
    ("shard-loop-audit", lambda t: ["audit", _replace(_copy(t, "ct-w4a16"), "model.safetensors",
                                                      lambda p: p.symlink_to(p.name))], ["model.safetensors", "loop"]),
    ("shard-loop-resolve", lambda t: ["resolve", _replace(_copy(t, "ct-w4a16"), "model.safetensors",
                                                          lambda p: p.symlink_to(p.name)), PREFIX],
     ["model.safetensors", "loop"]),
    ("shard-loop-run", lambda t: ["run", _replace(_copy(t, "ct-w4a16"), "model.safetensors",
                                                  lambda p: p.symlink_to(p.name)), *RUN], ["model.safetensors", "loop"]),
    ("architectures-int-run", lambda t: ["run", _cfg(t, lambda d: d.update(architectures=123)), *RUN],
     ["config.json", "architectures", "list"]),
    ("run-device-cuda", lambda t: ["run", checkpoint_dir("ct-w4a16"), *RUN, "--device", "cuda"],
     ["--device", "cuda", "accepted: cpu"]),
    ("catastrophic-regex-ignore", lambda t: ["resolve", _ct(t, lambda q: q.update(ignore=["re:(a|a)+$"])), SLOW_NAME],
     ["config.json", "quantization_config.ignore[0]", "(a|a)+$", "too slow"]),
    ("catastrophic-regex-target", lambda t: ["resolve", _ct(t, lambda q: q["config_groups"]["group_0"].update(
        targets=["re:(a|aa)+$"])), SLOW_NAME], ["config.json", "targets[0]", "(a|aa)+$"]),
    ("catastrophic-regex-audit", lambda t: ["audit", _ct(t, lambda q: q.update(ignore=["re:(.|.)*\\d$"]))],
     ["config.json", "ignore[0]", "too slow"]),
    ("num-hidden-layers-huge-run", lambda t: ["run", _cfg(t, lambda d: d.update(num_hidden_layers=10_000_000)), *RUN],
     ["config.json", "num_hidden_layers", "10000000", "accepted: 1 to 2"]),
    ("max-new-tokens-huge", lambda t: ["run", checkpoint_dir("ct-w4a16"), "--prompt-ids", "1", "--max-new-tokens",
                                       "1000000000"], ["--max-new-tokens", "max_position_embeddings", "accepted"]),
    ("modelopt-group-size-zero", lambda t: ["inspect", _hf(t, lambda q: q["quantized_layers"][
        "model.layers.0.mlp.gate_proj"].update(group_size=0))], ["hf_quant_config.json", "group_size", "accepted"]),
    ("ct-num-bits-99", lambda t: ["inspect", _w(t, num_bits=99)], ["config.json", "weights.num_bits", "1 to 32"]),
    ("ct-num-bits-99-audit", lambda t: ["audit", _w(t, num_bits=99)], ["config.json", "num_bits"]),
    ("ct-group-size-negative", lambda t: ["inspect", _w(t, group_size=-16)], ["config.json", "group_size"]),
    ("ct-group-size-1e30", lambda t: ["resolve", _w(t, group_size=1e30), PREFIX],
     ["config.json", "weights.group_size", "integer"]),
    ("modelopt-group-size-negative", lambda t: ["resolve", _hf(t, lambda q: q["quantized_layers"][
        "model.layers.0.mlp.gate_proj"].update(group_size=-16)), PREFIX], ["hf_quant_config.json", "group_size"]),
    ("modelopt-group-size-1e30", lambda t: ["inspect", _hf(t, lambda q: q["quantized_layers"][
        "model.layers.0.mlp.gate_proj"].update(group_size=1e30))], ["hf_quant_config.json", "group_size"]),
    ("config-json-null", lambda t: ["inspect", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                        lambda p: p.write_text("null"))], ["config.json", "NoneType"]),
    ("config-json-directory", lambda t: ["audit", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                           lambda p: p.mkdir())], ["config.json", "directory"]),
    ("config-json-loop", lambda t: ["resolve", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                        lambda p: p.symlink_to(p.name)), PREFIX],
     ["config.json", "symlink loop"]),
    ("kernels-shape-0x0", lambda t: ["kernels", "--scheme", "W4A16", "--shape", "0x0"], ["--shape", "accepted"]),
    ("kernels-device-cuda", lambda t: ["kernels", "--scheme", "NVFP4", "--shape", "64x64", "--device", "cuda"],
     ["--device", "accepted: cpu"]),
    # --- our own ---
    ("config-json-fifo", lambda t: ["inspect", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                        lambda p: os.mkfifo(p))], ["config.json", "not a regular file"]),
    ("config-json-to-dev-zero", lambda t: ["inspect", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                               lambda p: p.symlink_to("/dev/zero"))],
     ["config.json", "outside"]),
    ("config-json-dangling", lambda t: ["inspect", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                            lambda p: p.symlink_to("gone.json"))],
     ["config.json", "dangling"]),
    ("config-json-top-list", lambda t: ["inspect", _replace(_copy(t, "ct-w4a16"), "config.json",
                                                            lambda p: p.write_text("[]"))], ["config.json", "list"]),
    ("sidecar-directory", lambda t: ["inspect", _replace(_copy(t, "modelopt-mixed"), "hf_quant_config.json",
                                                         lambda p: p.mkdir())], ["hf_quant_config.json", "directory"]),
    ("sidecar-loop", lambda t: ["audit", _replace(_copy(t, "modelopt-mixed"), "hf_quant_config.json",
                                                  lambda p: p.symlink_to(p.name))], ["hf_quant_config.json", "loop"]),
    ("index-directory", lambda t: ["audit", _mkdir(_copy(t, "ct-w4a16"), "model.safetensors.index.json")],
     ["model.safetensors.index.json", "directory"]),
    ("index-loop", lambda t: ["audit", _loop(_copy(t, "ct-w4a16"), "model.safetensors.index.json")],
     ["model.safetensors.index.json", "loop"]),
    ("shard-directory", lambda t: ["audit", _replace(_copy(t, "ct-w4a16"), "model.safetensors",
                                                     lambda p: p.mkdir())], ["model.safetensors", "directory"]),
    ("shard-dangling-run", lambda t: ["run", _replace(_copy(t, "ct-w4a16"), "model.safetensors",
                                                      lambda p: p.symlink_to("gone.safetensors")), *RUN],
     ["model.safetensors", "dangling"]),
    ("ct-regex-invalid", lambda t: ["inspect", _ct(t, lambda q: q.update(ignore=["re:(lm_head"]))],
     ["config.json", "ignore[0]", "invalid regular expression"]),
    ("ct-regex-empty", lambda t: ["inspect", _ct(t, lambda q: q.update(ignore=["re:"]))],
     ["config.json", "ignore[0]", "empty regular expression"]),
    ("ct-num-bits-zero", lambda t: ["inspect", _w(t, num_bits=0)], ["config.json", "num_bits"]),
    ("ct-float-five-bits", lambda t: ["inspect", _w(t, type="float", num_bits=5, zp_dtype="float8_e4m3fn")],
     ["config.json", "num_bits", "4, 6 or 8"]),
    ("ct-format-holds-other-weights", lambda t: ["inspect", _ct(t, lambda q: q["config_groups"]["group_0"].update(
        format="nvfp4-pack-quantized"))], ["config.json", "format", "4-bit float"]),
    ("ct-pack-nine-bits", lambda t: ["inspect", _w(t, num_bits=9)], ["config.json", "pack-quantized", "1- to 8-bit"]),
    ("ct-block-huge", lambda t: ["inspect", _w(t, strategy="block", group_size=None,
                                               block_structure=[1 << 21, 128])], ["config.json", "block_structure"]),
    ("ct-kv-bits-99", lambda t: ["inspect", _ct(t, lambda q: q.update(kv_cache_scheme={"num_bits": 99}))],
     ["config.json", "kv_cache_scheme.num_bits"]),
    ("ct-top-format-null", lambda t: ["inspect", _ct(t, lambda q: q.update(format=None))],
     ["config.json", "quantization_config.format"]),
    ("ct-group-format-fakequant", lambda t: ["inspect", _ct(t, lambda q: q["config_groups"]["group_0"].update(
        format="fakequant"))], ["config.json", "format"]),
    ("ct-status-unknown", lambda t: ["inspect", _ct(t, lambda q: q.update(quantization_status="done"))],
     ["config.json", "quantization_status"]),
    ("ct-static-token", lambda t: ["inspect", _w(t, strategy="token", group_size=None)],
     ["config.json", "weights", "dynamic"]),
    ("ct-type-unknown", lambda t: ["audit", _w(t, type="uint")], ["config.json", "weights.type"]),
    ("modelopt-flat-group-size-zero", lambda t: ["inspect", _cfg(t, lambda d: d["quantization_config"].update(
        group_size=0), name="modelopt-nvfp4")], ["group_size", "accepted"]),
    ("architectures-string-audit", lambda t: ["audit", _cfg(t, lambda d: d.update(architectures="LlamaForCausalLM"))],
     ["config.json", "architectures"]),
    ("architectures-numbers-resolve", lambda t: ["resolve", _cfg(t, lambda d: d.update(architectures=[1, 2])), PREFIX],
     ["config.json", "architectures"]),
    ("num-hidden-layers-string-run", lambda t: ["run", _cfg(t, lambda d: d.update(num_hidden_layers="2")), *RUN],
     ["config.json", "num_hidden_layers"]),
    ("num-hidden-layers-negative-run", lambda t: ["run", _cfg(t, lambda d: d.update(num_hidden_layers=-1)), *RUN],
     ["config.json", "num_hidden_layers"]),
    ("hidden-size-zero-run", lambda t: ["run", _cfg(t, lambda d: d.update(hidden_size=0)), *RUN], ["config.json"]),
    ("run-device-meta", lambda t: ["run", checkpoint_dir("ct-w4a16"), *RUN, "--device", "meta"],
     ["--device", "accepted: cpu, cuda"]),
    ("run-device-cuda-7", lambda t: ["run", checkpoint_dir("ct-w4a16"), *RUN, "--device", "cuda:7"], ["--device"]),
    ("run-dtype-unknown", lambda t: ["run", checkpoint_dir("ct-w4a16"), *RUN, "--dtype", "float99"], ["dtype"]),
    ("run-not-a-directory", lambda t: ["run", t / "nothing-here", *RUN], ["nothing-here"]),
    ("kernels-shape-huge", lambda t: ["kernels", "--scheme", "W4A16", "--shape", "99999999x4096"], ["--shape"]),
    ("kernels-batch-negative", lambda t: ["kernels", "--scheme", "W4A16", "--shape", "64x64", "--batch", "-1"],
     ["--batch", "accepted"]),
    ("kernels-device-tpu", lambda t: ["kernels", "--scheme", "W4A16", "--shape", "64x64", "--device", "tpu"],
     ["--device", "accepted"]),
    ("profile-directory", lambda t: ["resolve", checkpoint_dir("ct-w4a16"), PREFIX, "--profile", _mkdir(t, "p.json")],
     ["p.json"]),
    ("profile-catastrophic-unquantized", lambda t: ["resolve", checkpoint_dir("ct-w4a16"), SLOW_NAME, "--profile",
                                                    _profile(t, unquantized_modules=["(a|aa)+$"])],
     ["unquantized_modules[0]", "too slow"]),
    ("profile-catastrophic-mapper-regex", lambda t: ["audit", checkpoint_dir("ct-w4a16"), "--profile",
                                                     _profile(t, mapper={"orig_to_new_regex": {"(.|.)*\\d$": "x"}})],
     ["profile.json", "orig_to_new_regex", "too slow"]),
    ("profile-expert-regex-without-index", lambda t: ["audit", checkpoint_dir("ct-w4a16"), "--profile",
                                                      _profile(t, expert_containers=[".*experts"])],
     ["expert_containers[0]", "(?P<container>"]),
    ("inspect-json-file-loop", lambda t: ["inspect", _loop(t, "q.json")], ["q.json"]),
    ("inspect-directory-loop", lambda t: ["inspect", _loop(t, "ckpt")], ["ckpt"]),
    ("audit-output-is-directory", lambda t: ["audit", checkpoint_dir("ct-w4a16"), "--output", _mkdir(t, "out")],
     ["out", "Is a directory"]),
]


def _mkdir(parent: Path, name: str) -> Path:
    (parent / name).mkdir()
    return parent if name.endswith("index.json") else parent / name


def _loop(parent: Path, name: str) -> Path:
    (parent / name).symlink_to(name)
    return parent if name.endswith("index.json") else parent / name


def _profile(tmp: Path, **fields: object) -> Path:
    path = tmp / "profile.json"
    path.write_text(json.dumps({"name": "hostile", **fields}))
    return path


ISSUE_CASES = 22


def test_case_counts() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) - ISSUE_CASES >= 30


#: Commands that must import torch before they can refuse (a device check needs torch itself).
TORCH_COMMANDS = frozenset({"run", "kernels"})


@pytest.fixture(scope="module")
def torch_import_s() -> float:
    """What importing torch and transformers costs on this machine right now (a loaded shared box can
    take several seconds): the hang guard of a torch command is 10 s on top of it, not a speed target."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, transformers, accelerate"], check=True)
    return time.perf_counter() - start


def _run_cli(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "quantresolve", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("case", "build", "needles"), CASES, ids=[c[0] for c in CASES])
def test_one_line_exit_2_no_hang(tmp_path: Path, case: str, build: Builder, needles: list[str],
                                 torch_import_s: float) -> None:
    args = [str(a) for a in build(tmp_path)]
    timeout = TIMEOUT_S + (torch_import_s if args[0] in TORCH_COMMANDS else 0)
    try:
        done = _run_cli(args, tmp_path, timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: no answer within {timeout:.0f} s: quantresolve {' '.join(args)}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (case, done.returncode, done.stdout[-500:], done.stderr[-2000:])
    assert len(lines) == 1, (case, done.stderr[-2000:])
    assert lines[0].startswith(f"quantresolve {args[0]}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (case, needle, lines[0])


def test_a_pattern_that_backtracks_in_re_is_answered(tmp_path: Path) -> None:
    """``re:(a+)+$`` hung Python's re on a long name; matched through the regex module it answers at once."""
    ckpt = _ct(tmp_path, lambda q: q.update(ignore=["re:(a+)+$"]))
    done = _run_cli(["resolve", str(ckpt), SLOW_NAME, PREFIX], tmp_path, TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split("\t")[1:3] == ["W4A16", "target:class"]


def test_a_plain_expert_container_regex_is_accepted(tmp_path: Path) -> None:
    from quantresolve.naming.profiles import load_profile

    profile = load_profile(_profile(tmp_path, expert_containers=[r".*\.mlp\.experts\.\d+\.\w+"]))
    assert profile.expert_of("model.layers.3.mlp.experts.12.down_proj") == (
        "model.layers.3.mlp.experts", "12", "down_proj")
    assert profile.expert_of("model.layers.3.mlp.down_proj") is None


def test_the_plain_regex_profile_audits_a_moe_checkpoint(tmp_path: Path) -> None:
    path = _profile(tmp_path, expert_containers=[r".*\.mlp\.experts\.\d+\.\w+"],
                    packed_modules_mapping={})
    done = _run_cli(["audit", str(checkpoint_dir("ct-qwen3-moe-w4a16")), "--profile", str(path),
                     "--format", "json"], tmp_path, TIMEOUT_S)
    assert done.returncode in (0, 1), done.stderr
    kinds = {m["kind"] for m in json.loads(done.stdout)["modules"]}
    assert "moe" in kinds


def test_group_size_that_does_not_divide_the_input_dimension(tmp_path: Path) -> None:
    """A finding where the tensors tell the input dimension (256 here): 48 does not divide it."""
    ckpt = _hf(tmp_path, lambda q: q["quantized_layers"]["model.layers.0.mlp.down_proj"].update(group_size=48))
    done = _run_cli(["audit", str(ckpt), "--format", "json"], tmp_path, TIMEOUT_S)
    assert done.returncode == 1, done.stderr
    findings = [f for f in json.loads(done.stdout)["findings"] if f["code"] == "group-size-mismatch"]
    assert findings and "not a multiple" in findings[0]["message"], findings
