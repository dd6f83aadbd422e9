"""Strict JSON: duplicate keys are refused (not last-one-wins), files are size-capped and stay inside the checkpoint.

Python's :func:`json.loads` silently keeps the last of two equal keys; in a
config, an index ``weight_map`` or a safetensors header that would hide an
entry. :func:`unique_object` is the ``object_pairs_hook`` every reader here
uses (the checkpoint's header reader too, :mod:`quantresolve.checkpoint.jsonutil`).
:func:`read_json` / :func:`parse_json_text` read the config-like files
(``config.json``, ``hf_quant_config.json``, naming profiles) and raise
:class:`~quantresolve.errors.ConfigError` naming the file::

    >>> parse_json_text('{"a": 1, "a": 2}', file="config.json")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: config.json: invalid JSON: duplicate key 'a'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantresolve.errors import ConfigError
from quantresolve.util.containment import Confinement

#: Largest config file read (real ones are < 4 MB; MiniMax-M3's 22k-layer config is ~3 MB).
MAX_CONFIG_BYTES = 64 * 1024 * 1024


class DuplicateKeyError(ValueError):
    """A JSON object spells one key twice; ``key`` names it."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that builds the dict and raises :class:`DuplicateKeyError` on a repeated key.

        >>> json.loads('{"a": {"b": 1, "b": 2}}', object_pairs_hook=unique_object)
        Traceback (most recent call last):
        ...
        quantresolve.util.jsonfile.DuplicateKeyError: duplicate key 'b'
    """
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return obj


def read_json(path: Path, *, label: str | None = None) -> Any:
    """Read a JSON file strictly: size cap, no duplicate keys. ``path`` is trusted (a file the user named);
    a file a checkpoint names is read through :func:`read_json_in`, which keeps it inside the checkpoint."""
    name = label or path.name
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"file is {size} bytes; configs larger than {MAX_CONFIG_BYTES} bytes are refused",
                              file=name)
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=name) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", file=name) from None
    return parse_json_text(text, file=name)


def read_json_in(box: Confinement, name: str, *, required: bool = True) -> Any:
    """The JSON file ``name`` of a checkpoint directory, read strictly and only from inside it.

    ``None`` when ``name`` is absent and not ``required``; present but unusable (a directory, a
    symlink loop, an escape) is a :class:`~quantresolve.errors.ConfigError` naming it, never "absent".
    """
    path = box.locate(name, required=required, error=ConfigError)
    return None if path is None else read_json(path, label=name)


def parse_json_text(text: str, *, file: str) -> Any:
    """Decode ``text``; any defect is a :class:`~quantresolve.errors.ConfigError` naming ``file``."""
    try:
        return json.loads(text, object_pairs_hook=unique_object)
    except json.JSONDecodeError as err:
        raise ConfigError(f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}", file=file) from None
    except ValueError as err:  # duplicate keys, oversized integers
        raise ConfigError(f"invalid JSON: {err}", file=file) from None
    except RecursionError:
        raise ConfigError("invalid JSON: nested too deeply", file=file) from None


__all__ = ["MAX_CONFIG_BYTES", "DuplicateKeyError", "parse_json_text", "read_json", "read_json_in", "unique_object"]
