"""``load_quantized``: a quantized checkpoint → a ready transformers model, layer by layer as resolved.

Steps (each in its own module of this package; 3 to 5 are the :mod:`.session` that
``from_pretrained`` runs too, :mod:`.hf_quantizer`):

1. read the quantization config (:func:`quantresolve.load_config`), the naming
   profile, and the checkpoint's tensor catalogue from headers only;
2. build the architecture from ``config.json`` with parameters on the meta
   device (:mod:`.build`), its quantization section stripped (:mod:`.config`);
3. replace MoE experts modules (3-D parameters) with one linear per expert
   projection (:mod:`.expert_containers`, :mod:`.experts`) and resolve each
   container as a whole (``kind="moe"``: its experts must agree); resolve
   every linear at its own module path — fused per the profile — and every
   attention module's KV cache (:mod:`.plan`), then install the dispatcher's
   linear methods (:mod:`.install`);
4. route every checkpoint tensor to its target through the profile's mapper
   before reading any data (:mod:`.route`): a tensor nothing consumes is an error,
   unless the model class declares it does not load it (:mod:`.ignored`: DeepSeek-V3's
   multi-token-prediction layer);
5. stream tensors shard by shard (:mod:`.stream`), the quantized layers' first,
   ``finalize()`` each quantized layer as soon as it is complete (:mod:`.layer_completion`)
   — handing the repack's freed buffers back to the OS after each (:mod:`.memory`) — then
   the dense tensors; tie what the config ties (:mod:`.tying`), refuse anything left
   unfilled, finalize the layers not yet finalized, and apply KV-cache scales
   (:mod:`.kv_attention`).

Without a ``profile``, the checkpoint's names are mapped onto the model built
here by transformers' own renamings of its class (:mod:`.profile_choice`): a
checkpoint in any layout transformers loads (Gemma-3's older
``language_model.model.*`` or newer ``model.language_model.*``, Mixtral's
``block_sparse_moe``, Nemotron-H's ``backbone.*``) loads unfused, and the
report says which profile and why. The built-in family profiles chosen from
``architectures`` by the resolver CLI describe vLLM's fused namespace instead.
A fused profile (``llama``, ``vllm-decoder``) is supported: q/k/v and gate/up
become one fused layer each, and the shard modules slice its output.

    >>> model = load_quantized("fixtures/checkpoints/ct-w4a16")                  # doctest: +SKIP
    >>> model.model.layers[0].mlp.down_proj.backend                               # doctest: +SKIP
    'int4pack_cpu'
    >>> model.quantresolve_report.counts()                                        # doctest: +SKIP
    {'W4A16 / int4pack_cpu': 14, 'unquantized / dense': 1}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import PreTrainedModel

from quantresolve.errors import LoadError
from quantresolve.formats.loader import load_config
from quantresolve.integrations.device import check_device
from quantresolve.integrations.transformers.build import build_empty_model
from quantresolve.integrations.transformers.config import compute_dtype, model_config
from quantresolve.integrations.transformers.layer_completion import quantized_first
from quantresolve.integrations.transformers.session import LoadSession, prepare, read_inventory
from quantresolve.integrations.transformers.stream import stream_tensors
from quantresolve.naming.profiles import Profile, load_profile


def _load_tensors(session: LoadSession, device: str | torch.device) -> None:
    """Stream every routed tensor into its target, the quantized layers' first (read shard by shard)."""
    quantized, rest = quantized_first(session.routes.routes, session.installed.targets)
    for part in (quantized, rest):  # repack quantized layers before the dense tensors are read
        for route, tensor in stream_tensors(session.root, part, device):
            session.receive(route, tensor)


def load_quantized(checkpoint_dir: str | Path, profile: str | Path | Profile | None = None,
                   backend: str | None = None, deny: Iterable[str] = (), device: str | torch.device = "cpu",
                   dtype: torch.dtype | str | None = None) -> PreTrainedModel:
    """Build the model of ``checkpoint_dir`` with every linear quantized as resolved, loaded and ready (eval).

    ``profile``: naming profile (built-in name, file, or :class:`Profile`); default: derived from
    transformers' renamings of the class built (:mod:`.profile_choice`), the report says which and why.
    ``backend`` / ``deny``: force or exclude dispatcher backends. ``dtype``: compute dtype (default:
    ``config.json``'s, else bfloat16). The returned model carries ``quantresolve_report``
    (:class:`~.report.LoadReport`). Raises :class:`~quantresolve.errors.LoadError` for tensors nothing
    consumes and parameters nothing fills, naming them.
    """
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise LoadError("not a checkpoint directory", file=str(root))
    device = check_device(device)
    given = load_profile(profile) if profile is not None else None  # a bad profile fails before any build
    qconfig = load_config(root)
    inventory = read_inventory(root)
    hf_config = model_config(root)
    cdtype = compute_dtype(hf_config, dtype)
    model = build_empty_model(hf_config, cdtype)
    session = prepare(root, model, given, qconfig=qconfig, inventory=inventory, backend=backend, deny=deny,
                      dtype=cdtype, device=device)
    _load_tensors(session, device)
    session.finish()
    model.eval()
    return model
