"""Every fixture and corpus folder, audited: exit code, grouped findings per severity, and which.

One table (:data:`EXPECTED`), one test per row, so that a change of severity (an error that should
be info, a warning that appears on every real checkpoint) shows as a failing row. A row names:

- ``fixtures/...``: a fixture checkpoint (real producers) or a family's index-only checkpoint;
- ``corpus:NAME``: a folder of ``../shared/corpus`` (skipped when the corpus is absent);
- ``layout:NAME``: the tensor layout of a corpus folder's config written as a sparse checkpoint
  (``benchmarks/audit_scale_data.py``, every layer and the real exclude list, 4 experts per layer).

and expects ``(exit code, (errors, warnings, info), grouped findings as "severity code ×count")``,
the groups in report order. After an intended change, print the new rows with
``.venv/bin/python tests/audit/test_expected_findings.py`` and review the difference.

Every model audits — dense ones, index-only and config-only folders (sized from the model
``config.json`` describes, as the CLI does it) — except the corpus folders in :data:`NOT_AUDITED`
(exit 2), listed with the reason; when one starts to audit it moves into :data:`EXPECTED`. Corpus
folders are audited once per test run, shared with the other corpus tests (``corpus_audit`` in ``conftest.py``).
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

if not __package__:  # run as a script (the row printer below): make the `tests` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.audit.conftest import CliResult, CorpusAudits, audit_json

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
BENCHMARK = REPO / "benchmarks" / "audit_scale_data.py"

#: (where, exit code, (errors, warnings, info), grouped findings in report order)
EXPECTED: list[tuple[str, int, tuple[int, int, int], tuple[str, ...]]] = [
    ("fixtures/checkpoints/bnb-int8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/bnb-nf4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-fp8-block", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-fp8-dynamic", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-fp8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-from-modelopt-nvfp4", 0, (0, 1, 0), ('warning stale-sidecar-config ×1',)),
    ("fixtures/checkpoints/ct-gemma3-mm", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-gemma4-mm", 0, (0, 0, 1), ('info absent-shard ×1',)),
    ("fixtures/checkpoints/ct-mixed", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-mxfp4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-nvfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-nvfp4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-qwen3-moe-fp8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-qwen3-moe-w4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-w4a16-asym", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-w4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-w8a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-w8a8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-fp8-pc-pt", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-fp8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-int4-awq", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-int8-sq", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-mixed", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-mxfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-nvfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-qwen3-moe-nvfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-qwen3.5-mixed", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-w4a16-nvfp4-fp8kv", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-w4a16-nvfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-w4a8-awq", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-deepseek-v3-mxfp4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-gemma3-mm-newer", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-glm-moe-dsa-nvfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-minimax-m2-nvfp4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-mistral-w4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-mixtral-fp8-dynamic", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-qwen2-w8a8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/ct-qwen2.5-vl-nvfp4a16", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-qwen3-fp8", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/modelopt-qwen3-vl-nvfp4", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/awq-not-convert", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/awq-w4-g128", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/fp8-autofp8-static", 0, (0, 1, 0), ('warning engines-disagree ×1',)),
    ("fixtures/checkpoints/fp8-block", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/fp8-block-ragged", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/fp8-qwen3-moe-block", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/gptq-dynamic", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/gptq-w3-g32-asym-v2", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/gptq-w4-g128", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/gptq-w4-g32-act", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/gptq-w8-channel", 0, (0, 0, 0), ()),
    ("fixtures/checkpoints/mxfp4-gpt-oss", 0, (0, 0, 0), ()),
    ("fixtures/families/deepseek-v3/checkpoint", 0, (0, 1, 3), ('warning kv-config-without-scales ×1', 'info unsized-modules ×31', 'info config-quantized-model-unquantized ×2', 'info names-only ×1')),
    ("fixtures/families/gemma3-mm/checkpoint", 0, (0, 0, 2), ('info unsized-modules ×19', 'info names-only ×1')),
    ("fixtures/families/gemma4-mm/checkpoint", 0, (0, 0, 2), ('info absent-shard ×1', 'info names-only ×1')),
    ("fixtures/families/glm/checkpoint", 0, (0, 1, 3), ('warning kv-config-without-scales ×1', 'info unsized-modules ×33', 'info config-quantized-model-unquantized ×2', 'info names-only ×1')),
    ("fixtures/families/kimi-k2.5/checkpoint", 0, (0, 1, 3), ('warning kv-config-without-scales ×1', 'info unsized-modules ×38', 'info config-quantized-model-unquantized ×1', 'info names-only ×1')),
    ("fixtures/families/llama/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/minimax-m2/checkpoint", 0, (0, 1, 1), ('warning kv-config-without-scales ×1', 'info names-only ×1')),
    ("fixtures/families/mixtral/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/nemotron-h/checkpoint", 0, (0, 2, 1), ('warning dead-exclude ×1', 'warning kv-config-without-scales ×1', 'info names-only ×1')),
    ("fixtures/families/qwen2.5-vl/checkpoint", 0, (0, 0, 2), ('info unsized-modules ×38', 'info names-only ×1')),
    ("fixtures/families/qwen2/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/qwen3-moe/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/qwen3-vl/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/qwen3.5/checkpoint", 0, (0, 1, 1), ('warning dead-exclude ×2', 'info names-only ×1')),
    ("fixtures/families/qwen3/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/transformers/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("fixtures/families/vllm-decoder/checkpoint", 0, (0, 0, 1), ('info names-only ×1',)),
    ("corpus:Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM", 0, (0, 0, 1), ('info names-only ×1',)),
    ("corpus:allenai__Molmo-7B-D-0924__NF4-reubzdubz", 0, (0, 0, 1), ('info names-only ×1',)),
    ("corpus:openai__gpt-oss-20b__EchoCog", 0, (0, 0, 1), ('info names-only ×1',)),
    ("layout:nvidia__DeepSeek-V3.1-NVFP4", 0, (0, 0, 1), ('info config-quantized-model-unquantized ×58',)),
    ("layout:nvidia__GLM-5-NVFP4", 0, (0, 0, 1), ('info config-quantized-model-unquantized ×75',)),
    ("corpus:Qwen__Qwen3-32B-FP8-Static-PerTensor", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:Qwen__Qwen3.5-35B-A3B", 0, (0, 0, 2), ('info config-only ×1', 'info no-quantization-config ×1')),
    ("corpus:RedHatAI__DeepSeek-V4-Flash-NVFP4-FP8", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:allenai__olmOCR-7B-0225-preview__BrianYAU-NTEC", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:bryce-hoehn__Qwen3.5-18B-REAP-A3B-Coding", 0, (0, 0, 3), ('info unsized-modules ×15912', 'info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:deepseek-ai__DeepSeek-OCR-2__sen-ye", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:google__gemma-4__victortorresa94-del", 0, (0, 0, 3), ('info absent-shard ×10', 'info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:google__medgemma-27b-it", 0, (0, 0, 3), ('info unsized-modules ×219', 'info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:ibm-granite__granite-3.1-1b-a400m-instruct", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:liuhaotian__llava-v1.5-7b__wyler-max", 0, (0, 0, 3), ('info unsized-modules ×293', 'info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:meta-llama__Llama-3.2-3B-Instruct", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:microsoft__WizardLM-2-8x22B", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:nvidia__Cosmos-Reason2__sarcascoder", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
    ("corpus:nvidia__DeepSeek-V3.1-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__DeepSeek-V3.2-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__DeepSeek-V4-Flash-NVFP4", 0, (0, 1, 1), ('warning base-format-fp8 ×1', 'info config-only ×1')),
    ("corpus:nvidia__DeepSeek-V4-Pro-NVFP4", 0, (0, 1, 1), ('warning base-format-fp8 ×1', 'info config-only ×1')),
    ("corpus:nvidia__GLM-5-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__GLM-5.1-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__GLM-5.2-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Gemma-4-26B-A4B-NVFP4", 0, (0, 0, 2), ('info absent-shard ×5', 'info config-only ×1')),
    ("corpus:nvidia__Gemma-4-31B-IT-NVFP4", 0, (0, 0, 2), ('info absent-shard ×10', 'info config-only ×1')),
    ("corpus:nvidia__Kimi-K2.5-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Kimi-K2.6-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Kimi-K2.7-Code-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Llama-3.1-70B-Instruct-FP8", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__MiniMax-M2.5-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__MiniMax-M2.7-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Qwen3-235B-A22B-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Qwen3.5-122B-A10B-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Qwen3.5-397B-A17B-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Qwen3.6-27B-NVFP4", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:nvidia__Qwen3.6-35B-A3B-NVFP4", 0, (0, 1, 2), ('warning files-disagree-kv ×1', 'info config-only ×1', 'info files-disagree-producer-version ×1')),
    ("corpus:Qwen__Qwen3-30B-A3B-FP8", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:deepseek-ai__DeepSeek-V3", 0, (0, 0, 1), ('info config-only ×1',)),
    ("corpus:remodlai__qwen-2.5-vl-7b-instruct-lexiq", 0, (0, 0, 2), ('info names-only ×1', 'info no-quantization-config ×1')),
]

#: Corpus folders that exit 2 on this branch, and why (all exit 2 with one line on stderr).
NOT_AUDITED: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Corpus layouts written once per module (4 experts per layer, 2 shards)."""
    return {"root": tmp_path_factory.mktemp("layouts")}


