"""Tiny shared utilities that know nothing of quantization (the bottom layer, with :mod:`quantresolve.errors`).

- :mod:`.gcpause` — pause the cyclic garbage collector while building large acyclic structures;
- :mod:`.containment` — every file a checkpoint names is read from inside it (Hugging Face cache
  snapshots: inside the repo's own cache folder);
- :mod:`.jsonfile` — strict JSON: duplicate keys refused, size-capped, checkpoint files read through containment;
- :mod:`.version` — the package version (the root facade and the audit report read it from here).

Nothing here imports another quantresolve package except :mod:`quantresolve.errors`.
"""
