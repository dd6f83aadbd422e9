"""One exception family for everything quantresolve refuses.

Every error a user can provoke with bad input derives from
:class:`QuantResolveError`, so callers (and the CLI, which turns any of them
into one line on stderr and exit code 2) need a single ``except``.

Messages name *where* the problem is: the file, then the field path inside it,
then what is wrong::

    >>> raise ConfigError("unknown algorithm 'FP9'", file="hf_quant_config.json",
    ...                   field='quantization.quantized_layers["x"].quant_algo')
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: hf_quant_config.json: quantization.quantized_layers["x"].quant_algo: unknown algorithm 'FP9'
"""

from __future__ import annotations


class QuantResolveError(Exception):
    """Base of every error quantresolve raises on purpose.

    ``file`` and ``field`` locate the problem; ``detail`` says what it is.
    ``str(err)`` joins them as ``file: field: detail``.
    """

    def __init__(self, detail: str, *, file: str | None = None, field: str | None = None) -> None:
        self.detail = detail
        self.file = file
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return ": ".join([*parts, self.detail])


class ConfigError(QuantResolveError):
    """A quantization config is malformed, contradictory or unsupported."""


class UnknownAlgorithmError(ConfigError):
    """An algorithm spelling is not in the canonical vocabulary."""


class UnsupportedFormatError(ConfigError):
    """The config is a quantization format outside quantresolve's scope (e.g. HF ``fp8``)."""


class NoQuantizationConfigError(ConfigError):
    """A checkpoint or file carries no quantization config at all."""


class ProducerConflictError(ConfigError):
    """Two files (or two sections) claim different producers."""


class CheckpointError(QuantResolveError):
    """A checkpoint directory or safetensors file is unreadable or hostile."""


class NoTensorFilesError(CheckpointError):
    """A checkpoint directory holds no safetensors index and no ``*.safetensors`` file (e.g. only
    ``config.json``): nothing to read tensors from; the audit then works from the config alone."""


class SourceError(CheckpointError):
    """A checkpoint argument names nothing that can be read: no such local path, not in the local
    Hugging Face cache, or a hub repository that is missing, private, gated, at an unknown revision
    or on a host that cannot be reached. ``file`` is the argument as given."""


class ProfileError(QuantResolveError):
    """A naming profile is unknown or malformed."""


class MappingError(QuantResolveError):
    """Name mapping produced a contradiction (e.g. two config keys onto one name)."""


class ResolutionError(QuantResolveError):
    """A prefix cannot be resolved: conflicting shards or experts, empty prefix, ..."""


class ConflictingShardsError(ResolutionError):
    """The shards of a fused layer resolve to different schemes."""


class ConflictingExpertsError(ResolutionError):
    """The experts of one MoE container resolve to different schemes."""


class InvalidPrefixError(ResolutionError):
    """A layer prefix is empty or malformed."""


class DispatchError(QuantResolveError):
    """No linear method or backend can run a scheme (never a silent dense fallback)."""


class BackendUnavailableError(DispatchError):
    """A forced backend does not support the layer's scheme, shape or device."""


class LoadError(QuantResolveError):
    """Loading a checkpoint into a model failed: unconsumed tensors, unfilled parameters, ..."""
