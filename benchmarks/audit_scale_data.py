"""A DeepSeek-V3-scale ModelOpt NVFP4 checkpoint made of headers over sparse files, and a timer.

``write_synthetic_deepseek_checkpoint(dir)`` writes ~180k tensor headers in
163 shards, each shard an 8-byte length + JSON header followed by a *sparse*
data region (``truncate`` to the full size), so ~400 GB of "data" take no disk.
Names, dtypes and shapes follow a ModelOpt NVFP4 export of DeepseekV3ForCausalLM:
NVFP4 linears store ``weight`` U8 ``[N, K/2]``, ``weight_scale`` F8_E4M3
``[N, K/16]``, ``weight_scale_2`` F32 ``[]``, ``input_scale`` F32 ``[]``;
modules matched by the exclude list (read from the corpus copy of
nvidia/DeepSeek-V3.1-NVFP4's ``hf_quant_config.json`` when present, else a
built-in summary of it) are BF16. KV-cache scales use the generic ModelOpt
naming ``<attn>.k_proj.k_scale`` / ``<attn>.v_proj.v_scale`` (field-notes §5);
that DeepSeek's real MLA export uses exactly these names is not verified.

The same builder writes the layout of any DeepSeek-V3-style corpus folder (config.json +
hf_quant_config.json, e.g. nvidia/GLM-5-NVFP4, whose GlmMoeDsa layers add a DeepSeek-V3.2
indexer): ``write_synthetic_checkpoint(dir, *corpus_layout(folder), experts=8)``; fewer experts
keep a test's checkpoint small while every layer, router and exclude entry stays as in the real one.

Usage::

    python benchmarks/audit_scale_data.py [--dir DIR] [--read-only]

Without ``--dir`` a temporary directory is used. ``--read-only`` skips writing
when DIR already holds the checkpoint and times only the read
(read_checkpoint + build_inventory + classify_module over every module).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_QUANT_CONFIG = CORPUS / "nvidia__DeepSeek-V3.1-NVFP4" / "hf_quant_config.json"
CORPUS_CONFIG = CORPUS / "nvidia__DeepSeek-V3.1-NVFP4" / "config.json"

CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "num_hidden_layers": 61,
    "num_nextn_predict_layers": 1,
    "first_k_dense_replace": 3,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "moe_layer_freq": 1,
    "vocab_size": 129280,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}


def _builtin_quant_config() -> dict:
    """Summary of the real exclude list: lm_head, the MTP layer, every layer's MLA down/up projections."""
    exclude = ["lm_head", "model.layers.61*"]
    for layer in range(61):
        for proj in ("kv_a_proj_with_mqa", "kv_b_proj", "q_a_proj", "q_b_proj"):
            exclude.append(f"model.layers.{layer}.self_attn.{proj}")
    return {
        "producer": {"name": "modelopt", "version": "0.22.1"},
        "quantization": {
            "quant_algo": "NVFP4",
            "kv_cache_quant_algo": "FP8",
            "group_size": 16,
            "exclude_modules": sorted(exclude),
        },
    }


def load_quant_config() -> dict:
    if CORPUS_QUANT_CONFIG.is_file():
        return json.loads(CORPUS_QUANT_CONFIG.read_text())
    return _builtin_quant_config()


def load_config() -> dict:
    """The corpus copy of the real ``config.json`` when present (its shapes are :data:`CONFIG`'s), else :data:`CONFIG`."""
    return layout_config(json.loads(CORPUS_CONFIG.read_text()) if CORPUS_CONFIG.is_file() else {})


def corpus_layout(folder: str | os.PathLike[str]) -> tuple[dict, dict] | None:
    """``(config.json, hf_quant_config.json)`` of a corpus folder, or ``None`` when either is absent."""
    root = Path(folder)
    if not (root / "config.json").is_file() or not (root / "hf_quant_config.json").is_file():
        return None
    return (json.loads((root / "config.json").read_text()),
            json.loads((root / "hf_quant_config.json").read_text()))


