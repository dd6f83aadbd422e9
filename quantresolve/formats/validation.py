"""Turn pydantic validation failures into :class:`~quantresolve.errors.ConfigError` with a field path.

Pydantic reports a location as a tuple (``('quantization', 'quantized_layers',
'model.layers.0.mlp', 'quant_algo')``). Users read paths, so dict keys are
rendered in brackets and list indices as ``[i]``::

    >>> format_path(("quantization", "quantized_layers", "model.layers.0.mlp", "quant_algo"))
    'quantization.quantized_layers["model.layers.0.mlp"].quant_algo'
    >>> format_path(("ignore", 3))
    'ignore[3]'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from quantresolve.errors import ConfigError

#: Fields whose values are dicts keyed by free-form names (module names, group names).
KEYED_FIELDS = frozenset({"quantized_layers", "config_groups", "weight_map"})

M = TypeVar("M", bound=BaseModel)


def format_path(loc: Sequence[Any], prefix: str = "") -> str:
    """Render a pydantic location as ``a.b["key"].c[0]``; internal validator steps are dropped."""
    out = prefix
    keyed = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif keyed:
            out += f"[{json.dumps(part)}]"
            keyed = False
            continue
        elif isinstance(part, str) and ("[" in part or "(" in part) and not keyed:
            continue  # pydantic's union / function-after steps, e.g. 'function-after[...]'
        else:
            out += f".{part}" if out else str(part)
        keyed = isinstance(part, str) and part in KEYED_FIELDS
    return out


def validate_model(model: type[M], data: Any, *, file: str, prefix: str = "") -> M:
    """``model.model_validate(data)``, re-raising the first problem as a located :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, file=file, prefix=prefix) from None


def validation_error(err: ValidationError, *, file: str, prefix: str = "") -> ConfigError:
    """The first error of ``err`` as a :class:`ConfigError` (the count of others is mentioned)."""
    errors = err.errors(include_url=False)
    first = errors[0]
    msg = first["msg"]
    if first["type"] in ("missing", "extra_forbidden"):
        msg = msg.lower()
    elif "input" in first and not isinstance(first["input"], dict | list):
        msg = f"{msg} (got {first['input']!r:.80})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ConfigError(msg + more, file=file, field=format_path(first["loc"], prefix) or "<root>")
