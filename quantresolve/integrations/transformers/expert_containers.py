"""Find the MoE experts modules of a built transformers model and put a :class:`~.experts.QuantExperts` there.

A module is an *experts container* by structure: it holds 3-D parameters
whose leading dimension is the number of experts (not a convolution), and
either transformers marks it as one (``@use_experts_implementation`` sets
``has_gate`` / ``is_transposed`` / ``is_concatenated`` on it) or those
parameters carry an experts-module attribute name. Which containers can run
quantized is a registry, :data:`KNOWN_EXPERTS`: class name → layout. Each
entry was checked against transformers (``tests/integrations/test_moe.py``
runs the class and :class:`QuantExperts` on the same dense weights, and
compares the per-expert names with transformers' own conversion mapping). A
container that is not in the registry, or whose flags or shapes are not the
registry's layout, is refused by name (Nemotron-H's non-gated experts, GraniteMoE's).
gpt-oss' experts (transposed, gate/up interleaved, biases, a clamped SwiGLU) run as
:class:`~.gpt_oss_experts.FusedGateUpExperts`, and its checkpoints store every expert in one
tensor per projection on the container, which :func:`stacked_targets` splits per expert.

:func:`unfuse_experts` replaces every container with a ``QuantExperts`` whose
per-expert projections are meta-device ``nn.Linear`` modules at the
checkpoint's names, so planning resolves and installs them like any linear.
:func:`with_expert_containers` tells the resolver's profile where those
containers are, so ``resolve(container, kind="moe")`` rolls the experts up.

    >>> from accelerate import init_empty_weights
    >>> from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
    >>> cfg = Qwen3MoeConfig(hidden_size=32, moe_intermediate_size=16, num_hidden_layers=1, num_experts=2,
    ...     num_experts_per_tok=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=64)
    >>> with init_empty_weights():
    ...     model = Qwen3MoeForCausalLM(cfg)
    >>> found = unfuse_experts(model)
    >>> list(found), found["model.layers.0.mlp.experts"].replaces
    (['model.layers.0.mlp.experts'], 'Qwen3MoeExperts')
    >>> model.get_submodule("model.layers.0.mlp.experts.1.down_proj")
    Linear(in_features=16, out_features=32, bias=False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import torch
from torch import nn

from quantresolve.errors import LoadError
from quantresolve.integrations.transformers.experts import QuantExperts
from quantresolve.integrations.transformers.gpt_oss_experts import (
    BiasAfterLinear,
    ClampedSwiGLU,
    FusedGateUpExperts,
)
from quantresolve.integrations.transformers.install import set_submodule
from quantresolve.integrations.transformers.targets import StackedExpertsTarget, Target
from quantresolve.naming.profiles import Profile
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.resolver import Resolver

#: Attribute names transformers gives the 3-D parameters of experts modules (any layout).
EXPERT_PARAMETER_NAMES = frozenset({"gate_up_proj", "down_proj", "up_proj", "gate_proj", "w1", "w2", "w3"})

#: Instance attributes ``@use_experts_implementation`` sets, and the values of the layout
#: :class:`QuantExperts` computes: gate rows then up rows, ``[E, out, in]``, no bias, no post-norm.
STANDARD_FLAGS: Mapping[str, bool] = MappingProxyType({
    "has_gate": True, "is_concatenated": True, "is_transposed": False, "has_bias": False,
    "has_post_expert_norm": False})
#: gpt-oss: gate and up interleaved, ``[E, in, out]`` (``x @ W``), biases.
GPT_OSS_FLAGS: Mapping[str, bool] = MappingProxyType({
    "has_gate": True, "is_concatenated": False, "is_transposed": True, "has_bias": True,
    "has_post_expert_norm": False})

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)

#: ``(path, experts module, layout, experts, intermediate, hidden, dtype)`` → its stand-in.
Builder = Callable[[str, nn.Module, "ExpertsLayout", int, int, int, torch.dtype], QuantExperts]


def _gate_up_down(path: str, module: nn.Module, layout: ExpertsLayout, experts: int, inter: int, hidden: int,
                  dtype: torch.dtype) -> QuantExperts:
    """Separate gate, up and down linears per expert, the module's ``act_fn`` between them."""
    gate, up, down = layout.checkpoint
    act = getattr(module, "act_fn", None)
    if not callable(act):
        raise _refuse(path, module, "has no act_fn")
    quant = QuantExperts(experts, layout.checkpoint, act, replaces=type(module).__name__)
    for e in range(experts):
        quant.attach(e, {
            gate: nn.Linear(hidden, inter, bias=False, device="meta", dtype=dtype),
            up: nn.Linear(hidden, inter, bias=False, device="meta", dtype=dtype),
            down: nn.Linear(inter, hidden, bias=False, device="meta", dtype=dtype),
        })
    return quant


