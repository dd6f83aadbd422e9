"""quantresolve as a transformers quantizer: ``from_pretrained`` builds the model, quantresolve resolves and runs it.

transformers 5 drives a quantizer through hooks around its own loading; this one puts
quantresolve's :mod:`.session` (the steps of ``load_quantized`` after the build) into them:

1. ``validate_environment`` — only a CPU ``device_map`` (or none): the layers are built for the
   CPU, the tensors land where the map says;
2. ``_process_model_before_weight_loading`` — the model transformers built on the meta device
   gets everything ``load_quantized`` gives its own: MoE experts one linear per projection, the
   naming profile, every linear and KV cache resolved, the dispatcher's linears installed, every
   checkpoint tensor routed (:func:`~.session.prepare`), and the inbox for the tensors of quantized
   layers (:func:`~.inbox.open_inbox`). The quantization is read from the checkpoint's own files
   (``config.json``, ``hf_quant_config.json``), whatever config routed the load here;
3. ``update_weight_conversions`` — the session's routes name every checkpoint key
   (:class:`~.inbox.RouteRenaming`), in place of the model's own conversions (a ``key_mapping=``
   passed to ``from_pretrained`` is refused: the routes were planned without it — a naming
   profile says the same, ``QuantresolveConfig(profile=...)``);
4. transformers' loader reads the tensors: dense ones into the model's parameters (cast as
   ``load_quantized`` casts them; ``get_new_dtype`` keeps the inbox's tensors as stored), the
   others through the inbox into :meth:`~.session.LoadSession.receive`, each layer finalized as
   soon as it is complete;
5. ``_process_model_after_weight_loading`` — the inbox goes, and :meth:`~.session.LoadSession.finish`
   checks that every quantized layer got its tensors, finalizes, applies the KV-cache scales and
   attaches ``model.quantresolve_report``.

Every refusal is a :class:`~quantresolve.errors.QuantResolveError` naming the file and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.conversion_mapping import get_model_conversion_mapping
from transformers.quantizers.base import HfQuantizer
from transformers.utils.quantization_config import QuantizationConfigMixin

from quantresolve.errors import ConfigError, LoadError
from quantresolve.formats.loader import CONFIG_FILE, load_config
from quantresolve.integrations.transformers.hf_config import loading_options
from quantresolve.integrations.transformers.inbox import (
    INBOX,
    RouteRenaming,
    close_inbox,
    open_inbox,
)
from quantresolve.integrations.transformers.session import LoadSession, prepare
from quantresolve.naming.profiles import load_profile


def _cpu_only(device_map: Any) -> None:
    """Refuse a ``device_map`` that places anything off the CPU (``None`` = the CPU)."""
    if device_map is None:
        return
    places = list(device_map.values()) if isinstance(device_map, dict) else [device_map]
    off = [p for p in places if str(p) != "cpu" and not (isinstance(p, torch.device) and p.type == "cpu")]
    if off:
        raise LoadError(f"device_map {device_map!r} places the model on {off[0]!r}: quantresolve's quantizer "
                        "loads onto the CPU only (pass device_map=None or 'cpu'; load_quantized(path, "
                        "device='cuda') loads onto a GPU)", field="device_map")


def checkpoint_root(checkpoint_files: list[str] | None) -> Path:
    """The checkpoint directory of the files transformers resolved (a local folder or a hub cache snapshot)."""
    files = [Path(f) for f in checkpoint_files or ()]
    if not files or any(f.suffix != ".safetensors" for f in files):
        raise LoadError(f"quantresolve loads safetensors checkpoints from a directory; transformers resolved "
                        f"{[f.name for f in files] or 'no files'}", field="pretrained_model_name_or_path")
    return files[0].parent


class QuantresolveHfQuantizer(HfQuantizer):
    """The quantizer behind ``quant_method`` ``quantresolve`` (and ``modelopt``): see the module docstring."""

    requires_calibration = False

    def __init__(self, quantization_config: QuantizationConfigMixin, **kwargs: Any) -> None:
        super().__init__(quantization_config, **kwargs)
        # Always a quantized checkpoint, loaded as stored: one whose quant_method transformers does
        # not know arrives flagged as not pre-quantized (a config was passed for a plain model).
        self.pre_quantized = True
        self.session: LoadSession | None = None
        self.names: dict[str, str] = {}
        self.dtype = torch.bfloat16

    def update_dtype(self, dtype: torch.dtype) -> torch.dtype:
        self.dtype = dtype  # the compute dtype from_pretrained settled on (its dtype=, else config.json's)
        return dtype

    def validate_environment(self, *args: Any, device_map: Any = None, **kwargs: Any) -> None:
        _cpu_only(device_map)

    def _process_model_before_weight_loading(self, model: PreTrainedModel, **kwargs: Any) -> PreTrainedModel:
        root = checkpoint_root(kwargs.get("checkpoint_files"))
        options = loading_options(self.quantization_config)
        given = load_profile(options.profile) if options.profile is not None else None
        qconfig = load_config(root)
        if options.expect_producer is not None and qconfig.producer != options.expect_producer:
            raise LoadError(f"the checkpoint is quantized by {qconfig.producer} ({qconfig.quant_algo}); the "
                            f"QuantresolveConfig passed to from_pretrained expects {options.expect_producer}",
                            file=str(root / CONFIG_FILE), field="quantization_config.expect_producer")
        self.session = prepare(root, model, given, qconfig=qconfig, backend=options.backend, deny=options.deny,
                               dtype=self.dtype)
        self.names = open_inbox(model, self.session)
        return model

    def update_weight_conversions(self, weight_conversions: list[Any], model: PreTrainedModel) -> list[Any]:
        # The model's own conversions are what the session's profile was derived from; more than
        # those means the caller passed key_mapping=, which the routes cannot honour after the fact.
        if len(weight_conversions) > len(get_model_conversion_mapping(model)):
            raise ConfigError("from_pretrained(key_mapping=...) is not applied by quantresolve's quantizer: name the "
                              "checkpoint's layout with QuantresolveConfig(profile=...) instead", field="key_mapping")
        return [RouteRenaming(self.names)]

    def get_new_dtype(self, converter: Any, param: Any, dtype: torch.dtype | None) -> torch.dtype | None:
        if converter.target_patterns[0].startswith(f"{INBOX}."):
            return None  # the checkpoint's own dtype: the quantized layer reads its codes as stored
        return super().get_new_dtype(converter, param, dtype)

    def param_needs_quantization(self, model: PreTrainedModel, param_name: str, **kwargs: Any) -> bool:
        return param_name.startswith(f"{INBOX}.")

    def _process_model_after_weight_loading(self, model: PreTrainedModel, **kwargs: Any) -> PreTrainedModel:
        close_inbox(model)
        session, self.session, self.names = self.session, None, {}
        if session is not None:
            session.finish(dense=False)
        return model

    def is_serializable(self, *args: Any, **kwargs: Any) -> bool:
        return False  # the layers hold repacked tensors, not the checkpoint's

    @property
    def is_trainable(self) -> bool:
        return False


__all__ = ["QuantresolveHfQuantizer", "checkpoint_root"]
