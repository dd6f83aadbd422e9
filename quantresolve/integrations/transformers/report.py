"""What ``load_quantized`` installed, layer by layer: for the CLI, tests and users.

Attached to the returned model as ``model.quantresolve_report``.

    >>> r = LoadReport(checkpoint="ckpt", profile="transformers", producer="modelopt", quant_algo="FP8")
    >>> r.layers.append(LayerRecord("model.layers.0.mlp.up_proj", "linear", "FP8", "default", "dense_dequant",
    ...                             ("model.layers.0.mlp.up_proj",), "FP8 (modelopt, w8 tensor, a8 static)"))
    >>> r.layers.append(LayerRecord("lm_head", "lm_head", None, "excluded", "dense", ("lm_head",), None))
    >>> r.counts()
    {'FP8 / dense_dequant': 1, 'unquantized / dense': 1}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Backend name reported for layers left as plain ``nn.Linear``.
DENSE = "dense"


@dataclass(frozen=True)
class LayerRecord:
    """One installed linear: where, which algo by which rule, on which backend."""

    prefix: str
    kind: str
    algo: str | None
    rule: str
    backend: str
    members: tuple[str, ...]
    scheme: str | None

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "kind": self.kind, "algo": self.algo, "rule": self.rule,
                "backend": self.backend, "members": list(self.members), "scheme": self.scheme}


@dataclass(frozen=True)
class KVRecord:
    """One attention module's KV-cache scales and how they are applied."""

    prefix: str
    algo: str
    k_scale: float
    v_scale: float
    applied: bool

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "algo": self.algo, "k_scale": self.k_scale, "v_scale": self.v_scale,
                "applied": self.applied}


@dataclass
class LoadReport:
    """Every layer's answer plus what was dropped by the profile's mapper."""

    checkpoint: str
    profile: str
    producer: str
    quant_algo: str | None
    layers: list[LayerRecord] = field(default_factory=list)
    kv_cache: list[KVRecord] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Why this profile: given by the caller, or derived from transformers' renamings (and how many rules).
    profile_reason: str = ""
    #: Stored tensors the model class declares it does not load (``_keys_to_ignore_on_load_unexpected``).
    ignored: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """``"ALGO / backend"`` → number of layers (unquantized layers count as ``unquantized / dense``)."""
        c = Counter(f"{r.algo or 'unquantized'} / {r.backend}" for r in self.layers)
        return dict(sorted(c.items()))

    def layer(self, prefix: str) -> LayerRecord:
        """The record installed at ``prefix`` or covering it as a fused member."""
        for r in self.layers:
            if prefix == r.prefix or prefix in r.members:
                return r
        raise KeyError(prefix)

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "profile": self.profile, "profile_reason": self.profile_reason,
                "producer": self.producer,
                "quant_algo": self.quant_algo, "counts": self.counts(),
                "layers": [r.to_json() for r in self.layers], "kv_cache": [k.to_json() for k in self.kv_cache],
                "dropped": list(self.dropped), "ignored": list(self.ignored), "notes": list(self.notes)}
