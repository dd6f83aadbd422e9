"""``quantresolve run CHECKPOINT --prompt-ids 1,2,3 --max-new-tokens N``: load it as resolved, generate greedily.

Prints the naming profile and why it was chosen (given with ``--profile``, else
derived from transformers' renamings of the class built for the checkpoint's own
names), the prompt and generated token ids, then how the layers run: a count per
algo and backend (every layer with ``--verbose``; everything with ``--json``).
Bad input (unreadable checkpoint, unconsumed or missing tensors, an id outside
the vocabulary, an unknown backend, a device this machine lacks, more tokens than the model's
context or the memory holds) is one line on stderr and exit code 2.

    quantresolve run fixtures/checkpoints/ct-w4a16 --prompt-ids 1,2,3 --max-new-tokens 8
    quantresolve run CKPT --prompt-ids 5,6 --max-new-tokens 4 --profile llama --deny int4pack_cpu --json

torch and transformers are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from quantresolve.errors import ConfigError

_IDS = re.compile(r"\s*\d+\s*(,\s*\d+\s*)*")


def prompt_ids(text: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]``; anything else is an error naming the option.

        >>> prompt_ids("1, 2,3")
        [1, 2, 3]
    """
    if not _IDS.fullmatch(text):
        raise ConfigError(f"{text!r} is not a comma-separated list of token ids, e.g. 1,2,3", field="--prompt-ids")
    return [int(t) for t in text.split(",")]


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="load a quantized checkpoint into transformers as resolved and generate",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="checkpoint directory, or a repository id ORG/NAME[@REV] / hf://ORG/NAME[@REV] "
                                      "already in the local Hugging Face cache (never downloaded)")
    p.add_argument("--prompt-ids", required=True, metavar="IDS", help="prompt token ids, comma-separated")
    p.add_argument("--max-new-tokens", type=_positive, default=8, metavar="N", help="tokens to generate (default 8)")
    p.add_argument("--profile", metavar="NAME|FILE",
                   help="naming profile (default: derived from transformers' renamings of the class built "
                        "here, for the checkpoint's own names; a fused profile such as llama fuses q/k/v and "
                        "gate/up)")
    p.add_argument("--backend", help="force one dispatcher backend for every quantized layer")
    p.add_argument("--deny", metavar="B1,B2", help="backends never to use, comma-separated")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--dtype", help="compute dtype (default: config.json's, else bfloat16)")
    p.add_argument("--json", action="store_true", help="machine-readable output with every layer")
    p.add_argument("--verbose", "-v", action="store_true", help="list every layer")
    p.set_defaults(handler=run)


def _generate(args: argparse.Namespace, ids: list[int], path: Path) -> tuple[Any, list[int]]:
    import warnings

    from quantresolve.integrations.preflight import preflight_run

    # Options against the checkpoint and the machine before torch is even imported.
    preflight_run(args.checkpoint, len(ids), args.max_new_tokens, args.dtype)

    from quantresolve.integrations.device import check_device

    check_device(args.device, field="--device")  # torch alone, before transformers' import

    import torch

    from quantresolve.integrations.transformers import load_quantized

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' deprecation chatter is not this command's output
        model = load_quantized(path, profile=args.profile, backend=args.backend,
                               deny=_names(args.deny), device=args.device, dtype=args.dtype)
        vocab = model.get_input_embeddings().num_embeddings
        bad = [i for i in ids if i >= vocab]
        if bad:
            raise ConfigError(f"token id(s) {bad} outside the vocabulary of {vocab}", field="--prompt-ids")
        prompt = torch.tensor([ids], device=args.device)
        with torch.no_grad():
            out = model.generate(prompt, max_new_tokens=args.max_new_tokens, do_sample=False,
                                 attention_mask=torch.ones_like(prompt),
                                 pad_token_id=model.generation_config.eos_token_id)
    return model.quantresolve_report, out[0].tolist()


def run(args: argparse.Namespace) -> int:
    from quantresolve.checkpoint.locate import locate

    ids = prompt_ids(args.prompt_ids)
    with locate(args.checkpoint, remote=False) as where:  # before torch: a bad argument fails at once
        report, sequence = _generate(args, ids, where.path)
    new = sequence[len(ids):]
    if args.json:
        print(json.dumps({"prompt_ids": ids, "generated_ids": new, "sequence": sequence, **report.to_json()},
                         indent=2))
        return 0
    algo = report.quant_algo or "-"
    print(f"checkpoint {report.checkpoint}: {report.producer} {algo}")
    print(f"profile    {report.profile}, {report.profile_reason}")
    print(f"prompt     {' '.join(map(str, ids))}")
    print(f"generated  {' '.join(map(str, new))}")
    print(f"layers     {len(report.layers)}")
    for label, n in report.counts().items():
        print(f"  {n:4d}  {label}")
    for kv in report.kv_cache[:1]:
        state = "applied in attention" if kv.applied else "loaded, not applied"
        print(f"kv cache   {kv.algo} scales on {len(report.kv_cache)} attention module(s), {state}")
    if report.dropped:
        print(f"dropped    {len(report.dropped)} tensor(s) by the profile's mapper, e.g. {report.dropped[0]}")
    if report.ignored:
        print(f"ignored    {len(report.ignored)} tensor(s) the model class does not load, e.g. {report.ignored[0]}")
    if args.verbose:
        print("per layer")
        for r in report.layers:
            print(f"  {r.prefix}\t{r.algo or 'unquantized'}\t{r.rule}\t{r.backend}")
    return 0
