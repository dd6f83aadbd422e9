"""`quantresolve kernels`: every backend's verdict for a scheme at a shape.

    quantresolve kernels --scheme W4A16_AWQ --shape 4096x4096 --batch 1
    quantresolve kernels --scheme W4A16 --producer compressed-tensors --shape 4096x4096 --json

torch is imported only when the command runs (through quantresolve.dispatch).
"""

from __future__ import annotations

import argparse
import json
import re

from quantresolve.errors import ConfigError

PRODUCERS = ("modelopt", "compressed-tensors", "bitsandbytes")


#: Largest dimension accepted for ``--shape`` (a verdict is about a real layer, not a number).
MAX_DIM = 1 << 24


def _shape(text: str) -> tuple[int, int]:
    """``"4096x1024"`` → ``(4096, 1024)``; both sides 1 to :data:`MAX_DIM`.

        >>> _shape("0x0")
        Traceback (most recent call last):
        ...
        quantresolve.errors.ConfigError: --shape: shape '0x0' has an empty side; accepted: NxK with 1 <= N, K <= 16777216, e.g. 4096x4096
    """
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"shape {text!r} is not NxK (out x in), e.g. 4096x4096", field="--shape")
    n, k = int(m.group(1)), int(m.group(2))
    if not (1 <= n <= MAX_DIM and 1 <= k <= MAX_DIM):
        what = "has an empty side" if min(n, k) < 1 else "is larger than any layer"
        raise ConfigError(f"shape {text!r} {what}; accepted: NxK with 1 <= N, K <= {MAX_DIM}, e.g. 4096x4096",
                          field="--shape")
    return n, k


def _batch(text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or not 1 <= int(text) <= MAX_DIM:
        raise ConfigError(f"batch {text!r} is not a row count; accepted: 1 to {MAX_DIM}", field="--batch")
    return int(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kernels", help="list every backend's verdict for a scheme and shape")
    p.add_argument("--scheme", required=True, help="canonical label (NVFP4, W4A16_AWQ, W4A16, BNB_NF4, ...)")
    p.add_argument("--producer", choices=PRODUCERS, help="whose label (default: guessed from the label)")
    p.add_argument("--shape", required=True, help="NxK: out_features x in_features")
    p.add_argument("--batch", help="expected rows per call")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    n, k = _shape(args.shape)  # the options first: no torch import to refuse them
    batch = _batch(args.batch) if args.batch is not None else None

    from quantresolve.integrations.device import check_device

    checked = check_device(args.device, field="--device")  # torch alone, before the dispatcher's imports

    from quantresolve.dispatch import Shapes, backend_verdicts, device_info, select_backend
    from quantresolve.dispatch.presets import scheme_from_label

    scheme = scheme_from_label(args.scheme, args.producer)
    shapes = Shapes(n, k, batch)
    device = device_info(checked)
    verdicts = backend_verdicts(scheme, shapes, device)
    chosen = select_backend(scheme, shapes, device).name
    rows = [{"backend": name, "ok": v.ok, "reason": v.reason, "selected": name == chosen}
            for name, v in verdicts]
    if args.json:
        print(json.dumps({"scheme": scheme.summary(), "algo": scheme.algo, "producer": scheme.producer,
                          "format": scheme.format, "shape": [n, k], "batch": batch,
                          "device": device.type, "selected": chosen, "backends": rows}, indent=2))
        return 0
    print(f"{scheme.summary()} at {shapes.text()} on {device.type}")
    width = max(len(r["backend"]) for r in rows)
    for r in rows:
        mark = "*" if r["selected"] else " "
        print(f"{mark} {r['backend']:<{width}}  {'yes' if r['ok'] else 'no ':<3}  {r['reason']}")
    print(f"selected: {chosen}")
    return 0
