"""``QuantLinear``: a layer that owns a checkpoint's tensors in their own format.

Life cycle: :func:`make_linear` → ``load(suffix, tensor, shard)`` for every
tensor of :meth:`QuantLinear.expected_tensors` → ``finalize()`` (checks,
groups fused shards, repacks for the backend) → ``forward(x)``.

Place in the flow: the layer, near the top of the dispatcher — it builds its codec (:mod:`.codecs`),
its rank's plan (:mod:`.slicing`), selects its backend (:mod:`.selection`), and groups its loaded
shards (:mod:`.shards`) for it; only :mod:`.tp` sits above.

    >>> import torch
    >>> layer = make_linear(None, 4, 2)
    >>> layer.load("weight", torch.eye(2, 4))
    >>> layer.finalize()
    >>> layer(torch.ones(1, 4, dtype=torch.bfloat16)).tolist(), layer.backend
    ([[1.0, 1.0]], 'dense_dequant')

Fused layers (``out_features=[q, k, v]`` with ``shard_names``) keep each
shard's tensors and scales as loaded — nothing assumes ModelOpt's equal
``weight_scale_2`` / ``input_scale`` — so a fused layer equals its shards run
separately. Consecutive shards whose input transform (pre-quant scale,
activation quantizer) is equal share one quantized activation and one GEMM.

Tensor parallelism: with ``tp=TPSpec(mode, rank, world)`` the layer holds only
rank ``rank``'s part of a column- (N) or row- (K) parallel layer; ``load``
still takes the *full* checkpoint tensors and slices them on packed-word,
group and block boundaries (:mod:`quantresolve.dispatch.slicing`). A row-parallel
layer returns partial sums and keeps its bias in ``bias_after_reduce`` for
:class:`~quantresolve.dispatch.tp.RowParallelLinear` to add after the all-reduce.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from quantresolve.dispatch.backends.base import Backend
from quantresolve.dispatch.codecs import DenseCodec, WeightCodec, codec_for
from quantresolve.dispatch.selection import ENV_FORCE, device_info, select_backend
from quantresolve.dispatch.shards import Shard, ShardGroup
from quantresolve.dispatch.slicing import TPPlan, TPSpec, plan_tp
from quantresolve.dispatch.specs import ANY_FLOAT, Shapes, TensorSpec, check_tensor
from quantresolve.errors import BackendUnavailableError, DispatchError, LoadError
from quantresolve.formats.scheme import QuantScheme

Key = tuple[str | None, str]


class QuantLinear(nn.Module):
    """A (possibly fused) quantized linear layer; see the module docstring.

    Attributes: ``scheme`` (``None`` = dense), ``backend`` (name of the backend in
    use), ``in_features``, ``out_features`` (total), ``shard_names``, ``shard_sizes``;
    ``tp_plan`` (``None`` unless built with ``tp=``; the sizes are then the rank's own).
    """

    def __init__(self, scheme: QuantScheme | None, in_features: int, out_features: int | list[int], *,
                 bias: bool = False, shard_names: list[str] | None = None,
                 dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu",
                 backend: str | None = None, deny: Iterable[str] = (), batch: int | None = None,
                 training: bool = False, tp: TPSpec | None = None) -> None:
        super().__init__()
        fused = isinstance(out_features, list | tuple)
        sizes = [int(n) for n in out_features] if fused else [int(out_features)]  # type: ignore[union-attr]
        if fused and shard_names is None:
            shard_names = [str(i) for i in range(len(sizes))]
        names: list[str | None] = list(shard_names) if fused else [None]  # type: ignore[arg-type]
        if len(names) != len(sizes) or len(set(names)) != len(names):
            raise DispatchError(f"shard_names {shard_names} do not match out_features {out_features}",
                                field="shard_names")
        self.scheme = scheme
        self.codec: WeightCodec = codec_for(scheme, dtype) if scheme is not None else DenseCodec()
        self.tp_plan: TPPlan | None = None
        if tp is not None:
            self.tp_plan = plan_tp(self.codec, int(in_features), sizes, names, bias=bias, spec=tp)
            in_features, sizes = self.tp_plan.local_k, self.tp_plan.local_sizes
        self.in_features, self.out_features = int(in_features), sum(sizes)
        self.shard_names, self.shard_sizes = names, sizes
        self.dtype, self.device = dtype, torch.device(device)
        self.has_bias = bias
        self.shapes = Shapes(self.out_features, self.in_features, batch, tuple(sizes) if fused else (),
                             str(dtype).removeprefix("torch."))
        self._device_info = device_info(device, training=training)
        self._impl: Backend = select_backend(scheme, self.shapes, self._device_info, backend=backend, deny=deny)
        self.backend: str = self._impl.name
        #: chosen by the user (``backend=`` / ``QUANTRESOLVE_BACKEND``): never replaced at ``finalize()``
        self._forced = bool(backend or os.environ.get(ENV_FORCE))
        self._deny = tuple(deny)
        self._expected: dict[Key, TensorSpec] = {}
        for name, n in zip(names, sizes, strict=True):
            for suffix, spec in self.codec.expected(n, self.in_features).items():
                self._expected[(name, suffix)] = spec
            if bias:
                self._expected[(name, "bias")] = TensorSpec((n,), ANY_FLOAT)
        self._loaded: dict[Key, torch.Tensor] = {}
        self._groups: list[tuple[ShardGroup, Any]] = []
        self._bias: torch.Tensor | None = None
        self.bias_after_reduce: torch.Tensor | None = None
        self._finalized = False

    # -- loader protocol ---------------------------------------------------------------
    def expected_tensors(self) -> dict[Key, tuple[tuple[int, ...] | None, str]]:
        """``{(shard or None, suffix): (shape, dtype)}`` in the checkpoint's own names (full shapes under TP)."""
        specs = self.tp_plan.full_specs if self.tp_plan is not None else self._expected
        return {key: (spec.shape, spec.dtype) for key, spec in specs.items()}

    def _where(self, suffix: str, shard: str | None) -> str:
        return f"{shard}.{suffix}" if shard is not None else suffix

    def load(self, suffix: str, tensor: torch.Tensor, shard: str | None = None) -> None:
        """Accept one checkpoint tensor (``shard`` names the fused shard, ``None`` when not fused)."""
        key = (shard, suffix)
        where = self._where(suffix, shard)
        spec = self._expected.get(key)
        if spec is None:
            known = sorted({s for _, s in self._expected})
            shards = [n for n in self.shard_names if n is not None]
            raise LoadError(f"unexpected tensor for {self._label()}; expected suffixes {known}"
                            + (f" on shards {shards}" if shards else ""), field=where)
        if key in self._loaded:
            raise LoadError("tensor loaded twice", field=where)
        if self.tp_plan is not None:  # check the full tensor as stored, then keep this rank's part
            tensor = self.tp_plan.slice(key, check_tensor(self.tp_plan.full_specs[key], tensor, where))
        self._loaded[key] = check_tensor(spec, tensor, where).detach().to(self.device)

    def missing_tensors(self) -> list[str]:
        return [self._where(s, n) for (n, s), spec in self._expected.items()
                if not spec.optional and (n, s) not in self._loaded]

    def finalize(self) -> None:
        """Check completeness, group fused shards by input transform, prepare the backend, and drop
        the checkpoint tensors the backend's state makes redundant (see :meth:`Backend.rebuild`)."""
        missing = self.missing_tensors()
        if missing:
            raise LoadError(f"{self._label()}: missing tensors {missing}", field="finalize")
        shards = [Shard(name, n, {s: t for (sh, s), t in self._loaded.items() if sh == name and s != "bias"})
                  for name, n in zip(self.shard_names, self.shard_sizes, strict=True)]
        self._groups = []
        current: ShardGroup | None = None
        for shard in shards:
            transform = self.codec.input_transform(shard.tensors)
            if current is not None and current.transform.same_as(transform):
                current.shards.append(shard)
                continue
            current = ShardGroup([shard], self.in_features, self.codec, transform, self.dtype, self.device)
            self._groups.append((current, None))
        if self.tp_plan is not None:
            self.tp_plan.note_transforms([g.transform for g, _ in self._groups])
        self._groups = self._prepare([g for g, _ in self._groups])
        for group, state in self._groups:
            # A state that rebuilds the dense weight bit for bit replaces the checkpoint tensors:
            # a repacked layer would otherwise hold its weight twice.
            rebuild = self._impl.rebuild(state, group)
            if rebuild is not None:
                group.rebuild = rebuild
                for shard in group.shards:
                    shard.tensors = {}
        if self.has_bias:
            bias = torch.cat([self._loaded[(n, "bias")].to(self.dtype) for n in self.shard_names])
            # A row-parallel layer's output is a partial sum: its bias is added once, after the all-reduce.
            if self.tp_plan is not None and self.tp_plan.spec.axis == "k":
                self.bias_after_reduce = bias
            else:
                self._bias = bias
        self._loaded = {}  # the shards (or the backend's state) hold what dequantize() needs
        self._finalized = True

    def _prepare(self, groups: list[ShardGroup]) -> list[tuple[ShardGroup, Any]]:
        """Each group's backend state. A selected (not forced) backend whose kernel turns out unavailable only
        now — a native extension whose build failed — is replaced by the next one in the catalog's order;
        the failure is that backend's verdict from then on (``quantresolve kernels`` shows its reason)."""
        try:
            return [(g, self._impl.prepare(g)) for g in groups]
        except BackendUnavailableError:
            if self._forced:
                raise
        self._deny = (*self._deny, self._impl.name)
        self._impl = select_backend(self.scheme, self.shapes, self._device_info, deny=self._deny)
        self.backend = self._impl.name
        return self._prepare(groups)

    # -- compute -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Decoding's hot path: a batch-1 GEMV takes ~0.2 ms, so the Python around it matters —
        # no autograd context when grad is already off, no reshape or cast that would be a no-op.
        if not self._finalized:
            raise DispatchError(f"{self._label()}: forward before finalize()", field="forward")
        flat = x.dim() == 2
        x2d = x if flat else x.reshape(-1, x.shape[-1])
        if torch.is_grad_enabled():
            with torch.no_grad():
                y = self._compute(x2d)
        else:
            y = self._compute(x2d)
        if y.dtype != x.dtype:
            y = y.to(x.dtype)
        return y if flat else y.reshape(*x.shape[:-1], self.out_features)

    def _compute(self, x2d: torch.Tensor) -> torch.Tensor:
        """``[M, out_features]`` in the compute dtype: every input group through the backend, plus bias."""
        impl, groups = self._impl, self._groups
        if len(groups) == 1:
            group, state = groups[0]
            y = impl.apply(state, x2d, group)
            if y.dtype != self.dtype:
                y = y.to(self.dtype)
        else:
            y = torch.cat([impl.apply(state, x2d, group).to(self.dtype) for group, state in groups], dim=-1)
        if self._bias is not None:
            y = y + self._bias
        return y

    def dequantize(self) -> torch.Tensor:
        """Dense ``[out_features, in_features]`` weight in the compute dtype (bit-exact per producer)."""
        if not self._finalized:
            raise DispatchError(f"{self._label()}: dequantize before finalize()", field="dequantize")
        return torch.cat([g.dense() for g, _ in self._groups], dim=0)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """float32 ``transform(x) @ dequantize()ᵀ (+ b)`` per input group: what every backend approximates."""
        x2d = x.reshape(-1, x.shape[-1])
        # Row-major weights, as dequantize() returns them: float32 matmul rounding depends on the layout.
        outs = [g.transform.apply(x2d) @ g.dense().float().contiguous().t() for g, _ in self._groups]
        y = torch.cat(outs, dim=-1)
        if self._bias is not None:
            y = y + self._bias.float()
        return y.reshape(*x.shape[:-1], self.out_features)

    def held_bytes(self) -> int:
        """Bytes of memory the layer holds for its weight: every distinct storage of its backend's states, of
        the checkpoint tensors its shards keep, and of its bias — each counted once (a view shares its base's).

            >>> layer = make_linear(None, 4, 2)
            >>> layer.load("weight", torch.eye(2, 4))
            >>> layer.finalize()
            >>> layer.held_bytes()  # the dense bf16 weight
            16
        """
        seen: dict[int, int] = {}
        parts: list[Any] = [self._bias, self.bias_after_reduce, list(self._loaded.values())]
        for group, state in self._groups:
            parts += [state, [s.tensors for s in group.shards]]
        for t in _tensors_in(parts):
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return sum(seen.values())

    @property
    def weight(self) -> torch.Tensor:
        """Shape, dtype and device of the dense weight — never its data (see :func:`weight_stand_in`).

        Model code written for ``nn.Linear`` asks ``layer.weight.dtype`` (transformers' Gemma-4
        patch embedder casts pixels to it) or ``.device``. Read-only and not a parameter: not in
        ``parameters()`` / ``state_dict()``, and assigning one is an error. The dense weight is
        :meth:`dequantize`.
        """
        return weight_stand_in(self.out_features, self.in_features, self.dtype, self.device)

    def _label(self) -> str:
        return self.scheme.summary() if self.scheme is not None else "dense linear"

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.shard_sizes}, "
                f"scheme={self._label()}, backend={self.backend}")