def _fused_gate_up(path: str, module: nn.Module, layout: ExpertsLayout, experts: int, inter: int, hidden: int,
                   dtype: torch.dtype) -> QuantExperts:
    """gpt-oss: one interleaved gate/up linear (with bias) and a down linear (with bias) per expert."""
    alpha, limit = getattr(module, "alpha", None), getattr(module, "limit", None)
    if not isinstance(alpha, float | int) or not isinstance(limit, float | int):
        raise _refuse(path, module, "has no numeric alpha / limit (swiglu_alpha, swiglu_limit)")
    gate_up, down = layout.checkpoint
    quant = FusedGateUpExperts(experts, layout.checkpoint, ClampedSwiGLU(float(alpha), float(limit)),
                               replaces=type(module).__name__)
    for e in range(experts):
        quant.attach(e, {gate_up: BiasAfterLinear(hidden, 2 * inter, bias=True, device="meta", dtype=dtype),
                         down: BiasAfterLinear(inter, hidden, bias=True, device="meta", dtype=dtype)})
    return quant


@dataclass(frozen=True)
class ExpertsLayout:
    """How one experts class stores its experts, and how checkpoints name each expert's projections.

    ``gate_up``: 3-D parameter ``[E, 2I, H]`` (``[E, H, 2I]`` when ``flags`` say transposed); ``down``:
    ``[E, H, I]`` (transposed ``[E, I, H]``); ``flags``: the instance attributes the module must carry;
    ``checkpoint``: the per-expert module names (gate, up, down — or gate_up, down);
    ``stacked``: checkpoints store every expert in one tensor per projection on the container itself
    (gpt-oss' ``mlp.experts.gate_up_proj_blocks``) instead of per-expert modules; ``build`` makes the stand-in.
    """

    gate_up: str = "gate_up_proj"
    down: str = "down_proj"
    checkpoint: tuple[str, ...] = ("gate_proj", "up_proj", "down_proj")
    flags: Mapping[str, bool] = field(default_factory=lambda: STANDARD_FLAGS)
    stacked: bool = False
    build: Builder = _gate_up_down


#: Qwen-2 style per-expert names (transformers' ``qwen2_moe`` conversion, shared by many families).
GATE_UP_DOWN = ExpertsLayout()
#: Mixtral's (and MiniMax-M2's) checkpoints name the projections w1 (gate), w3 (up), w2 (down).
MIXTRAL = ExpertsLayout(checkpoint=("w1", "w3", "w2"))
#: gpt-oss: interleaved gate/up and biases; every expert stacked on the container in the checkpoint.
GPT_OSS = ExpertsLayout(checkpoint=("gate_up_proj", "down_proj"), flags=GPT_OSS_FLAGS, stacked=True,
                        build=_fused_gate_up)

#: Experts classes :class:`QuantExperts` replaces, each checked against transformers 5.23 by a test.
KNOWN_EXPERTS: Mapping[str, ExpertsLayout] = {
    "DeepseekV3Experts": GATE_UP_DOWN,
    "Glm4MoeExperts": GATE_UP_DOWN,
    "GlmMoeDsaExperts": GATE_UP_DOWN,
    "GptOssExperts": GPT_OSS,
    "MiniMaxM2Experts": MIXTRAL,
    "MixtralExperts": MIXTRAL,
    "OlmoeExperts": GATE_UP_DOWN,
    "Qwen2MoeExperts": GATE_UP_DOWN,
    "Qwen3MoeExperts": GATE_UP_DOWN,
    "Qwen3NextExperts": GATE_UP_DOWN,
    "Qwen3_5MoeExperts": GATE_UP_DOWN,
}


def _expert_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    if isinstance(module, _CONVOLUTIONS):
        return {}
    return {n: p for n, p in module._parameters.items() if p is not None and p.dim() == 3}


def _is_container(module: nn.Module, params: Mapping[str, nn.Parameter]) -> bool:
    if not params or len({p.shape[0] for p in params.values()}) != 1:
        return False
    marked = any(hasattr(module, flag) for flag in STANDARD_FLAGS)
    return marked or type(module).__name__ in KNOWN_EXPERTS or bool(EXPERT_PARAMETER_NAMES & set(params))


def find_expert_containers(model: nn.Module) -> dict[str, nn.Module]:
    """Module path → experts module, for every experts container of ``model`` (supported or not)."""
    found = {}
    for name, module in model.named_modules():
        if name and _is_container(module, _expert_parameters(module)):
            found[name] = module
    return found