def _linears(layer: int, cfg: dict) -> list[tuple[str, int, int]]:
    """(module, out N, in K) of every linear in one decoder layer."""
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    qk_head = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    p = f"model.layers.{layer}"
    indexer = []
    if cfg.get("index_n_heads"):  # DeepSeek-V3.2 / GLM-5 sparse-attention indexer
        ih, idim = cfg["index_n_heads"], cfg["index_head_dim"]
        indexer = [(f"{p}.self_attn.indexer.wq_b", ih * idim, cfg["q_lora_rank"]),
                   (f"{p}.self_attn.indexer.wk", idim, h),
                   (f"{p}.self_attn.indexer.weights_proj", ih, h)]
    out = [*indexer,
        (f"{p}.self_attn.q_a_proj", cfg["q_lora_rank"], h),
        (f"{p}.self_attn.q_b_proj", heads * qk_head, cfg["q_lora_rank"]),
        (f"{p}.self_attn.kv_a_proj_with_mqa", cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"], h),
        (
            f"{p}.self_attn.kv_b_proj",
            heads * (cfg["qk_nope_head_dim"] + cfg["v_head_dim"]),
            cfg["kv_lora_rank"],
        ),
        (f"{p}.self_attn.o_proj", h, heads * cfg["v_head_dim"]),
    ]
    if layer < cfg["first_k_dense_replace"]:
        i = cfg["intermediate_size"]
        out += [
            (f"{p}.mlp.gate_proj", i, h),
            (f"{p}.mlp.up_proj", i, h),
            (f"{p}.mlp.down_proj", h, i),
        ]
        return out
    m = cfg["moe_intermediate_size"]
    experts = [f"{p}.mlp.experts.{e}" for e in range(cfg["n_routed_experts"])]
    experts.append(f"{p}.mlp.shared_experts")
    for e in experts:
        s = m * cfg["n_shared_experts"] if e.endswith("shared_experts") else m
        out += [(f"{e}.gate_proj", s, h), (f"{e}.up_proj", s, h), (f"{e}.down_proj", h, s)]
    return out


def synthetic_tensors(cfg: dict, quant: dict) -> list[tuple[str, str, list[int]]]:
    """Every (name, dtype, shape) of the export, in layer order."""
    exclude = quant["quantization"]["exclude_modules"]
    excluded_cache: dict[str, bool] = {}

    def excluded(module: str) -> bool:
        hit = excluded_cache.get(module)
        if hit is None:
            hit = excluded_cache[module] = any(fnmatch.fnmatchcase(module, g) for g in exclude)
        return hit

    h, vocab = cfg["hidden_size"], cfg["vocab_size"]
    tensors: list[tuple[str, str, list[int]]] = [("model.embed_tokens.weight", "BF16", [vocab, h])]
    n_layers = cfg["num_hidden_layers"] + cfg["num_nextn_predict_layers"]
    for layer in range(n_layers):
        p = f"model.layers.{layer}"
        tensors += [
            (f"{p}.input_layernorm.weight", "BF16", [h]),
            (f"{p}.post_attention_layernorm.weight", "BF16", [h]),
            (f"{p}.self_attn.q_a_layernorm.weight", "BF16", [cfg["q_lora_rank"]]),
            (f"{p}.self_attn.kv_a_layernorm.weight", "BF16", [cfg["kv_lora_rank"]]),
        ]
        if cfg.get("index_n_heads"):
            tensors += [(f"{p}.self_attn.indexer.k_norm.{t}", "BF16", [cfg["index_head_dim"]])
                        for t in ("weight", "bias")]
        if not excluded(f"{p}.self_attn"):
            tensors += [
                (f"{p}.self_attn.k_proj.k_scale", "F32", []),
                (f"{p}.self_attn.v_proj.v_scale", "F32", []),
            ]
        if layer >= cfg["first_k_dense_replace"]:
            tensors += [
                (f"{p}.mlp.gate.weight", "BF16", [cfg["n_routed_experts"], h]),
                (f"{p}.mlp.gate.e_score_correction_bias", "F32", [cfg["n_routed_experts"]]),
            ]
        for module, n, k in _linears(layer, cfg):
            if excluded(module):
                tensors.append((f"{module}.weight", "BF16", [n, k]))
            else:
                tensors += [
                    (f"{module}.weight", "U8", [n, k // 2]),
                    (f"{module}.weight_scale", "F8_E4M3", [n, k // 16]),
                    (f"{module}.weight_scale_2", "F32", []),
                    (f"{module}.input_scale", "F32", []),
                ]
        if layer >= cfg["num_hidden_layers"]:  # the MTP layer's extra modules
            tensors += [
                (f"{p}.enorm.weight", "BF16", [h]),
                (f"{p}.hnorm.weight", "BF16", [h]),
                (f"{p}.eh_proj.weight", "BF16", [h, 2 * h]),
                (f"{p}.shared_head.norm.weight", "BF16", [h]),
                (f"{p}.shared_head.head.weight", "BF16", [vocab, h]),
                (f"{p}.embed_tokens.weight", "BF16", [vocab, h]),
            ]
    tensors += [("model.norm.weight", "BF16", [h]), ("lm_head.weight", "BF16", [vocab, h])]
    return tensors


_BYTES = {"BF16": 2, "F32": 4, "U8": 1, "F8_E4M3": 1}


def _nbytes(dtype: str, shape: list[int]) -> int:
    n = _BYTES[dtype]
    for d in shape:
        n *= d
    return n


def shard_header(entries: list[tuple[str, str, list[int]]]) -> tuple[bytes, int]:
    """``(8-byte length + JSON header padded to 8, data size)`` of one shard holding ``entries``."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in entries:
        size = _nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads headers to 8-byte alignment
    return struct.pack("<Q", len(raw)) + raw, offset


def _write_shard(path: Path, entries: list[tuple[str, str, list[int]]]) -> int:
    head, offset = shard_header(entries)
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(len(head) + offset)  # sparse: the data region takes no disk
    return offset


def layout_config(config: dict, experts: int | None = None) -> dict:
    """``config`` over :data:`CONFIG` (keys a corpus config.json may lack: MTP layers, expert counts), with
    ``experts`` routed experts per MoE layer instead of its ``n_routed_experts`` when given."""
    out = {**CONFIG, **config}
    if experts is not None:
        out["n_routed_experts"] = experts
    return out


def synthetic_checkpoint(
    config: dict, quant: dict, shards: int = 163
) -> tuple[dict[str, list[tuple[str, str, list[int]]]], dict]:
    """The export of ``config``'s layout (:func:`layout_config`) quantized as ``quant`` says, split into
    ``shards`` shards by size: ``({shard name: entries}, index)``, nothing written."""
    tensors = synthetic_tensors(config, quant)
    total = sum(_nbytes(d, s) for _, d, s in tensors)
    budget = total / shards
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    out: dict[str, list[tuple[str, str, list[int]]]] = {}
    chunk: list[tuple[str, str, list[int]]] = []
    filled, index = 0, 1
    for pos, entry in enumerate(tensors):
        chunk.append(entry)
        filled += _nbytes(entry[1], entry[2])
        remaining_tensors = len(tensors) - pos - 1
        remaining_shards = shards - index
        if index < shards and (filled >= budget * index or remaining_tensors <= remaining_shards):
            out[names[index - 1]], chunk, index = chunk, [], index + 1
    out[names[index - 1]] = chunk
    weight_map = {n: shard for shard, entries in out.items() for n, _, _ in entries}
    return out, {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}


def write_synthetic_deepseek_checkpoint(
    directory: str | os.PathLike[str], shards: int = 163
) -> int:
    """Write the sparse checkpoint into ``directory``; return the number of tensors."""
    return write_synthetic_checkpoint(directory, load_config(), load_quant_config(), shards)


def write_synthetic_checkpoint(
    directory: str | os.PathLike[str], config: dict, quant: dict, shards: int = 163,
    experts: int | None = None,
) -> int:
    """Write a sparse checkpoint of ``config``'s layout quantized as ``quant`` says (``experts``:
    routed experts per MoE layer instead of the config's ``n_routed_experts``)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    config = layout_config(config, experts)
    by_shard, index_json = synthetic_checkpoint(config, quant, shards)
    for name, entries in by_shard.items():
        _write_shard(root / name, entries)
    (root / "model.safetensors.index.json").write_text(json.dumps(index_json, indent=2))
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "hf_quant_config.json").write_text(json.dumps(quant, indent=4))
    return len(index_json["weight_map"])


def time_read(directory: str | os.PathLike[str], repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds for each reading phase over the checkpoint in ``directory``."""
    from quantresolve.checkpoint import build_inventory, classify_inventory, read_checkpoint

    best: dict[str, float] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        catalog = read_checkpoint(directory)
        t1 = time.perf_counter()
        inventory = build_inventory(catalog)
        t2 = time.perf_counter()
        evidence = classify_inventory(inventory)
        t3 = time.perf_counter()
        for key, value in (
            ("read", t1 - t0),
            ("inventory", t2 - t1),
            ("evidence", t3 - t2),
            ("total", t3 - t0),
        ):
            best[key] = min(best.get(key, value), value)
    best["tensors"] = len(catalog.tensors)
    best["modules"] = len(inventory.modules)
    kinds: dict[str, int] = {}
    for e in evidence.values():
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    best["kinds"] = kinds  # type: ignore[assignment]
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dir", type=Path, help="where to write/read the checkpoint (default: a temp dir)"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="reuse DIR if it holds the checkpoint"
    )
    parser.add_argument("--shards", type=int, default=163)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deepseek-sparse-") as tmp:
        directory = args.dir or Path(tmp)
        if not (args.read_only and (directory / "model.safetensors.index.json").is_file()):
            t0 = time.perf_counter()
            count = write_synthetic_deepseek_checkpoint(directory, args.shards)
            print(
                f"wrote {count} tensors in {args.shards} shards to {directory} "
                f"in {time.perf_counter() - t0:.2f}s",
                file=sys.stderr,
            )
        result = time_read(directory)
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
