"""``Resolution``: the answer for one layer prefix, with the rule and the config entry that decided.

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> r = Resolution(prefix="model.layers.0.mlp.down_proj", kind="linear", scheme=modelopt_scheme("NVFP4"),
    ...                rule="direct", source=ConfigRef(original="model.layers.0.mlp.down_proj",
    ...                mapped="model.layers.0.mlp.down_proj", file="hf_quant_config.json",
    ...                field='quantization.quantized_layers["model.layers.0.mlp.down_proj"]'),
    ...                trail=("direct: found key 'model.layers.0.mlp.down_proj'",))
    >>> r.algo, r.rule
    ('NVFP4', 'direct')
    >>> print(r.explain())
    model.layers.0.mlp.down_proj [linear] → NVFP4 by rule 'direct'
      entry: model.layers.0.mlp.down_proj (hf_quant_config.json: quantization.quantized_layers["model.layers.0.mlp.down_proj"])
      tried:
        direct: found key 'model.layers.0.mlp.down_proj'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from quantresolve.formats.scheme import QuantScheme

Kind = Literal["linear", "moe", "attention", "embedding", "lm_head"]
KINDS: tuple[str, ...] = ("linear", "moe", "attention", "embedding", "lm_head")

#: Every rule name a resolution can carry, with what it means (for docs and reports).
RULES: dict[str, str] = {
    "excluded": "an exclude / ignore / skip entry matches the prefix (exact, subtree, glob or regex)",
    "direct": "a per-layer entry names the prefix itself",
    "candidate": "a per-layer entry names a wrapper-prefix variant of the prefix",
    "container": "a per-layer entry names a real ancestor module (e.g. a MoE container covering its experts)",
    "packed-shards": "the prefix is a declared fused layer; all its shards present in the checkpoint agree",
    "experts": "the prefix is an MoE container; the entries of all its experts agree",
    "target:name": "a compressed-tensors target names the module exactly",
    "target:regex": "a compressed-tensors re: target matches the module name",
    "target:fused": "every shard of the fused module is targeted by name, by the same scheme",
    "target:class": "a compressed-tensors class-name target (e.g. Linear) matches the module's kind",
    "dynamic": "a GPTQModel dynamic override key (a regex over the checkpoint's module name) matches the module",
    "not-included": "the module is outside a GPTQ inclusion list (block_name_to_quantize / modules_in_block_to_quantize)",
    "default": "nothing specific: the config's global scheme applies (unquantized in MIXED_PRECISION)",
    "kv-cache": "the config's KV-cache scheme applies to this attention module",
    "no-config": "the checkpoint has no quantization config at all: nothing is quantized (set by the audit)",
    "not-targeted": "no compressed-tensors group targets the module",
    "not-quantizable": "the producer never quantizes modules of this kind",
    "producer-default-skip": "the producer skips this module by default (bitsandbytes and AWQ keep the LM head)",
    "model-unquantized": "the profile says the model builds this module without quantization (e.g. a MoE router "
                         "built with quant_config=None), whatever the config says; the config's own answer is kept",
}


@dataclass(frozen=True, slots=True)
class ConfigRef:
    """A config entry: its original spelling (checkpoint space), its mapped name (model space) and location."""

    original: str
    mapped: str | None
    file: str
    field: str

    def to_json(self) -> dict[str, Any]:
        return {"original": self.original, "mapped": self.mapped, "file": self.file, "field": self.field}


@dataclass(frozen=True, slots=True)
class Resolution:
    """How the layer at ``prefix`` (model namespace) is quantized, and why.

    ``scheme`` is ``None`` when the layer is unquantized — always by a named
    ``rule``. ``shards`` lists the per-shard answers of a fused layer or MoE
    container (``(name, algo, rule)``); ``trail`` lists what was tried.
    """

    prefix: str
    kind: str
    scheme: QuantScheme | None
    rule: str
    source: ConfigRef | None = None
    trail: tuple[str, ...] = ()
    shards: tuple[tuple[str, str | None, str], ...] = field(default=())
    #: for rule ``model-unquantized``: what the config alone would have answered
    config_answer: Resolution | None = None

    @property
    def algo(self) -> str | None:
        return None if self.scheme is None else self.scheme.algo

    @property
    def quantized(self) -> bool:
        return self.scheme is not None

    def explain(self) -> str:
        """Human-readable provenance: answer, deciding entry, and every step tried."""
        lines = [f"{self.prefix} [{self.kind}] → {self.algo or 'unquantized'} by rule '{self.rule}'"]
        if self.source is not None:
            mapped = "" if self.source.mapped in (None, self.source.original) else f" → {self.source.mapped}"
            lines.append(f"  entry: {self.source.original}{mapped} ({self.source.file}: {self.source.field})")
        for name, algo, rule in self.shards:
            lines.append(f"  part: {name} → {algo or 'unquantized'} ({rule})")
        if self.trail:
            lines.append("  tried:")
            lines.extend(f"    {step}" for step in self.trail)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON object: prefix, kind, algo, rule, source."""
        return {"prefix": self.prefix, "kind": self.kind, "algo": self.algo, "rule": self.rule,
                "source": None if self.source is None else {"original": self.source.original,
                                                            "mapped": self.source.mapped}}
