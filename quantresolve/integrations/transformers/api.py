"""``load_quantized``: a quantized checkpoint → a ready transformers model, layer by layer as resolved.

Steps (each in its own module of this package):

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

from quantresolve.checkpoint import Inventory, build_inventory, read_checkpoint
from quantresolve.dispatch import QuantLinear
from quantresolve.errors import LoadError, QuantResolveError
from quantresolve.formats.loader import load_config
from quantresolve.integrations.device import check_device
from quantresolve.integrations.preflight import (
    check_fits_in_memory,
    check_layer_counts,
    stack_depth,
)
from quantresolve.integrations.transformers.build import build_empty_model
from quantresolve.integrations.transformers.config import (
    compute_dtype,
    model_config,
    read_config_json,
)
from quantresolve.integrations.transformers.expert_containers import (
    resolve_experts,
    stacked_targets,
    unfuse_experts,
    with_expert_containers,
)
from quantresolve.integrations.transformers.ignored import ignored_on_load, split_ignored
from quantresolve.integrations.transformers.install import Installed, check_no_meta, install
from quantresolve.integrations.transformers.kv_attention import apply_fp8_kv
from quantresolve.integrations.transformers.layer_completion import LayerCompletion, quantized_first
from quantresolve.integrations.transformers.memory import release_freed_memory
from quantresolve.integrations.transformers.plan import LayerPlan, plan_layers
from quantresolve.integrations.transformers.profile_choice import ProfileChoice, choose_profile
from quantresolve.integrations.transformers.report import DENSE, KVRecord, LayerRecord, LoadReport
from quantresolve.integrations.transformers.route import plan_routes
from quantresolve.integrations.transformers.stream import stream_tensors
from quantresolve.integrations.transformers.tying import (
    check_tied_layers,
    tie_parameters,
    tied_parameters,
)
from quantresolve.naming.profiles import Profile, load_profile
from quantresolve.resolve.resolver import Resolver

#: How many names an error message lists before "and N more".
SHOWN = 8


def _names(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def _inventory(root: Path) -> Inventory:
    catalog = read_checkpoint(root)
    if not catalog.has_headers:
        raise LoadError("the index names shard files that are not present: no tensor data to load",
                        file=str(root))
    # Sizes before anything is built or allocated: config.json's layer counts against the
    # checkpoint's own stacks, the tensors' bytes against the memory available now.
    check_layer_counts(read_config_json(root), stack_depth(catalog.tensors))
    check_fits_in_memory(catalog.total_bytes, what="the checkpoint's tensors", field=None, file=str(root))
    return build_inventory(catalog)


def _load_tensors(root: Path, inventory: Inventory, profile: Profile, installed: Installed,
                  device: str | torch.device, model: PreTrainedModel) -> tuple[list[str], list[str], LayerCompletion]:
    """Stream every routed tensor into its target; ``(dropped, ignored tensor names, the layers finalized)``."""
    routes = plan_routes(inventory, profile.mapper, installed.targets)
    unconsumed, ignored = split_ignored(routes.unconsumed, ignored_on_load(model))
    if unconsumed:
        raise LoadError(f"{len(unconsumed)} checkpoint tensor(s) that nothing in the model consumes: "
                        f"{_names(unconsumed)}", file=str(root))
    quantized, rest = quantized_first(routes.routes, installed.targets)
    completion = LayerCompletion(quantized, installed.targets, installed.layers)
    for part in (quantized, rest):  # repack quantized layers before the dense tensors are read
        for route, tensor in stream_tensors(root, part, device):
            try:
                installed.targets[route.module].load(route.suffix, tensor)
            except LoadError as err:
                raise LoadError(err.detail, file=route.file, field=route.tensor) from None
            if (prefix := completion.arrived(route)) is not None:
                _finalize_layer(prefix, installed.layers[prefix])
                completion.finalized.add(prefix)
    return routes.dropped, ignored, completion


def _check_filled(model: PreTrainedModel, installed: Installed, completion: LayerCompletion) -> None:
    missing = [f"{path}.{suffix}" for path, target in installed.targets.items()
               if not completion.finalized_target(path) for suffix in target.missing()]
    missing += [n for n in check_no_meta(model) if n not in missing]
    if missing:
        raise LoadError(f"{len(missing)} model tensor(s) that the checkpoint does not provide: "
                        f"{_names(sorted(set(missing)))}", field="checkpoint")


def _finalize_layer(prefix: str, layer: QuantLinear) -> None:
    try:
        layer.finalize()
    except QuantResolveError as err:
        raise type(err)(err.detail, file=err.file, field=prefix) from None
    release_freed_memory()  # the repack's transient buffers, before the next layer's


def _finalize(installed: Installed, done: set[str]) -> None:
    for prefix, layer in installed.layers.items():
        if prefix not in done:
            _finalize_layer(prefix, layer)
    for scales in installed.kv.values():
        scales.finalize()


def _report(root: Path, choice: ProfileChoice, resolver: Resolver, plans: list[LayerPlan],
            installed: Installed, applied: bool) -> LoadReport:
    report = LoadReport(checkpoint=str(root), profile=choice.profile.name, producer=resolver.config.producer,
                        quant_algo=resolver.config.quant_algo, profile_reason=choice.reason)
    for plan in plans:
        layer = installed.layers.get(plan.prefix)
        res = plan.resolution
        report.layers.append(LayerRecord(plan.prefix, plan.kind, res.algo, res.rule,
                                         layer.backend if layer is not None else DENSE, plan.members,
                                         res.scheme.summary() if res.scheme is not None else None))
    for prefix, scales in installed.kv.items():
        report.kv_cache.append(KVRecord(prefix, scales.scheme.algo or "FP8", scales.k_scale, scales.v_scale,
                                        applied))
    return report


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
    inventory = _inventory(root)
    hf_config = model_config(root)
    cdtype = compute_dtype(hf_config, dtype)
    model = build_empty_model(hf_config, cdtype)
    experts = unfuse_experts(model)  # MoE experts modules → one linear per expert projection
    # the modules the model class declares it does not load take no part in deriving the names
    loadable, _ = split_ignored(inventory.modules, ignored_on_load(model))
    choice = choose_profile(given, model, loadable, experts)
    chosen = choice.profile
    if experts:  # the profile learns where the model's expert containers are
        chosen = with_expert_containers(chosen, experts)
    resolver = Resolver(qconfig, chosen, checkpoint_modules=inventory.modules.keys())
    moe = resolve_experts(resolver, experts)  # one scheme per container, or ConflictingExpertsError
    plans, attention = plan_layers(model, resolver)
    tied = tied_parameters(model)
    present = {m for n in inventory.modules if (m := chosen.mapper.map_name(n)) is not None}
    check_tied_layers(tied, plans, present)
    installed = install(model, plans, attention, backend=backend, deny=tuple(deny), dtype=cdtype, device=device)
    installed.targets.update(stacked_targets(experts, installed.targets))  # gpt-oss: experts stacked per projection
    dropped, ignored, completion = _load_tensors(root, inventory, chosen, installed, device, model)
    tie_parameters(tied, installed.targets, dict(model.named_parameters(remove_duplicate=False)))
    _check_filled(model, installed, completion)
    _finalize(installed, completion.finalized)
    applied = bool(installed.kv) and bool(apply_fp8_kv(model))
    report = _report(root, ProfileChoice(chosen, choice.reason), resolver, plans, installed, applied)
    report.dropped = dropped
    report.ignored = ignored
    report.notes += [f"{r.prefix}: {experts[r.prefix].num_experts} experts ({experts[r.prefix].replaces}), "
                     f"{r.algo or 'unquantized'} by rule {r.rule!r}" for r in moe]
    model.__dict__["quantresolve_report"] = report
    model.eval()
    return model