def _refuse(path: str, module: nn.Module, why: str) -> LoadError:
    shapes = ", ".join(f"{n} {list(p.shape)}" for n, p in _expert_parameters(module).items())
    return LoadError(f"{type(module).__name__} stores its experts as 3-D parameters ({shapes}) and {why}; "
                     f"quantized experts run for {', '.join(sorted(KNOWN_EXPERTS))}", field=path)


def _layout(path: str, module: nn.Module) -> tuple[ExpertsLayout, int, int, int]:
    """The registry layout of ``module`` and its (experts, intermediate, hidden) sizes, or a LoadError."""
    cls = type(module).__name__
    layout = KNOWN_EXPERTS.get(cls)
    if layout is None:
        raise _refuse(path, module, "is not a layout quantresolve knows")
    odd = {f: getattr(module, f) for f, want in layout.flags.items() if getattr(module, f, want) != want}
    if odd:
        raise _refuse(path, module, f"this instance is built with {odd} (expected {dict(layout.flags)})")
    params = _expert_parameters(module)
    gate_up, down = params.get(layout.gate_up), params.get(layout.down)
    if gate_up is None or down is None or set(params) != {layout.gate_up, layout.down}:
        raise _refuse(path, module, f"not exactly {layout.gate_up!r} and {layout.down!r}")
    transposed = layout.flags["is_transposed"]
    experts, *dims = gate_up.shape
    hidden, double = dims if transposed else dims[::-1]
    want = (experts, double // 2, hidden) if transposed else (experts, hidden, double // 2)
    if double % 2 or tuple(down.shape) != want:
        raise _refuse(path, module, f"{layout.down} is not {list(want)} for {layout.gate_up} {list(gate_up.shape)}")
    return layout, experts, double // 2, hidden


def unfuse_experts(model: nn.Module) -> dict[str, QuantExperts]:
    """Replace every experts container with a :class:`QuantExperts` of meta ``nn.Linear`` projections.

    Returns the new modules by path. Raises :class:`~quantresolve.errors.LoadError` naming the path and
    class of a container :class:`QuantExperts` cannot stand in for.
    """
    done: dict[str, QuantExperts] = {}
    for path, module in find_expert_containers(model).items():
        layout, experts, inter, hidden = _layout(path, module)
        dtype = module._parameters[layout.gate_up].dtype  # type: ignore[union-attr]
        quant = layout.build(path, module, layout, experts, inter, hidden, dtype)
        set_submodule(model, path, quant)
        done[path] = quant
    return done


def stacked_targets(containers: Mapping[str, QuantExperts], targets: Mapping[str, Target]) -> dict[str, Target]:
    """A :class:`~.targets.StackedExpertsTarget` at each container whose checkpoints stack every expert in
    one tensor per projection (gpt-oss), feeding the per-expert targets already in ``targets``."""
    out: dict[str, Target] = {}
    for path, quant in containers.items():
        if KNOWN_EXPERTS[quant.replaces].stacked:
            out[path] = StackedExpertsTarget({e: {role: targets[f"{path}.{e}.{role}"] for role in quant.roles}
                                              for e in range(quant.num_experts)})
    return out


def with_expert_containers(profile: Profile, containers: Mapping[str, QuantExperts]) -> Profile:
    """``profile`` plus an ``expert_containers`` rule for each container it does not already declare."""
    missing = sorted(p for p, q in containers.items() if _declared(profile, p, q) is False)
    if not missing:
        return profile
    roles = sorted({r for p in missing for r in containers[p].roles})
    rx = re.compile(rf"^(?P<container>{'|'.join(map(re.escape, missing))})\.(?P<expert>\d+)"
                    rf"\.(?P<proj>{'|'.join(map(re.escape, roles))})$")
    first = containers[missing[0]].roles
    return replace(profile, expert_containers=(*profile.expert_containers, rx), expert_projections=first)


def _declared(profile: Profile, path: str, experts: QuantExperts) -> bool:
    hits = [profile.expert_of(f"{path}.0.{role}") for role in experts.roles]
    return all(h is not None and h[0] == path for h in hits)


def resolve_experts(resolver: Resolver, containers: Iterable[str]) -> list[Resolution]:
    """``kind="moe"`` resolution of every container: the experts' common scheme, or ConflictingExpertsError."""
    return [resolver.resolve(path, "moe") for path in sorted(containers)]


__all__ = ["EXPERT_PARAMETER_NAMES", "GATE_UP_DOWN", "GPT_OSS", "KNOWN_EXPERTS", "MIXTRAL", "ExpertsLayout",
           "find_expert_containers", "resolve_experts", "stacked_targets", "unfuse_experts", "with_expert_containers"]