def _path(where: str, layouts: dict[str, Path]) -> Path:
    kind, _, name = where.partition(":")
    if kind == "layout":
        path = layouts["root"] / name
        if not path.is_dir():
            bench = runpy.run_path(str(BENCHMARK))
            layout = bench["corpus_layout"](CORPUS / name)
            if layout is None:
                pytest.skip(f"corpus folder {name} absent")
            bench["write_synthetic_checkpoint"](path, *layout, shards=2, experts=4)
        return path
    path = REPO / where
    if not (path / "config.json").is_file():
        pytest.skip(f"{where} not generated")
    return path


def _audit(where: str, layouts: dict[str, Path], corpus_audit: CorpusAudits | None) -> CliResult:
    """The CLI's JSON audit of a table key; corpus folders through the run-wide cache when given."""
    kind, _, name = where.partition(":")
    if kind == "corpus":
        if corpus_audit is not None:
            return corpus_audit(name)
        if not (CORPUS / name).is_dir():
            pytest.skip(f"corpus folder {name} absent")
        return audit_json(CORPUS / name)
    return audit_json(_path(where, layouts))


def _observed(report: dict) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    s = report["summary"]
    return ((s["error"], s["warning"], s["info"]),
            tuple(f"{f['severity']} {f['code']} ×{f['count']}" for f in report["findings"]))


