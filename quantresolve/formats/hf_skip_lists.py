"""How engines read the ``modules_to_not_convert`` lists of the Hugging Face formats, as facts to compare with.

quantresolve matches skip entries by its own exact rules (:mod:`quantresolve.resolve.rules_fp8`,
:mod:`quantresolve.resolve.rules_mxfp4`); the engines do not agree with each other, so where they would
load a module differently the config gets an ``engines-disagree`` finding. The facts (research notes
``formats17.md`` §0, checked against transformers 5.23 and vLLM):

- transformers 5.23 (``should_convert_module``) skips a module when an entry, **compiled as a regular
  expression**, matches the start of its name up to a component boundary, or when the name simply
  **ends with** the entry's text (a raw suffix: ``kv_proj`` skips ``...qkv_proj``). An entry that is not a
  valid regular expression — any glob starting with ``*`` — makes ``from_pretrained`` raise ``re.error``;
- vLLM's ``Fp8Config`` matches ``ignored_layers`` (else ``modules_to_not_convert``) **exactly**, shards of
  a fused layer expanded; its ``Mxfp4Config`` ignores the list altogether.

    >>> regex_problem("model.layers.*.self_attn") is None
    True
    >>> regex_problem("*.self_attn")
    'nothing to repeat at position 0'
"""

from __future__ import annotations

import re

from quantresolve.formats.normalized import Finding

#: The finding code of every "engines would load this differently" fact, and its severity.
ENGINES_DISAGREE = "engines-disagree"
SEVERITIES = {ENGINES_DISAGREE: "warning"}


def regex_problem(entry: str) -> str | None:
    """Why transformers cannot compile ``entry`` as the regular expression it takes it for (``None``: it can)."""
    try:
        re.compile(entry)
    except re.error as err:
        return str(err)
    return None


def engines_disagree(message: str, *, file: str | None, field: str | None, subject: str | None) -> Finding:
    """An ``engines-disagree`` warning: ``message`` says which engine does what."""
    text = f"{subject}: {message}" if subject else message
    return Finding(code=ENGINES_DISAGREE, severity=SEVERITIES[ENGINES_DISAGREE], message=text,  # type: ignore[arg-type]
                   subject=subject, file=file, field=field)


def unparsable_entries(entries: list[str] | None, *, file: str, field: str) -> list[Finding]:
    """One finding per entry transformers cannot compile (it raises while loading the model)."""
    out = []
    for i, entry in enumerate(entries or ()):
        problem = regex_problem(entry)
        if problem is not None:
            out.append(engines_disagree(
                f"transformers 5.23 compiles skip entries as regular expressions and raises on this one "
                f"(re.error: {problem}), so from_pretrained fails on this config; quantresolve matches it as a "
                "glob in checkpoint space", file=file, field=f"{field}[{i}]", subject=entry))
    return out


__all__ = ["ENGINES_DISAGREE", "SEVERITIES", "engines_disagree", "regex_problem", "unparsable_entries"]
