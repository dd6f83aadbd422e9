"""Hostile checkpoints: every defect is a CheckpointError naming the file, and nothing outside is read."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from quantresolve.checkpoint import read_checkpoint
from quantresolve.checkpoint.header import MAX_HEADER_BYTES
from quantresolve.errors import CheckpointError, NoTensorFilesError
from tests.checkpoint.ckpt_helpers import entries_header, write_index, write_raw, write_shard

INDEX = "model.safetensors.index.json"
A = "model-00001-of-00002.safetensors"
B = "model-00002-of-00002.safetensors"


def _refused(root: Path, *must_name: str, opened=None) -> CheckpointError:
    if opened is not None:
        opened.start()
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(root)
    err = info.value
    assert type(err) is CheckpointError
    for text in must_name:
        assert text in str(err), f"{text!r} not in {err}"
    return err


def _assert_nothing_outside(opened, root: Path) -> None:
    assert opened.outside(root) == []


# --- escapes ---------------------------------------------------------------------------------


def test_index_path_traversal(ckpt: Path, outside_secret: Path, opened) -> None:
    write_shard(ckpt / A, {"a.weight": ("F32", [2])})
    write_index(ckpt, {"a.weight": A, "secret.weight": "../outside/secret.safetensors"})
    _refused(ckpt, INDEX, "../outside/secret.safetensors", "secret.weight", opened=opened)
    _assert_nothing_outside(opened, ckpt)


def test_index_absolute_path(ckpt: Path, outside_secret: Path, opened) -> None:
    write_index(ckpt, {"secret.weight": str(outside_secret)})
    _refused(ckpt, INDEX, "absolute", opened=opened)
    _assert_nothing_outside(opened, ckpt)


def test_index_nested_traversal_that_returns_inside_is_still_refused(ckpt: Path, opened) -> None:
    write_shard(ckpt / A, {"a.weight": ("F32", [2])})
    write_index(ckpt, {"a.weight": f"sub/../{A}"})
    _refused(ckpt, INDEX, "escapes")


def test_symlinked_shard_escaping(ckpt: Path, outside_secret: Path, opened) -> None:
    (ckpt / A).symlink_to(outside_secret)
    write_shard(ckpt / B, {"b.weight": ("F32", [2])})
    write_index(ckpt, {"secret.weight": A, "b.weight": B})
    _refused(ckpt, A, "outside the checkpoint directory", opened=opened)
    _assert_nothing_outside(opened, ckpt)
    assert (ckpt / B).resolve() not in opened.paths, (
        "no header may be read before all shards are checked"
    )


def test_symlinked_single_file_escaping(ckpt: Path, outside_secret: Path, opened) -> None:
    (ckpt / "model.safetensors").symlink_to(outside_secret)
    _refused(ckpt, "model.safetensors", "symlink", opened=opened)
    _assert_nothing_outside(opened, ckpt)


def test_symlinked_directory_escaping(ckpt: Path, outside_secret: Path, opened) -> None:
    (ckpt / "sub").symlink_to(outside_secret.parent, target_is_directory=True)
    write_index(ckpt, {"secret.weight": "sub/secret.safetensors"})
    _refused(ckpt, "sub/secret.safetensors", "outside", opened=opened)
    _assert_nothing_outside(opened, ckpt)


def test_symlinked_index_escaping(ckpt: Path, tmp_path: Path, opened) -> None:
    target = tmp_path / "outside" / INDEX
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"weight_map": {}}))
    (ckpt / INDEX).symlink_to(target)
    _refused(ckpt, INDEX, "outside", opened=opened)
    _assert_nothing_outside(opened, ckpt)


def test_symlink_inside_directory_is_fine(ckpt: Path) -> None:
    write_shard(ckpt / "real" / "x.safetensors", {"a.weight": ("F32", [2])})
    (ckpt / A).symlink_to(ckpt / "real" / "x.safetensors")
    write_index(ckpt, {"a.weight": A})
    assert read_checkpoint(ckpt).tensors["a.weight"].file == A


def test_nul_in_shard_name(ckpt: Path) -> None:
    write_index(ckpt, {"a.weight": "a\x00.safetensors"})
    _refused(ckpt, INDEX, "NUL")


def test_fifo_shard_is_refused_without_blocking(ckpt: Path) -> None:
    os.mkfifo(ckpt / "model.safetensors")
    _refused(ckpt, "model.safetensors", "not a regular file")


# --- header framing ------------------------------------------------------------------------


def test_header_length_larger_than_file(ckpt: Path) -> None:
    header, size = entries_header({"a.weight": ("F32", [2])})
    raw = json.dumps(header).encode()
    write_raw(ckpt / "model.safetensors", raw, size, length=len(raw) + size + 100)
    _refused(ckpt, "model.safetensors", "larger than the file")


def test_absurd_header_length(ckpt: Path) -> None:
    write_raw(ckpt / "model.safetensors", b"{}", 0, length=MAX_HEADER_BYTES + 1)
    _refused(ckpt, "model.safetensors", "exceeds")


def test_file_shorter_than_length_prefix(ckpt: Path) -> None:
    (ckpt / "model.safetensors").write_bytes(b"\x05\x00")
    _refused(ckpt, "model.safetensors", "truncated")


def test_truncated_data(ckpt: Path) -> None:
    header, size = entries_header({"a.weight": ("F32", [4]), "b.weight": ("F32", [4])})
    write_raw(ckpt / "model.safetensors", json.dumps(header).encode(), size - 5)
    _refused(ckpt, "model.safetensors", "truncated")


def test_trailing_bytes(ckpt: Path) -> None:
    header, size = entries_header({"a.weight": ("F32", [4])})
    write_raw(ckpt / "model.safetensors", json.dumps(header).encode(), size + 4)
    _refused(ckpt, "model.safetensors", "trailing")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json at all", "not valid JSON"),
        (b"[1, 2, 3]", "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}', "non-integer"),
        (b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}', "non-integer"),
        (b'{"__metadata__": {"x": 1}}', "__metadata__"),
        (b"[" * 100000 + b"]" * 100000, "JSON"),
    ],
)
def test_header_not_a_json_object(ckpt: Path, raw: bytes, says: str) -> None:
    write_raw(ckpt / "model.safetensors", raw, 0)
    _refused(ckpt, "model.safetensors", says)


def _entry(ckpt: Path, entry: object, data: int = 8, name: str = "m.weight") -> None:
    write_raw(ckpt / "model.safetensors", json.dumps({name: entry}).encode(), data)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"dtype": "F9", "shape": [2], "data_offsets": [0, 8]}, "unknown dtype"),
        ({"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}, "unknown dtype"),
        ({"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}, "shape"),
        ({"dtype": "F32", "shape": [2, "x"], "data_offsets": [0, 8]}, "shape"),
        ({"dtype": "F32", "shape": [-2, -1], "data_offsets": [0, 8]}, "shape"),
        ({"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}, "shape"),
        ({"dtype": "F32", "shape": [[2]], "data_offsets": [0, 8]}, "shape"),
        ({"dtype": "F32", "shape": None, "data_offsets": [0, 8]}, "shape"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "data_offsets"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0]}, "data_offsets"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0, "8"]}, "data_offsets"),
        ({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, "needs 12"),
        ({"dtype": "F32", "shape": [2]}, "lacks"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}, "unexpected"),
        ("F32", "must be a JSON object"),
        ({"dtype": "F4", "shape": [3], "data_offsets": [0, 8]}, "F4"),
    ],
)
def test_bad_entry_fields(ckpt: Path, entry: object, says: str) -> None:
    _entry(ckpt, entry)
    err = _refused(ckpt, "model.safetensors", says)
    assert "m.weight" in str(err)


def test_zero_size_tensor_with_unknown_dtype(ckpt: Path) -> None:
    _entry(ckpt, {"dtype": "X", "shape": [0], "data_offsets": [0, 0]}, data=0)
    _refused(ckpt, "model.safetensors", "unknown dtype")


@pytest.mark.parametrize(
    ("second", "says"),
    [pytest.param([4, 12], "overlap", id="overlapping"), pytest.param([12, 20], "gap", id="gap")],
)
def test_offsets_must_tile_the_data(ckpt: Path, second: list[int], says: str) -> None:
    """Tensor ``b`` starts inside ``a`` (bytes 4-8 claimed twice) or after a hole (bytes 8-12)."""
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": second},
    }
    write_raw(ckpt / "model.safetensors", json.dumps(header).encode(), second[1])
    _refused(ckpt, "model.safetensors", says)


def test_duplicate_key_in_header(ckpt: Path) -> None:
    entry = '{"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    raw = ('{"a.weight": ' + entry + ', "a.weight": ' + entry + "}").encode()
    write_raw(ckpt / "model.safetensors", raw, 8)
    _refused(ckpt, "model.safetensors", "duplicate key 'a.weight'")


# --- across shards and the index ----------------------------------------------------------


def test_duplicate_names_across_shards(ckpt: Path) -> None:
    write_shard(ckpt / A, {"x.weight": ("F32", [2])})
    write_shard(ckpt / B, {"x.weight": ("F32", [2])})
    err = _refused(ckpt, A, B, "duplicate")
    assert "x.weight" in str(err)


def test_duplicate_names_across_shards_with_index(ckpt: Path) -> None:
    write_shard(ckpt / A, {"x.weight": ("F32", [2])})
    write_shard(ckpt / B, {"x.weight": ("F32", [2]), "y.weight": ("F32", [2])})
    write_index(ckpt, {"x.weight": A, "y.weight": B})
    _refused(ckpt, A, B, "duplicate")


def test_duplicate_key_in_index(ckpt: Path) -> None:
    (ckpt / INDEX).write_text(f'{{"weight_map": {{"x.weight": "{A}", "x.weight": "{B}"}}}}')
    _refused(ckpt, INDEX, "duplicate key 'x.weight'")


def test_index_names_missing_shard(ckpt: Path) -> None:
    write_shard(ckpt / A, {"x.weight": ("F32", [2])})
    write_index(ckpt, {"x.weight": A, "y.weight": B})
    _refused(ckpt, INDEX, B, "does not exist")


def test_index_tensor_absent_from_its_shard(ckpt: Path) -> None:
    write_shard(ckpt / A, {"x.weight": ("F32", [2])})
    write_index(ckpt, {"x.weight": A, "ghost.weight": A})
    _refused(ckpt, INDEX, A, "ghost.weight", "does not contain")


def test_index_puts_tensor_in_wrong_shard(ckpt: Path) -> None:
    write_shard(ckpt / A, {"x.weight": ("F32", [2]), "z.weight": ("F32", [2])})
    write_shard(ckpt / B, {"y.weight": ("F32", [2])})
    write_index(ckpt, {"x.weight": B, "y.weight": B, "z.weight": A})
    _refused(ckpt, INDEX, "x.weight", A, B, "stored in")


def test_stray_shard_outside_the_index_is_not_read(ckpt: Path, opened) -> None:
    write_shard(ckpt / A, {"x.weight": ("F32", [2])})
    write_raw(ckpt / "stray.safetensors", b"garbage", 0)
    write_index(ckpt, {"x.weight": A})
    opened.start()
    assert list(read_checkpoint(ckpt).tensors) == ["x.weight"]
    assert (ckpt / "stray.safetensors").resolve() not in opened.paths


def test_recorder_sees_reads(ckpt: Path, opened) -> None:
    # The "nothing outside was read" checks are only meaningful if reads are seen.
    write_shard(ckpt / "model.safetensors", {"x.weight": ("F32", [2])})
    opened.start()
    read_checkpoint(ckpt)
    assert (ckpt / "model.safetensors").resolve() in opened.paths


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"weight_map": []}', "weight_map"),
        ('{"weight_map": {"a": 3}}', "non-empty string"),
        ('{"weight_map": {"a": ["x"]}}', "non-empty string"),
        ('{"weight_map": {"a": ""}}', "non-empty string"),
        ('{"weight_map": {"": "x.safetensors"}}', "empty tensor name"),
        ('{"weight_map": {}, "metadata": 3}', "metadata"),
    ],
)
def test_invalid_index(ckpt: Path, text: str, says: str) -> None:
    (ckpt / INDEX).write_text(text)
    _refused(ckpt, INDEX, says)


def test_empty_directory(ckpt: Path) -> None:
    with pytest.raises(NoTensorFilesError, match=r"no model\.safetensors\.index\.json"):
        read_checkpoint(ckpt)


def test_not_a_directory(tmp_path: Path) -> None:
    _refused(tmp_path / "nope", "nope", "not a checkpoint")


def test_header_is_read_within_its_length(ckpt: Path, opened) -> None:
    """A lying length that fits the file only reads that many bytes, then fails cleanly."""
    header, size = entries_header({"a.weight": ("F32", [2])})
    raw = json.dumps(header).encode()
    path = ckpt / "model.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", 3) + raw + bytes(size))
    _refused(ckpt, "model.safetensors", "JSON", opened=opened)
    _assert_nothing_outside(opened, ckpt)
