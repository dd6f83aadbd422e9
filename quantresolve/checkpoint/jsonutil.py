"""Strict JSON decoding for checkpoint files: duplicate keys are refused, not last-one-wins.

Python's :func:`json.loads` silently keeps the last of two equal keys; for a
``weight_map`` or a safetensors header that would hide a tensor. The
``object_pairs_hook`` (:func:`quantresolve.util.jsonfile.unique_object`, shared with the
config reader) refuses duplicates and names the key::

    >>> strict_loads(b'{"a": 1, "a": 2}', file="model.safetensors.index.json")
    Traceback (most recent call last):
    ...
    quantresolve.errors.CheckpointError: model.safetensors.index.json: duplicate key 'a' in a JSON object
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import CheckpointError
from ..util.jsonfile import DuplicateKeyError, unique_object


class _NonIntegerError(ValueError):
    pass


def _refuse_number(text: str) -> Any:
    raise _NonIntegerError(text)


def strict_loads(raw: bytes, *, file: str, what: str = "JSON", integers_only: bool = False) -> Any:
    """Decode UTF-8 JSON ``raw``; any defect is a :class:`CheckpointError` naming ``file``.

    ``integers_only`` refuses floats, ``NaN`` and ``Infinity`` anywhere (a safetensors
    header holds only integers and strings), so later checks need not look for them.
    """
    number_hooks = (
        {"parse_float": _refuse_number, "parse_constant": _refuse_number} if integers_only else {}
    )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CheckpointError(
            f"{what} is not valid UTF-8 ({err.reason} at byte {err.start})", file=file
        ) from None
    try:
        return json.loads(text, object_pairs_hook=unique_object, **number_hooks)
    except DuplicateKeyError as err:
        raise CheckpointError(f"duplicate key {err.key!r} in a JSON object", file=file) from None
    except _NonIntegerError as err:
        raise CheckpointError(f"{what} holds a non-integer number {err}", file=file) from None
    except (json.JSONDecodeError, RecursionError) as err:
        detail = err.msg if isinstance(err, json.JSONDecodeError) else "nesting too deep"
        raise CheckpointError(f"{what} is not valid JSON: {detail}", file=file) from None
