"""``tie_word_embeddings``: a tied head the checkpoint omits shares the embedding; a stored one is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from quantresolve.errors import LoadError
from quantresolve.integrations.transformers import load_quantized

from .tampered import Tensors, tampered

pytestmark = pytest.mark.filterwarnings("ignore")


def _tie(data: dict[str, Any]) -> None:
    data["tie_word_embeddings"] = True


def _drop_head(t: Tensors) -> Tensors:
    del t["lm_head.weight"]
    return t


def test_omitted_tied_head_shares_the_embedding(tmp_path: Path) -> None:
    model = load_quantized(tampered("ct-w4a16", tmp_path, tensors=_drop_head, config=_tie))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.lm_head.weight.device.type == "cpu"
    with torch.no_grad():
        out = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(out).all()


def test_stored_tied_head_is_kept_as_stored(tmp_path: Path) -> None:
    model = load_quantized(tampered("ct-w4a16", tmp_path, config=_tie))
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)


def test_quantized_tied_head_without_tensors_is_refused(tmp_path: Path) -> None:
    def quantize_head(data: dict[str, Any]) -> None:
        _tie(data)
        data["quantization_config"]["ignore"] = []

    path = tampered("ct-w4a16", tmp_path, tensors=_drop_head, config=quantize_head)
    with pytest.raises(LoadError, match="ties lm_head") as err:
        load_quantized(path)
    assert err.value.field == "lm_head"