@pytest.mark.parametrize(("where", "rc", "counts", "groups"), EXPECTED, ids=[row[0] for row in EXPECTED])
def test_expected_findings(where, rc, counts, groups, layouts, corpus_audit):
    result = _audit(where, layouts, corpus_audit)
    assert result.rc == rc, result.err
    assert _observed(result.json()) == (counts, groups)


@pytest.mark.parametrize("name", [n for names in NOT_AUDITED.values() for n in names])
def test_not_audited_yet(name, corpus_audit):
    """These exit 2 today; when one starts to audit, move it into EXPECTED (this test then fails)."""
    result = corpus_audit(name)
    assert result.rc == 2 and len(result.err.strip().splitlines()) == 1


def _fixtures() -> set[str]:
    """Every fixture checkpoint and family checkpoint in the repository, as a table key."""
    found = {str(p.parent.relative_to(REPO)) for p in REPO.glob("fixtures/checkpoints/*/config.json")}
    return found | {str(p.parent.relative_to(REPO)) for p in REPO.glob("fixtures/families/*/checkpoint/config.json")}


def test_every_fixture_and_corpus_folder_is_in_the_table():
    listed = {row[0] for row in EXPECTED}
    assert _fixtures() <= listed
    if CORPUS.is_dir():
        folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
        not_audited = {n for names in NOT_AUDITED.values() for n in names}
        assert folders == {w.partition(":")[2] for w in listed if w.startswith("corpus:")} | not_audited


def _print_rows() -> None:  # pragma: no cover - a maintenance helper
    """Print the table's rows as the CLI audits them now (fixtures and corpus folders present), then the
    corpus folders that are in no row, and the exit-2 ones with their one line."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        layouts = {"root": Path(tmp)}
        listed = [row[0] for row in EXPECTED]
        corpus = sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []
        extra = sorted(_fixtures() - set(listed)) + [f"corpus:{n}" for n in corpus if f"corpus:{n}" not in listed]
        for where in listed + extra:
            try:
                result = _audit(where, layouts, None)
            except pytest.skip.Exception:
                continue
            if result.rc == 2:
                print(f"    # exit 2: {where}: {result.err.strip()}")
                continue
            counts, groups = _observed(result.json())
            print(f"    ({json.dumps(where)}, {result.rc}, {counts}, {groups!r}),")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_print_rows())