def _tensors_in(value: Any, depth: int = 0) -> Iterable[torch.Tensor]:
    """Every tensor reachable from ``value`` through lists, tuples, dicts and plain objects' attributes (a
    backend's state is any of these), a few levels deep."""
    if isinstance(value, torch.Tensor):
        yield value
    elif depth < 4 and isinstance(value, list | tuple):
        for v in value:
            yield from _tensors_in(v, depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for v in value.values():
            yield from _tensors_in(v, depth + 1)
    elif depth < 4 and hasattr(value, "__dict__") and not isinstance(value, nn.Module | type):
        yield from _tensors_in(vars(value), depth + 1)


def weight_stand_in(n: int, k: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """A ``[n, k]`` tensor of ``dtype`` on ``device`` that answers shape/dtype/device questions only.

    One NaN element broadcast over the shape (stride 0): it costs one element, anything computed
    from its values is NaN rather than plausibly wrong, and writing into it fails (torch refuses
    in-place writes where elements share memory). Unlike a meta tensor, ``.device`` is the real one,
    so ``x.to(layer.weight.device)`` keeps working.

        >>> w = weight_stand_in(3, 2, torch.bfloat16, "cpu")
        >>> w.shape, w.dtype, w.device.type, w.stride(), bool(w.isnan().all())
        (torch.Size([3, 2]), torch.bfloat16, 'cpu', (0, 0), True)
    """
    return torch.full((), float("nan"), dtype=dtype, device=device).expand(n, k)


def make_linear(scheme: QuantScheme | None, in_features: int, out_features: int | list[int], *,
                bias: bool = False, shard_names: list[str] | None = None,
                dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu",
                backend: str | None = None, deny: Iterable[str] = (), batch: int | None = None,
                training: bool = False, tp: TPSpec | None = None) -> QuantLinear:
    """Build the linear method of ``scheme`` (``None`` → dense) with its backend selected.

    ``batch`` (optional) is the expected number of rows per call; kernels that
    lose to a dense matmul at large batch decline then. ``tp`` builds only one
    rank's part of a tensor-parallel layer (sizes stay the full ones; the
    backend is chosen for the local shape). Raises
    :class:`~quantresolve.errors.DispatchError` for a scheme with no implementation
    and :class:`~quantresolve.errors.BackendUnavailableError` for a forced backend
    that cannot run it.
    """
    return QuantLinear(scheme, in_features, out_features, bias=bias, shard_names=shard_names, dtype=dtype,
                       device=device, backend=backend, deny=deny, batch=batch, training=training, tp=tp)
